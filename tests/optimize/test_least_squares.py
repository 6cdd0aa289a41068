"""optimizer least-squares (the bounded Levenberg-Marquardt, or SciPy trf, with the analytic
Jacobian) and the identifiability report, on the linear least-squares problem with a known optimum."""

from __future__ import annotations

import json

import numpy as np
import pytest

from q2mm.optimize import FitProblem, OptimizerOptions, fit
from q2mm.optimize.bounds import parameter_bounds
from q2mm.optimize.identifiability import Identifiability, identifiability
from tests.optimize.problems import KINDS, TRUE_VALUES, LinearFit, ReferenceObjective, SurrogateLoss, refs, start_values

LSQ = dict(method="least-squares", ftol=1e-12, xtol=1e-12, gtol=1e-12)


def make_problem(start=None, **loss_kwargs) -> FitProblem:
    linear = LinearFit()
    return FitProblem(
        refs=refs(),
        kinds=KINDS,
        start_values=start_values() if start is None else start,
        objective=ReferenceObjective(linear),
        loss=SurrogateLoss(linear, **loss_kwargs),
    )


@pytest.mark.parametrize("solver", ["lm", "trf"])
def test_reaches_the_known_optimum_in_few_iterations_and_reports_them(solver):
    seen = []
    result = fit(make_problem(), OptimizerOptions(lsq_solver=solver, **LSQ), callback=seen.append)
    assert result.status == "improved" and result.method == "least-squares" and result.jac_resolved == "jax"
    np.testing.assert_allclose(result.p_final, TRUE_VALUES, rtol=1e-8)
    assert 1 <= result.n_iterations <= 10  # Gauss-Newton on a linear problem; L-BFGS-B needs more
    assert seen == result.history and [i.iteration for i in seen] == list(range(result.n_iterations + 1))
    assert all(i.grad_norm is not None for i in seen) and seen[-1].score < 1e-12 * seen[0].score
    summary = json.loads(json.dumps(result.summary(), allow_nan=False))
    assert summary["method"] == "least-squares" and "njev" in summary["optimizer_message"]
    assert summary["optimizer_message"].startswith(f"{solver}: ")


@pytest.mark.parametrize(("solver", "tolerances"), [("lm", LSQ), ("trf", LSQ), ("lm", {**LSQ, "ftol": 1.0})])
def test_each_jacobian_is_computed_once(solver, tolerances):
    """The optimizer's Jacobians (SciPy asks twice at the start) and the identifiability report's at
    the result: the optimizer's last one where it was taken there, else one more."""
    calls = []
    problem = make_problem()
    inner = problem.loss.residuals_and_jacobian
    problem.loss.residuals_and_jacobian = lambda p: (calls.append(np.array(p)), inner(p))[1]
    result = fit(problem, OptimizerOptions(lsq_solver=solver, **tolerances))
    njev = int(result.optimizer_message.split("njev=")[1].rstrip(")"))
    assert len({c.tobytes() for c in calls}) == len(calls)
    assert np.array_equal(calls[-1], result.p_final) and isinstance(result.identifiability, Identifiability)
    if tolerances["ftol"] == 1.0:  # ftol stops lm after its first step, whose Jacobian lm skips
        assert "ftol" in result.optimizer_message and len(calls) == njev + 1 == 2
        assert result.history[-1].grad_norm is None  # no gradient was computed there
    else:
        assert len(calls) == njev


def test_out_of_band_uses_differences_of_the_reference_residuals():
    result = fit(make_problem(scale=1.3), OptimizerOptions(ratio_tol=0.15, **LSQ))
    assert result.jac_resolved == "fd" and result.status == "improved"
    np.testing.assert_allclose(result.p_final, TRUE_VALUES, rtol=1e-6)
    assert result.n_objective_evals >= len(KINDS) + 1
    assert "fd" in result.summary()["identifiability"]["unavailable"]


