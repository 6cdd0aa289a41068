"""q2mm.optimize.lm: the bounded Levenberg-Marquardt against independent solutions (SciPy's
``lsq_linear`` for a linear fit with active bounds, the known minima of Rosenbrock's residuals
and of an exponential fit), its rejected steps and its stopping rules."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from q2mm.optimize.lm import bounded_lm

TOL = dict(ftol=1e-12, xtol=1e-14, gtol=1e-12)


def linear(a: np.ndarray, b: np.ndarray):
    return (lambda z: a @ z - b), (lambda z: a)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_fit_with_active_bounds_equals_lsq_linear(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(30, 8)) * np.logspace(-2, 2, 8)  # columns of very different scales
    true = np.array([-0.2, 0.3, 0.5, 1.2, 0.8, -0.1, 0.6, 1.4])  # partly outside the box
    b = a @ true + 0.01 * rng.normal(size=30)
    expected = scipy.optimize.lsq_linear(a, b, bounds=(0.0, 1.0), tol=1e-14).x
    held = (expected <= 1e-12) | (expected >= 1 - 1e-12)
    assert held.any() and not held.all()  # some bounds active, some not: the case an active set is for
    seen = []
    result = bounded_lm(*linear(a, b), np.full(8, 0.5), max_nfev=100, callback=lambda z, f: seen.append(f), **TOL)
    np.testing.assert_allclose(result.x, expected, atol=1e-6)
    best = float(np.sum((a @ expected - b) ** 2))
    assert result.score <= best * (1 + 1e-10)
    # each step solves the bounded model exactly: a linear fit ends in a few steps (the clipped
    # steps before took 5 iterations and 12 evaluations)
    assert result.iterations <= 3 and result.nfev <= 4 and result.njev == result.iterations + 1
    assert seen == sorted(seen, reverse=True) and len(seen) == result.iterations + 1  # each accepted step lowers


def test_rosenbrock_residuals_reach_the_known_minimum():
    def residuals(z):
        x, y = 4.0 * z - 2.0  # the box [-2, 2]^2 in unit coordinates
        return np.array([10.0 * (y - x**2), 1.0 - x])

    def jacobian(z):
        x = 4.0 * z[0] - 2.0
        return np.array([[-20.0 * x, 10.0], [-1.0, 0.0]]) * 4.0

    result = bounded_lm(residuals, jacobian, np.array([0.2, 0.9]), max_nfev=200, **TOL)
    np.testing.assert_allclose(4.0 * result.x - 2.0, [1.0, 1.0], atol=1e-8)
    assert result.score < 1e-20


def test_rank_deficient_jacobian_and_a_column_the_data_do_not_see():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(12, 4))
    a[:, 3] = 2.0 * a[:, 2]  # only 2 z3 + z2 ... their combination is seen
    a[:, 1] = 0.0  # z1 moves nothing
    b = a @ np.array([0.3, 0.7, 0.2, 0.4])
    result = bounded_lm(*linear(a, b), np.full(4, 0.5), max_nfev=50, **TOL)
    assert result.score < 1e-20 and result.x[1] == 0.5  # the unseen parameter stays where it was
    assert np.all((result.x >= 0.0) & (result.x <= 1.0))


def test_stops_at_max_nfev_and_at_ftol():
    a, b = np.eye(3), np.array([2.0, -1.0, 0.5])
    capped = bounded_lm(*linear(a, b), np.full(3, 0.5), max_nfev=1, **TOL)
    assert capped.nfev == 1 and "max_nfev" in capped.message and capped.iterations == 0
    done = bounded_lm(*linear(a, b), np.full(3, 0.5), max_nfev=50, ftol=1e-3, xtol=1e-14, gtol=1e-14)
    np.testing.assert_allclose(done.x, [1.0, 0.0, 0.5], atol=1e-6)  # two variables held at their bounds
    assert any(word in done.message for word in ("ftol", "gtol", "xtol"))


def exponential_fit():
    """Residuals of y = exp(8 a t) + 4 b t against data made at (a, b) = (0.6, 0.35): from a small
    a the first Gauss-Newton step overshoots to the box's corner, where the score is 1e4x larger."""
    t = np.linspace(0.0, 1.0, 12)
    y = np.exp(8 * 0.6 * t) + 4 * 0.35 * t
    return (
        lambda z: np.exp(8 * z[0] * t) + 4 * z[1] * t - y,
        lambda z: np.stack([8 * t * np.exp(8 * z[0] * t), 4 * t], axis=1),
    )


def test_a_far_overshoot_is_cut_back_in_one_or_two_rejections():
    """Doubling the damping (the rule before) kept proposing the same clipped corner: 5 rejections
    in a row, 19 evaluations. The radius shrinks by the quadratic-interpolation factor instead."""
    seen = []
    result = bounded_lm(
        *exponential_fit(), np.array([0.05, 0.05]), max_nfev=100, callback=lambda z, f: seen.append(f), **TOL
    )
    np.testing.assert_allclose(result.x, [0.6, 0.35], atol=1e-10)
    rejected = result.nfev - 1 - result.iterations  # every evaluation but the start's and the accepted ones
    assert rejected <= 2 and result.nfev <= 14
    assert seen == sorted(seen, reverse=True) and len(seen) == result.iterations + 1


def test_ftol_stop_computes_no_jacobian_at_the_last_point():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 8))
    residuals, jacobian = linear(a, a @ np.full(8, 0.4) + 0.1 * rng.normal(size=30))  # noisy: f > 0 at the end
    jac_at, seen = [], []
    result = bounded_lm(
        residuals,
        lambda z: (jac_at.append(z.copy()), jacobian(z))[1],
        np.full(8, 0.9),
        max_nfev=100,
        ftol=1e-3,
        xtol=1e-14,
        gtol=1e-14,
        callback=lambda z, f: seen.append(z.copy()),
    )
    assert result.message.startswith("ftol") and result.njev == result.iterations == len(jac_at)
    np.testing.assert_array_equal(seen[-1], result.x)  # the callback still hears of the last point
    assert not any(np.array_equal(z, result.x) for z in jac_at)
