"""JaxLoss against the reference objective: ratio 1 within 1e-6 and gradients vs central differences."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import q2mm.objective.shared as shared_programs
from q2mm.mm3.minimize import MinimizeOptions
from q2mm.objective.checks import central_difference_gradient, ratio
from q2mm.objective.jaxloss import JaxLoss
from q2mm.objective.objective import ObjectiveFunction
from q2mm.objective.shared import engine_derivatives, engine_minimizer
from q2mm.reference.observations import ObservationSettings

ALL_KINDS = ("eig_diag", "eig_offdiag", "bond_length", "bond_angle", "torsion", "frequency", "energy")
pytestmark = pytest.mark.slow  # one ahead-of-time compilation per system (tens of seconds cold)


def _pair(model, molecules, settings):
    return JaxLoss(model, molecules, settings), ObjectiveFunction(model, molecules, settings)


@pytest.fixture(scope="module")
def sn2_pair_losses(sn2_model, sn2_pair):
    return _pair(sn2_model, sn2_pair, ObservationSettings(kinds=ALL_KINDS))


@pytest.fixture(scope="module")
def ethane_losses(ethane_model, ethane_pair):
    return _pair(ethane_model, ethane_pair, ObservationSettings(kinds=ALL_KINDS))


def _moved(p0):
    return p0 * (1.0 + 0.02 * np.sin(np.arange(p0.size) + 1.0))


@pytest.mark.parametrize("system", ["sn2", "ethane"])
def test_ratio_is_one(system, sn2_pair_losses, ethane_losses, sn2_model, ethane_model):
    loss, obj = sn2_pair_losses if system == "sn2" else ethane_losses
    model = sn2_model if system == "sn2" else ethane_model
    for p in (model.p0, _moved(model.p0)):
        check = ratio(loss, obj, p)
        assert check.converged, check.messages
        assert abs(check.ratio - 1.0) < 1e-6, (check.loss, check.reference)
    kinds = loss.last_info.kind_scores
    ev = obj(_moved(model.p0))
    for kind, result in ev.by_kind.items():
        assert kinds[kind] == pytest.approx(result.score, rel=1e-6, abs=1e-12), kind


@pytest.mark.parametrize("system", ["sn2", "ethane"])
def test_gradient_matches_central_differences(system, sn2_pair_losses, ethane_losses, sn2_model, ethane_model):
    loss, obj = sn2_pair_losses if system == "sn2" else ethane_losses
    model = sn2_model if system == "sn2" else ethane_model
    p = _moved(model.p0)
    _, grad = loss.value_and_grad(p)
    fd = central_difference_gradient(obj, p)
    scale = np.max(np.abs(fd))
    for name, g, f in zip(model.names, grad, fd):  # every kind: r0, k, theta0, k_theta, V3
        assert abs(g - f) <= 1e-4 * max(abs(f), 1e-3 * scale), (name, g, f)


def test_parameter_changes_never_recompile(ethane_losses, ethane_model):
    loss, _ = ethane_losses
    loss.compile()  # ahead of time (a no-op where an earlier test compiled it)
    compiled, seconds = loss._compiled, loss.compile_seconds
    traces = []
    energy = loss.model.energy
    loss.model.energy = lambda *a: (traces.append(1), energy(*a))[1]
    try:
        for scale in (1.0, 1.01, 0.99):
            loss.value_and_grad(ethane_model.p0 * scale)
        assert traces == [] and loss.compile_seconds == seconds and loss._compiled is compiled
    finally:
        loss.model.energy = energy
    assert compiled is not None


def test_both_objectives_share_one_compiled_engine_program(ethane_losses, ethane_model):
    """The engine's energy, gradient and Hessian are one program compiled once per process
    (q2mm.objective.shared): JaxLoss's eigen stage and stepwise minimizer and the reference
    objective's Newton steps call the same executable."""
    loss, obj = ethane_losses
    loss.value(ethane_model.p0)
    obj(ethane_model.p0)
    shared = engine_derivatives(ethane_model)
    assert len(shared._programs) == 1
    assert loss._compiled["engine"] is obj._engine._program is next(iter(shared._programs.values())).result()