def test_non_finite_residuals_are_a_divergence():
    result = fit(make_problem(nan_index=1, nan_above=2.3), OptimizerOptions(**LSQ))
    assert result.status == "diverged" and result.divergence["parameters"][1] > 2.3
    assert result.final.score <= result.initial.score


def test_worse_point_is_reverted_and_unconverged_points_never_win():
    linear = LinearFit()
    shift = 0.15 * TRUE_VALUES * np.array([1, 1, 1, 0.2, 1, 0.2])
    problem = FitProblem(
        refs(), KINDS, TRUE_VALUES * 1.001, ReferenceObjective(linear), SurrogateLoss(linear, shift=shift)
    )
    result = fit(problem, OptimizerOptions(ratio_tol=None, **LSQ))
    assert result.status == "reverted"
    np.testing.assert_array_equal(result.p_final, problem.start_values)
    loss = SurrogateLoss(linear, unconverged_index=1, unconverged_above=2.4)
    result = fit(
        FitProblem(refs(), KINDS, start_values(), ReferenceObjective(linear), loss),
        OptimizerOptions(ratio_tol=None, **LSQ),
    )
    assert loss.n_unconverged > 0 and result.p_final[1] <= 2.4


def test_identifiability_equals_the_linear_covariance():
    """For r = w (ref - A p) the covariance is exactly s^2 (w^2 A^T A)^-1 at any p."""
    result = fit(make_problem(), OptimizerOptions(**LSQ))
    ident = result.identifiability
    linear = LinearFit()
    a = linear.weight * linear.matrix
    r = linear.residual(result.p_final)
    m, n = a.shape
    cov = float(r @ r) / (m - n) * np.linalg.inv(a.T @ a)
    np.testing.assert_allclose(ident.standard_error, np.sqrt(np.diag(cov)), rtol=1e-8)
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.fill_diagonal(corr, 0.0)
    np.testing.assert_allclose(ident.max_correlation, np.abs(corr).max(axis=1), rtol=1e-8)
    width = result.upper - result.lower
    np.testing.assert_allclose(ident.singular_values, np.linalg.svd(a * width, compute_uv=False), rtol=1e-10)
    assert ident.undetermined == []
    summary = result.summary()["identifiability"]
    assert summary["n"] == 6 and len(summary["parameters"]) == 6


def test_a_parameter_the_data_do_not_see_is_named_undetermined():
    linear = LinearFit()
    jac = -linear.matrix * np.abs(TRUE_VALUES)  # columns of one scale
    jac[:, 2] = 0.0  # no observation depends on parameter 2
    jac[:, 4] = jac[:, 5] * 2.0  # only 2 p4 + p5 ... only their combination is seen
    names = tuple(f"p{i}" for i in range(6))
    ident = identifiability(jac, np.full(linear.n_obs, 0.1), np.ones(6), names)
    assert set(ident.undetermined) == {"p2", "p4", "p5"}
    assert np.isinf(ident.standard_error[2]) and ident.names[ident.partner[4]] == "p5"
    assert ident.singular_values[-2:].max() < 1e-10 * ident.singular_values[0]


def test_unknown_x_scale_is_refused():
    from q2mm.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="x_scale"):
        OptimizerOptions(method="least-squares", x_scale="bad")
    with pytest.raises(ConfigurationError, match="lsq_solver"):
        OptimizerOptions(method="least-squares", lsq_solver="lbfgsb")
    lower, upper = parameter_bounds(start_values(), KINDS, OptimizerOptions().bounds, None)
    assert np.all(lower < upper)


def test_identifiability_for_other_methods_only_when_asked():
    assert "not requested" in fit(make_problem(), OptimizerOptions()).summary()["identifiability"]["unavailable"]
    result = fit(make_problem(), OptimizerOptions(identifiability=True))
    assert result.method == "lbfgsb" and result.summary()["identifiability"]["undetermined"] == []
    assert isinstance(fit(make_problem(), OptimizerOptions(**LSQ, identifiability=False)).identifiability, str)
