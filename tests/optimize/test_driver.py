"""The fit driver on a least-squares problem with a known optimum."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.optimize

from q2mm.errors import ConfigurationError
from q2mm.optimize import FitProblem, OptimizerOptions, fit
from tests.optimize.problems import (
    KINDS,
    TRUE_VALUES,
    LinearFit,
    ReferenceObjective,
    SurrogateLoss,
    refs,
    start_values,
)


def make_problem(**loss_kwargs) -> FitProblem:
    linear = LinearFit()
    return FitProblem(
        refs=refs(),
        kinds=KINDS,
        start_values=start_values(),
        objective=ReferenceObjective(linear),
        loss=SurrogateLoss(linear, **loss_kwargs),
    )


SUMMARY_KEYS = {
    "status",
    "message",
    "score_initial",
    "score_final",
    "score_delta_pct",
    "r2",
    "ratio_initial",
    "ratio_final",
    "jac_requested",
    "jac_resolved",
    "jac_reason",
    "method",
    "options",
    "scope",
    "start",
    "start_record",
    "n_active",
    "n_iterations",
    "n_objective_evals",
    "n_loss_evals",
    "wall_time_s",
    "compile_time_s",
    "compile_time_source",
    "divergence",
    "parameters",
    "history",
    "evaluation_messages",
    "evaluation_notes",
}


def test_lbfgsb_reaches_the_known_optimum_and_summary_is_complete():
    problem = make_problem()
    result = fit(problem, OptimizerOptions())
    assert result.status == "improved"
    assert result.jac_resolved == "jax"
    assert result.final.score < 1e-8 * result.initial.score
    np.testing.assert_allclose(result.p_final, TRUE_VALUES, rtol=1e-5)
    summary = json.loads(json.dumps(result.summary(), allow_nan=False))
    assert SUMMARY_KEYS <= set(summary)
    assert summary["r2"]["bond_length"]["final"] > summary["r2"]["bond_length"]["initial"]
    assert summary["ratio_initial"] == pytest.approx(1.0) and summary["ratio_final"] == pytest.approx(1.0)
    rows = summary["parameters"]
    assert [(r["line"], r["field"], r["kind"]) for r in rows] == [(r.line, r.field, k) for r, k in zip(refs(), KINDS)]
    for row in rows:
        assert row["lower"] <= row["initial"] <= row["upper"]
        assert row["lower"] <= row["final"] <= row["upper"]
    assert summary["n_iterations"] >= 1 and summary["n_loss_evals"] > summary["n_iterations"]


def test_gate_uses_jax_inside_the_band():
    result = fit(make_problem(scale=1.1), OptimizerOptions(ratio_tol=0.15))
    assert result.jac_resolved == "jax"
    assert result.ratio_initial == pytest.approx(1.1)
    assert "within" in result.jac_reason
    assert result.fd_parallel is None


def test_gate_falls_back_to_finite_differences_outside_the_band():
    problem = make_problem(scale=1.3)
    result = fit(problem, OptimizerOptions(ratio_tol=0.15, fd_workers=2))
    assert result.jac_resolved == "fd"
    assert "outside" in result.jac_reason and "finite differences" in result.jac_reason
    assert result.fd_parallel == ("processes" if (os.cpu_count() or 1) >= 2 else "serial")
    assert result.status == "improved"
    np.testing.assert_allclose(result.p_final, TRUE_VALUES, rtol=1e-4)
    # every fd gradient costs 2n+1 reference evaluations (run in the worker processes)
    assert result.n_objective_evals >= 2 * len(KINDS) + 1
    assert result.ratio_final == pytest.approx(1.3)


def test_gate_stops_when_configured():
    problem = make_problem(scale=1.3)
    result = fit(problem, OptimizerOptions(ratio_tol=0.15, on_ratio_fail="stop"))
    assert result.status == "stopped" and result.jac_resolved == "none"
    assert "stopped" in result.jac_reason
    np.testing.assert_array_equal(result.p_final, problem.start_values)
    assert result.n_iterations == 0 and result.history == []


def test_ratio_tol_none_skips_the_gate():
    result = fit(make_problem(scale=1.3), OptimizerOptions(ratio_tol=None))
    assert result.jac_resolved == "jax"
    assert "skipped" in result.jac_reason
    assert result.ratio_initial == pytest.approx(1.3)


def test_a_final_point_worse_by_the_reference_is_reverted():
    linear = LinearFit()
    # the surrogate's optimum is shifted away: minimizing it worsens the reference score
    shift = 0.15 * TRUE_VALUES * np.array([1, 1, 1, 0.2, 1, 0.2])
    problem = FitProblem(
        refs(), KINDS, TRUE_VALUES * 1.001, ReferenceObjective(linear), SurrogateLoss(linear, shift=shift)
    )
    result = fit(problem, OptimizerOptions(ratio_tol=None))
    assert result.status == "reverted"
    assert "worse" in result.message
    np.testing.assert_array_equal(result.p_final, problem.start_values)
    assert result.final.score == result.initial.score
    rejected = result.summary()["rejected"]
    assert rejected["score"] > result.initial.score
    assert rejected["ratio"] < 0.5  # the surrogate thinks the rejected point is good


def test_non_finite_loss_is_reported_as_divergence_with_its_parameters():
    # NaN once the second force constant rises past 2.3 -- on the way to its optimum 2.5
    linear = LinearFit()
    loss = SurrogateLoss(linear, nan_index=1, nan_above=2.3)
    problem = FitProblem(refs(), KINDS, start_values(), ReferenceObjective(linear), loss)
    result = fit(problem, OptimizerOptions())
    assert result.status == "diverged"
    record = result.divergence
    assert record is not None and "non-finite" in record["what"]
    assert record["parameters"][1] > 2.3
    summary = result.summary()
    assert summary["divergence"]["value"] == "nan"
    # the best finite point seen is kept only because the reference says it is better
    assert result.final.score <= result.initial.score


def test_points_with_unconverged_minimizations_never_become_the_result():
    # past 2.4 the loss's minimizations "fail" and report a deceptively low score
    linear = LinearFit()
    loss = SurrogateLoss(linear, unconverged_index=1, unconverged_above=2.4)
    problem = FitProblem(refs(), KINDS, start_values(), ReferenceObjective(linear), loss)
    result = fit(problem, OptimizerOptions(ratio_tol=None))
    assert loss.n_unconverged > 0  # the optimizer did go there
    assert result.p_final[1] <= 2.4
    assert result.final.score <= result.initial.score


def test_no_progress_from_the_optimum_is_reported():
    linear = LinearFit()
    problem = FitProblem(refs(), KINDS, TRUE_VALUES, ReferenceObjective(linear), SurrogateLoss(linear))
    result = fit(problem, OptimizerOptions())
    assert result.status == "no_progress"
    assert "no real progress" in result.message
    np.testing.assert_allclose(result.p_final, TRUE_VALUES, rtol=1e-6)
    assert result.final.score <= result.initial.score


@pytest.mark.parametrize("method", ["nelder-mead", "powell", "adam"])
def test_other_methods_lower_the_score(method):
    options = OptimizerOptions(method=method, maxiter=400, learning_rate=0.05)
    result = fit(make_problem(), options)
    assert result.status == "improved"
    assert result.final.score < 0.05 * result.initial.score
    assert result.method == method


def test_callback_sees_every_iteration():
    seen = []
    result = fit(make_problem(), OptimizerOptions(), callback=seen.append)
    assert seen == result.history
    assert [info.iteration for info in seen] == list(range(result.n_iterations + 1))
    assert all(info.grad_norm is not None and np.isfinite(info.grad_norm) for info in seen)
    elapsed = [info.elapsed_s for info in seen]
    assert elapsed == sorted(elapsed)
    assert seen[-1].score < seen[0].score


def test_unknown_method_and_modes_are_refused():
    from q2mm.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown optimizer method"):
        OptimizerOptions(method="bfgs-ish")
    with pytest.raises(ConfigurationError, match="jac"):
        OptimizerOptions(jac="analytic")
    for bad in ({"memory": 0}, {"line_search_steps": 0}):
        with pytest.raises(ConfigurationError, match="memory and line_search_steps"):
            OptimizerOptions(**bad)


def test_lbfgsb_memory_and_line_search_length_reach_scipy(monkeypatch):
    seen = []
    original = scipy.optimize.minimize

    def recording(*args, **kwargs):
        seen.append(kwargs["options"])
        return original(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "minimize", recording)
    result = fit(make_problem(), OptimizerOptions(memory=3, line_search_steps=4))
    assert result.status == "improved"
    assert seen and all(o["maxcor"] == 3 and o["maxls"] == 4 for o in seen)


def test_gradient_free_method_out_of_band_uses_reference_values():
    problem = make_problem(scale=1.3)
    calls, value = [], problem.loss.value
    problem.loss.value = lambda p: calls.append(p) or value(p)
    result = fit(problem, OptimizerOptions(method="powell", maxiter=50))
    assert result.jac_resolved == "fd" and result.fd_parallel is None
    assert result.status == "improved" and result.rejected is None
    assert result.n_loss_evals == len(calls) == 2  # the ratio at the start and at the end, nothing else
    assert result.n_objective_evals > 10
    assert all(info.grad_norm is None for info in result.history)


class NonFiniteGradient(SurrogateLoss):
    def value_and_grad(self, p_active):
        value, grad = super().value_and_grad(p_active)
        return value, grad * np.inf


def test_non_finite_gradient_alone_is_a_divergence():
    linear = LinearFit()
    problem = FitProblem(refs(), KINDS, start_values(), ReferenceObjective(linear), NonFiniteGradient(linear))
    result = fit(problem, OptimizerOptions(ratio_tol=None))
    assert result.status == "diverged" and "gradient" in result.divergence["what"]
    np.testing.assert_allclose(result.divergence["parameters"], problem.start_values)
    np.testing.assert_array_equal(result.p_final, problem.start_values)


class NanAtStart(ReferenceObjective):
    def __call__(self, p_active):
        evaluation = super().__call__(p_active)
        return type(evaluation)(float("nan"), evaluation.by_kind)


def test_non_finite_reference_at_the_start_is_reported_not_optimized():
    linear = LinearFit()
    problem = FitProblem(refs(), KINDS, start_values(), NanAtStart(linear), SurrogateLoss(linear))
    result = fit(problem, OptimizerOptions())
    assert result.status == "diverged" and "at the start" in result.message
    assert result.n_iterations == 0
    assert json.dumps(result.summary(), allow_nan=False)


def test_lbfgsb_restarts_from_the_best_point_after_a_failed_line_search(monkeypatch):
    """A line search that fails (scipy status 2, as on a kink of the potential) after three
    iterations: the driver restarts L-BFGS-B from the best point with the iterations left."""
    import scipy.optimize

    from q2mm.optimize import driver

    real = scipy.optimize.minimize
    starts = []

    def failing_first(fun, x0, **kwargs):
        starts.append((np.array(x0), kwargs["options"]["maxiter"]))
        if len(starts) > 1:
            return real(fun, x0, **kwargs)
        res = real(fun, x0, **{**kwargs, "options": {**kwargs["options"], "maxiter": 3}})
        res.status, res.success, res.message = 2, False, "ABNORMAL: "
        return res

    monkeypatch.setattr(driver.scipy.optimize, "minimize", failing_first)
    result = fit(make_problem(), OptimizerOptions(ratio_tol=None, maxiter=200))
    assert len(starts) == 2 and starts[1][1] == 200 - 3
    assert not np.array_equal(starts[1][0], starts[0][0])  # from the best point, not the start
    assert "restart" in result.summary()["optimizer_message"]
    np.testing.assert_allclose(result.p_final, TRUE_VALUES, rtol=1e-4)


def _failing_after(monkeypatch, iterations: int, starts: list):
    """scipy's minimize as L-BFGS-B meeting a cliff: each call runs ``iterations`` real
    iterations and reports a failed line search (status 2)."""
    import scipy.optimize

    from q2mm.optimize import driver

    real = scipy.optimize.minimize

    def failing(fun, x0, **kwargs):
        starts.append(fun(x0)[0])  # the score where this attempt starts (evaluated anyway)
        res = real(fun, x0, **{**kwargs, "options": {**kwargs["options"], "maxiter": iterations}})
        res.status, res.success, res.message = 2, False, "ABNORMAL: "
        return res

    monkeypatch.setattr(driver.scipy.optimize, "minimize", failing)


@pytest.mark.parametrize(("restart_rtol", "attempts"), [(0.0, 4), (0.28, 3), (1.0, 1)])
def test_lbfgsb_restarts_only_after_an_attempt_that_gained_more_than_restart_rtol(monkeypatch, restart_rtol, attempts):
    """Every attempt fails its line search after two iterations: with restart_rtol 0 the
    driver restarts ``restarts`` (3) times; with 0.28 it stops after the first attempt whose
    relative gain was no more than that (here the third: the gains run 1.0, 0.34, 0.23);
    with 1 (no gain is so large) it never restarts."""
    starts: list = []
    _failing_after(monkeypatch, 2, starts)
    result = fit(make_problem(), OptimizerOptions(ratio_tol=None, maxiter=200, restart_rtol=restart_rtol))
    assert len(starts) == attempts
    gains = -np.diff(starts) / np.array(starts[:-1])
    assert np.all(gains > restart_rtol)  # each restart followed an attempt that gained enough
    message = result.summary()["optimizer_message"]
    assert ("not above restart_rtol" in message) == (attempts < 4)


def test_restart_options_are_checked():
    with pytest.raises(ConfigurationError, match="restarts and restart_rtol"):
        OptimizerOptions(restarts=-1)
    with pytest.raises(ConfigurationError, match="restarts and restart_rtol"):
        OptimizerOptions(restart_rtol=float("nan"))
