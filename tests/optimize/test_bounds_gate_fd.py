"""Bounds, unit-box scaling, the ratio-gate decision and finite differences."""

from __future__ import annotations

import os

import numpy as np
import pytest

from q2mm.errors import ConfigurationError
from q2mm.optimize.bounds import BoundsOptions, BoxScaling, param_class, parameter_bounds
from q2mm.optimize.fd import ScorePool, fd_value_and_grad
from q2mm.optimize.gate import decide, score_ratio
from tests.optimize.problems import KINDS, LinearFit, ReferenceObjective, start_values

two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a worker pool needs two cores")


def test_fractional_bounds_within_sanity_bounds():
    values = np.array([2.0, 1.5, 178.0, 0.0, 19.0, 0.0, 0.3])
    kinds = ("bond_k", "bond_r0", "angle_theta0", "torsion_v2", "torsion_v3", "angle_k", "stretch_bend_k")
    lower, upper = parameter_bounds(values, kinds, BoundsOptions(min_halfwidth_fc=0.1))
    np.testing.assert_allclose(lower, [1.6, 1.425, 169.1, -0.1, 15.2, 0.0, 0.2])
    np.testing.assert_allclose(upper, [2.4, 1.575, 180.0, 0.1, 20.0, 0.1, 0.4])


def test_bond_dipoles_span_their_sanity_interval():
    """A dipole fitted to charges often starts at 0 D and must reach a polar bond's ~1 D."""
    lower, upper = parameter_bounds(np.array([0.0, -1.86]), ("bond_dipole", "bond_dipole"), BoundsOptions())
    np.testing.assert_array_equal(lower, [-10.0, -10.0])
    np.testing.assert_array_equal(upper, [10.0, 10.0])


def test_start_outside_sanity_bounds_and_unknown_kinds_are_refused():
    with pytest.raises(ConfigurationError, match="line 9 field 2.*outside its sanity"):
        parameter_bounds(np.array([-1.0]), ("bond_k",), BoundsOptions(), ("line 9 field 2",))
    with pytest.raises(ConfigurationError, match="no bounds rule"):
        param_class("mystery_k")


def test_kind_labels_of_the_fld_reader_all_have_a_rule():
    from q2mm.model.forcefield import PARAM_KINDS

    for kind, _unit in PARAM_KINDS.values():
        param_class(kind)


def test_unit_box_round_trip_and_fixed_parameters():
    lower, upper, start = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 4.0]), np.array([0.5, 1.0, 3.0])
    box = BoxScaling.from_bounds(lower, upper, start)
    z = box.to_unit(start)
    np.testing.assert_allclose(z, [0.5, 0.5])  # the zero-width parameter is not an optimizer variable
    np.testing.assert_allclose(box.to_params(np.array([1.0, 0.0])), [1.0, 1.0, 2.0])
    np.testing.assert_allclose(box.grad_to_unit(np.array([3.0, 5.0, 7.0])), [3.0, 14.0])


@pytest.mark.parametrize(
    ("requested", "ratio", "tol", "on_fail", "resolved"),
    [
        ("auto", 1.1, 0.15, "fd", "jax"),
        ("auto", 1.2, 0.15, "fd", "fd"),
        ("auto", 0.8, 0.15, "stop", "stop"),
        ("auto", float("nan"), 0.15, "fd", "fd"),
        ("auto", 40.0, None, "fd", "jax"),
        ("jax", 40.0, 0.15, "fd", "jax"),
        ("fd", 1.0, 0.15, "fd", "fd"),
    ],
)
def test_gate_decisions(requested, ratio, tol, on_fail, resolved):
    assert decide(requested, ratio, tol, on_fail, has_loss=True).resolved == resolved


def test_gate_without_a_loss():
    assert decide("auto", None, 0.15, "fd", has_loss=False).resolved == "fd"
    assert decide("jax", None, 0.15, "fd", has_loss=False).resolved == "stop"
    assert score_ratio(0.0, 0.0) == 1.0 and score_ratio(1.0, 0.0) == float("inf")


def test_fd_gradient_matches_the_analytic_gradient_and_stays_in_the_box():
    linear = LinearFit()
    start = start_values()
    lower, upper = parameter_bounds(start, KINDS, BoundsOptions())
    box = BoxScaling.from_bounds(lower, upper, start)
    seen = []

    def scores(points):
        seen.extend(points)
        return np.array([linear.score(p) for p in points])

    z = box.to_unit(start)
    z[0] = 1.0  # on a box face: the difference must not step outside
    value, grad, count = fd_value_and_grad(scores, box, z, 1e-4)
    p = box.to_params(z)
    assert value == pytest.approx(linear.score(p)) and count == 2 * z.size + 1
    np.testing.assert_allclose(grad, box.grad_to_unit(linear.gradient(p)), rtol=1e-3)
    assert all(np.all(q >= lower - 1e-12) and np.all(q <= upper + 1e-12) for q in seen)


@two_cores
def test_score_pool_processes_agree_with_serial():
    objective = ReferenceObjective(LinearFit())
    points = [start_values() * f for f in (1.0, 1.01, 0.99)]
    serial = [objective(p).score for p in points]
    with ScorePool(objective, workers=2) as pool:
        assert pool.kind == "processes"
        np.testing.assert_allclose(pool.scores(points), serial)


@two_cores
def test_score_pool_falls_back_to_threads():
    from tests.optimize.problems import HomeOnlyObjective

    inner = ReferenceObjective(LinearFit())
    points = [start_values(), start_values() * 1.01]
    expected = [inner(p).score for p in points]
    local = lambda p: inner(p)  # noqa: E731 - a closure does not pickle
    with ScorePool(local, workers=2) as pool:
        assert pool.kind == "threads"
        np.testing.assert_allclose(pool.scores(points), expected)
    with ScorePool(HomeOnlyObjective(inner), workers=2) as pool:
        assert pool.kind == "processes"
        np.testing.assert_allclose(pool.scores(points), expected)
        assert pool.kind == "threads"


@two_cores
def test_score_pool_workers_build_the_objective_from_a_factory():
    from functools import partial

    from tests.optimize.problems import HomeOnlyObjective

    inner = ReferenceObjective(LinearFit())
    points = [start_values(), start_values() * 1.01]
    factory = partial(ReferenceObjective, LinearFit())  # a picklable recipe of an equal objective
    with ScorePool(HomeOnlyObjective(inner), workers=2, factory=factory) as pool:
        np.testing.assert_allclose(pool.scores(points), [inner(p).score for p in points])
        assert pool.kind == "processes"