def test_a_pair_minimizing_in_one_loop_shares_the_minimizer_as_its_engine(ethane_model, ethane_pair, ethane_losses):
    """Where JaxLoss minimizes in one loop, the reference objective (``engine_in_minimizer``,
    as ``q2mm.compose`` builds it for such sets) evaluates the engine through that loop's
    program (``EVALUATE``: its first pass, the start's energy, gradient and Hessian): one
    executable with the engine's Hessian inside, none compiled beside it; the values are the
    engine's own to rounding (another program), NaN where the energy is not finite."""
    settings = ethane_losses[0].settings
    loss = JaxLoss(ethane_model, ethane_pair, settings, stepwise_minimize=False)
    obj = ObjectiveFunction(ethane_model, ethane_pair, settings, engine_in_minimizer=True)
    p = _moved(ethane_model.p0)
    assert ratio(loss, obj, p).ratio == pytest.approx(1.0, abs=1e-9)  # minima to gtol apart
    assert "engine" not in loss._compiled
    shared = engine_minimizer(ethane_model, loss.options)
    assert len(shared._programs) == 1
    assert loss._compiled["minimize"] is obj._engine._program is next(iter(shared._programs.values())).result()
    data, topo = loss._structures[1]
    x = data["qm"] + 0.01 * jnp.sin(jnp.arange(data["qm"].size)).reshape(data["qm"].shape)
    own = engine_derivatives(ethane_model).program(x, p, topo)(x, p, topo)
    for got, want in zip(obj._engine(x, p, topo, data["mask"]), own):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * float(np.max(np.abs(want))))
    broken = obj._engine(x.at[0, 0].set(jnp.nan), p, topo, data["mask"])
    assert all(np.isnan(np.asarray(a)).all() for a in broken)


@pytest.mark.parametrize("threads", [1, 2])
def test_structures_in_threads_give_the_same_bits(threads, monkeypatch, sn2_model, sn2_pair_losses):
    """``map_structures``: the structures of one call evaluated in parallel threads give the
    score, gradient, residual Jacobian and reference score of one after the other, to the bit,
    in structure order."""
    loss, obj = sn2_pair_losses
    p = _moved(sn2_model.p0)
    monkeypatch.setattr(shared_programs, "STRUCTURE_THREADS", 1)
    serial = loss.value_and_grad(p), loss.residuals_and_jacobian(p), obj(p)
    monkeypatch.setattr(shared_programs, "STRUCTURE_THREADS", threads)
    loss.reset_start()
    value, grad = loss.value_and_grad(p * (1 + 1e-9))  # another point between, so nothing is reused
    value, grad = loss.value_and_grad(p)
    residuals, jacobian = loss.residuals_and_jacobian(p)
    evaluation = obj(p)
    assert value == serial[0][0] and evaluation.score == serial[2].score
    np.testing.assert_array_equal(grad, serial[0][1])
    np.testing.assert_array_equal(residuals, serial[1][0])
    np.testing.assert_array_equal(jacobian, serial[1][1])
    assert threads == 1 or shared_programs._POOL is not None  # the threads did the work
    for a, b in zip(evaluation.minima, serial[2].minima):
        np.testing.assert_array_equal(a, b)


def test_stepwise_minimize_takes_the_same_steps(ethane_losses, ethane_model, ethane_pair):
    """``stepwise_minimize``: one compiled trust-region step driven from the host around the
    engine's shared energy/gradient/Hessian program gives the whole loop's score,
    gradient and iteration counts."""
    settings = ethane_losses[0].settings
    loss = JaxLoss(ethane_model, ethane_pair, settings, stepwise_minimize=False)
    stepwise = JaxLoss(ethane_model, ethane_pair, settings, stepwise_minimize=True)
    assert ethane_losses[0].stepwise_minimize  # by default: ethane is small (STEPWISE_MAX_ATOMS)
    p = _moved(ethane_model.p0)
    value, grad = loss.value_and_grad(p)
    value_s, grad_s = stepwise.value_and_grad(p)
    assert value_s == pytest.approx(value, rel=1e-10)  # 3e-12 apart: rounding in the minima
    np.testing.assert_allclose(grad_s, grad, rtol=1e-9, atol=1e-12 * np.max(np.abs(grad)))
    np.testing.assert_array_equal(stepwise.last_info.iterations, loss.last_info.iterations)
    assert "engine" in stepwise._compiled and "engine" not in loss._compiled  # the loop's program gives its Hessians


def test_a_least_squares_start_compiles_value_stages_that_agree(ethane_model, ethane_pair, ethane_losses):
    """``compile(jacobian=True)`` (a least-squares fit's start) compiles the residuals without
    their gradient beside the Jacobian stage (``compile(gradient=False)``: without it): its scores and residuals (every kind, energies
    and frequencies included) are value_and_grad's to rounding, and no gradient stage is
    compiled until value_and_grad asks for one."""
    loss = JaxLoss(ethane_model, ethane_pair, ethane_losses[0].settings)
    loss.compile(jacobian=True)
    gradient_stages = {"eigen", "at_minimum"}
    assert {"eigen_value", "at_minimum_value", "jacobian"} <= set(loss._compiled)
    p = _moved(ethane_model.p0)
    residuals, jacobian = loss.residuals_and_jacobian(p)
    value = loss.value(p)
    assert not gradient_stages & set(loss._compiled)
    value_g, _ = loss.value_and_grad(p)
    assert gradient_stages <= set(loss._compiled)
    # every kind to the bit but the frequencies (1e-11 apart: eigenvalues alone, or with their
    # vectors where the gradient needs them, are two LAPACK routines)
    assert value == pytest.approx(value_g, rel=1e-10) and value == pytest.approx(np.sum(residuals**2), rel=1e-13)
    np.testing.assert_allclose(residuals, loss.residuals(p), rtol=1e-10, atol=1e-10 * np.max(np.abs(residuals)))
    np.testing.assert_array_equal(jacobian, loss.residuals_and_jacobian(p)[1])
    derivative_free = JaxLoss(ethane_model, ethane_pair, ethane_losses[0].settings)
    derivative_free.compile(gradient=False)  # Nelder-Mead, Powell, q2mm.evaluate
    assert set(derivative_free._compiled) == {"engine", "minimize", "eigen_value", "at_minimum_value"}
    assert derivative_free.value(p) == value


def test_score_does_not_depend_on_earlier_calls(sn2_model, sn2_pair_losses):
    loss, _ = sn2_pair_losses
    p = _moved(sn2_model.p0)
    first = loss.value_and_grad(p)
    loss.value_and_grad(p * 1.03)  # a distant point in between
    again = loss.value_and_grad(p)
    assert again[0] == first[0] and np.array_equal(again[1], first[1])


def test_warm_start_and_failure_report(sn2_model, sn2_pair, sn2_pair_losses):
    loss, _ = sn2_pair_losses
    p = _moved(sn2_model.p0)
    loss.warm_start = True
    try:
        loss.reset_start()
        loss.value_and_grad(p)
        cold = loss.last_info.iterations.copy()
        assert np.all(cold >= 1)
        loss.value_and_grad(p * (1 + 1e-4))
        assert np.all(loss.last_info.iterations < cold) and np.all(loss.last_info.converged)
    finally:
        loss.warm_start = False
        loss.reset_start()
    short = JaxLoss(
        sn2_model,
        sn2_pair,
        ObservationSettings(kinds=("bond_length",)),
        options=MinimizeOptions(max_iter=1, gtol=1e-14),
    )
    short.value(p)
    assert not np.all(short.last_info.converged)
    assert any("not converged" in m for m in short.last_info.messages)
