"""Trust-region Newton minimizer (``newton_minimize``, ``jax_newton``): reaches max |g| < 1e-8
kcal/mol/A on the real rh-enamide transition-state structures through the padded engine,
keeps padded atoms frozen, handles the five rigid modes of a linear molecule, converges
quadratically, and says when it fails."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import q2mm.jaxconfig  # noqa: F401  (float64 before any JAX work)
from q2mm.io.fld import read_fld
from q2mm.io.mae import read_mae
from q2mm.mm3.engine import MM3Model
from q2mm.mm3.minimize import (
    Kinks,
    MinimizeOptions,
    TrustRegion,
    _projector_np,
    jax_newton,
    jax_projector,
    make_implicit_minimum,
    newton_minimize,
    stepwise_newton,
    trust_region_start,
)


@pytest.fixture(scope="module")
def model(rh_dir) -> MM3Model:
    molecules = read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")
    return MM3Model.build(molecules, read_fld(rh_dir / "mm3.fld"))


def _engine_egh(model: MM3Model, k: int):
    """egh(x_real (n, 3)) of structure k through the padded engine: the padded rows of the
    engine's input geometry stay where they are; gradient (3n,) and Hessian (3n, 3n) of the
    real atoms."""
    n = model.molecules[k].n_atoms
    x_pad, p, topo = model.arguments(k)
    template = np.array(x_pad, dtype=np.float64)
    e_fn, g_fn, h_fn = (model.compiled(name) for name in ("energy", "gradient", "hessian"))

    def egh(x_real: np.ndarray):
        x = template.copy()
        x[:n] = x_real
        xj = jnp.asarray(x)
        h = np.asarray(h_fn(xj, p, topo)).reshape(x.size, x.size)[: 3 * n, : 3 * n]
        return float(e_fn(xj, p, topo)), np.asarray(g_fn(xj, p, topo))[:n].reshape(-1), h

    return egh


def _check_minimum(model: MM3Model, k: int) -> None:
    n = model.molecules[k].n_atoms
    x0 = np.asarray(model.coords[k])[:n]
    result = newton_minimize(_engine_egh(model, k), x0, MinimizeOptions(gtol=1e-8))
    assert result.converged, result.message
    assert result.max_gradient < 1e-8
    assert result.x.shape == (n, 3)
    assert result.energy < model.energy_of(k)
    # the full (unprojected) Cartesian gradient of the engine, recomputed independently
    assert np.max(np.abs(model.gradient_of(k, result.x))) < 1e-8
    # a minimum: no negative curvature beyond the six rigid modes
    evals = np.linalg.eigvalsh(model.hessian_of(k, result.x))
    assert evals[6:].min() > 0 and np.abs(evals[:6]).max() < 1e-4 * evals.max()


def test_padded_structure_reaches_1e8(model):
    assert model.molecules[2].n_atoms < model.coords.shape[1]  # structure 3: 38 of 62 atoms
    _check_minimum(model, 2)


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1, 3, 4, 5, 6, 7, 8])
def test_every_training_structure_reaches_1e8(model, k):
    _check_minimum(model, k)


@pytest.mark.slow
def test_jax_newton_keeps_padded_atoms_frozen(model):
    k = 2
    n = model.molecules[k].n_atoms
    x_pad, p, topo = model.arguments(k)
    found = jax_newton(
        model.energy,
        x_pad,
        p,
        topo,
        model.atom_mask[k],
        MinimizeOptions(gtol=1e-8),
        derivatives_fn=model.energy_gradient_hessian,
        kinks=model.kinks(topo),
    )
    x, e = np.asarray(found.x), found.energy
    assert bool(found.converged) and float(found.max_gradient) < 1e-8
    assert not np.asarray(found.active).any()
    np.testing.assert_array_equal(x[n:], np.asarray(x_pad)[n:])
    assert np.max(np.abs(model.gradient_of(k, x[:n]))) < 1e-8
    reference = newton_minimize(_engine_egh(model, k), np.asarray(x_pad)[:n])
    assert float(e) == pytest.approx(reference.energy, abs=1e-8)


def test_reports_failure_instead_of_pretending(model):
    n = model.molecules[2].n_atoms
    result = newton_minimize(_engine_egh(model, 2), np.asarray(model.coords[2])[:n], MinimizeOptions(max_iter=1))
    assert not result.converged and "not converged" in result.message
    assert result.iterations == 1 and result.max_gradient >= 1e-8


def test_reports_non_finite_energy():
    def egh(x):
        return float("nan"), np.zeros(x.size), np.eye(x.size)

    result = newton_minimize(egh, np.eye(3))
    assert not result.converged and "non-finite" in result.message


def test_rigid_modes_are_six_or_five_for_a_line():
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(5, 3))
    line = np.outer(np.arange(4.0), [0.3, 0.4, 1.2])
    for x, rigid in ((cloud, 6), (line, 5)):
        dof = x.size
        for proj in (_projector_np(x), np.asarray(jax_projector(jnp.asarray(x), jnp.ones(len(x), dtype=bool)))):
            np.testing.assert_allclose(proj, proj.T, atol=1e-12)
            np.testing.assert_allclose(proj @ proj, proj, atol=1e-12)
            assert round(np.trace(proj)) == dof - rigid
    # padded rows (mask False) are excluded from the internal space and from the rigid basis
    padded = np.vstack([line, [[50.0, 0.0, 0.0], [0.0, 60.0, 0.0]]])
    mask = jnp.asarray([True] * 4 + [False] * 2)
    proj = np.asarray(jax_projector(jnp.asarray(padded), mask))
    np.testing.assert_allclose(proj[:12, :12], _projector_np(line), atol=1e-12)
    assert np.all(proj[12:] == 0) and np.all(proj[:, 12:] == 0)


def test_linear_triatomic_converges_and_stays_linear():
    """Bond springs on a stretched linear triatomic: five rigid modes and two zero-curvature
    bends; the minimizer reaches the bond lengths without leaving the line."""

    def energy(x):
        d = jnp.linalg.norm(x[jnp.array([0, 1])] - x[jnp.array([1, 2])], axis=1)
        return 0.5 * jnp.sum((d - jnp.array([1.2, 1.5])) ** 2)

    axis = np.array([0.3, 0.4, 1.2]) / np.linalg.norm([0.3, 0.4, 1.2])
    x0 = np.outer([0.0, 1.9, 3.1], axis)
    result = newton_minimize(_jax_egh(energy), x0)
    assert result.converged and result.max_gradient < 1e-8, result.message
    d = np.linalg.norm(np.diff(result.x, axis=0), axis=1)
    np.testing.assert_allclose(d, [1.2, 1.5], atol=1e-9)
    centred = result.x - result.x.mean(axis=0)
    np.testing.assert_allclose(np.cross(centred, axis), 0.0, atol=1e-9)


def _jax_egh(energy):
    grad, hess = jax.grad(energy), jax.hessian(energy)

    def egh(x):
        xj = jnp.asarray(x)
        return float(energy(xj)), np.asarray(grad(xj)).reshape(-1), np.asarray(hess(xj)).reshape(x.size, x.size)

    return egh


def test_spring_tetrahedron_converges_quadratically():
    pairs = jnp.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])

    def energy(x):
        d = jnp.linalg.norm(x[pairs[:, 0]] - x[pairs[:, 1]], axis=1)
        return 0.5 * jnp.sum((d - 1.5) ** 2)

    egh = _jax_egh(energy)
    accepted = []  # max |g| at each accepted point

    def recording(x):
        out = egh(x)
        if not accepted or out[0] <= accepted[-1][0]:
            accepted.append((out[0], float(np.max(np.abs(out[1])))))
        return out

    x0 = np.array([[0.0, 0.0, 0.0], [1.4, 0.1, 0.0], [0.6, 1.3, 0.2], [0.7, 0.5, 1.1]])
    result = newton_minimize(recording, x0)
    assert result.converged and result.max_gradient < 1e-8 and result.iterations < 15
    assert result.energy < 1e-16
    # the last steps square the gradient: g_{k+1} <= C g_k^2
    gs = [g for _, g in accepted]
    tail = [(a, b) for a, b in zip(gs[:-1], gs[1:]) if 1e-14 < b and a < 1e-2]
    assert tail and all(b <= 10.0 * a * a for a, b in tail)


# ------------------------------------------------------------------ minima on a kink (softcut)


def _kinked_triangle(x, p, topo=None):
    """Springs 0-2 and 1-2 (rest lengths p) and a pair 0-1 pushed outward (rest 7 A, weak)
    whose energy gains slope 3 beyond 6 A: the minimum sits on the kink, r01 = 6 exactly,
    with r02 = p0 and r12 = p1 and a gradient that does not vanish there."""

    def dist(i, j):
        return jnp.linalg.norm(x[i] - x[j])

    r01 = dist(0, 1)
    return (
        0.5 * (dist(0, 2) - p[0]) ** 2
        + 0.5 * (dist(1, 2) - p[1]) ** 2
        + 0.05 * (r01 - 7.0) ** 2
        + 3.0 * jnp.maximum(r01 - 6.0, 0.0)
    )


TRIANGLE = np.array([[0.0, 0.0, 0.0], [5.7, 0.3, 0.0], [2.9, 2.6, 0.4]])
TRIANGLE_KINKS = Kinks(np.array([[0, 1]]), np.array([True]), 6.0)


def _triangle_egh(p):
    f = lambda x: _kinked_triangle(x, jnp.asarray(p))  # noqa: E731
    return _jax_egh(f)


def test_a_minimum_on_a_kink_is_pinned_and_converges():
    p = np.array([3.5, 3.4])
    stalled = newton_minimize(_triangle_egh(p), TRIANGLE)
    assert not stalled.converged  # without the kink pairs, the trust region only shrinks there
    result = newton_minimize(_triangle_egh(p), TRIANGLE, kinks=TRIANGLE_KINKS)
    assert result.converged and result.max_gradient < 1e-8, result.message
    assert result.pinned == ((0, 1),) and "kink" in result.message
    x = result.x
    r = [np.linalg.norm(x[i] - x[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    np.testing.assert_allclose(r, [6.0, 3.5, 3.4], atol=1e-9)
    # a true minimum: every small displacement, to either side of the kink, raises the energy
    rng = np.random.default_rng(1)
    egh = _triangle_egh(p)
    for _ in range(50):
        assert egh(x + 1e-4 * rng.normal(size=x.shape))[0] > result.energy
    # the JAX loop finds the same pinned minimum
    found = jax_newton(
        _kinked_triangle,
        jnp.asarray(TRIANGLE),
        jnp.asarray(p),
        None,
        jnp.ones(3, dtype=bool),
        kinks=Kinks(jnp.asarray(TRIANGLE_KINKS.pairs), jnp.asarray([True]), 6.0),
    )
    assert bool(found.converged) and np.asarray(found.active).tolist() == [True]
    assert float(found.energy) == pytest.approx(result.energy, abs=1e-10)


def test_implicit_derivative_of_a_pinned_minimum_follows_the_constraint():
    """On the kink r01 stays 6 while p moves r02 and r12: d(r02 + 2 r12)/dp = (1, 2) exactly;
    the unconstrained implicit formula would let r01 move too."""
    p = jnp.asarray([3.5, 3.4])
    kinks = Kinks(jnp.asarray(TRIANGLE_KINKS.pairs), jnp.asarray([True]), 6.0)
    mask = jnp.ones(3, dtype=bool)
    found = jax_newton(_kinked_triangle, jnp.asarray(TRIANGLE), p, None, mask, kinks=kinks)
    minimum = make_implicit_minimum(_kinked_triangle)

    def observable(q):
        x = minimum(q, found.x, found.hessian, None, mask, found.pins, found.active)
        return jnp.linalg.norm(x[0] - x[2]) + 2.0 * jnp.linalg.norm(x[1] - x[2])

    np.testing.assert_allclose(np.asarray(jax.grad(observable)(p)), [1.0, 2.0], atol=1e-8)


def test_stepwise_loop_takes_jax_newtons_steps():
    """``TrustRegion.advance`` compiled as one step and driven from the host (``stepwise_newton``,
    how JaxLoss can minimize around separately compiled engine programs) ends where the
    ``lax.while_loop`` does, through the stall and the pin on the kink."""
    p = jnp.asarray([3.5, 3.4])
    mask = jnp.ones(3, dtype=bool)
    kinks = Kinks(jnp.asarray(TRIANGLE_KINKS.pairs), jnp.asarray([True]), 6.0)
    opts = MinimizeOptions()
    loop = jax_newton(_kinked_triangle, jnp.asarray(TRIANGLE), p, None, mask, opts, kinks=kinks)

    def advance(state, proposal, e, g, h, pairs, on):
        return TrustRegion(mask, opts, opts.max_iter, Kinks(pairs, on, 6.0)).advance(state, proposal, e, g, h)

    step = jax.jit(advance)
    egh = jax.jit(lambda x: (*jax.value_and_grad(_kinked_triangle)(x, p), jax.hessian(_kinked_triangle)(x, p)))
    start = trust_region_start(np.array(TRIANGLE), opts, Kinks(np.asarray(TRIANGLE_KINKS.pairs), np.array([True]), 6.0))
    state = stepwise_newton(lambda *a: step(*a, kinks.pairs, kinks.mask), egh, start)
    assert int(state.it) - 1 == int(loop.iterations) and np.asarray(state.active).tolist() == [True]
    np.testing.assert_allclose(np.asarray(state.x), np.asarray(loop.x), atol=1e-12)
    assert float(state.e) == pytest.approx(float(loop.energy), abs=1e-12)


def test_thin_projector_matches_the_dense_one():
    """``regularized`` (P H P + I - P from the thin basis) and ``project`` equal the dense
    products, padded rows and extra projected-out directions included."""
    from q2mm.mm3.minimize import project, regularized, rigid_basis, rigid_projector

    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(size=(5, 3)), [[40.0, 0.0, 0.0]]])
    mask = np.array([True] * 5 + [False])
    extra = np.zeros((18, 2))
    extra[:15, 0] = rng.normal(size=15)  # the second column stays zero (an unused pin slot)
    h = rng.normal(size=(18, 18))
    h = h + h.T
    g = rng.normal(size=18)
    dense = rigid_projector(x, mask, extra=extra)
    basis = rigid_basis(x, mask, extra=extra)
    assert round(np.trace(dense)) == 15 - 7
    np.testing.assert_allclose(regularized(basis, h), dense @ h @ dense + np.eye(18) - dense, atol=1e-12)
    np.testing.assert_allclose(project(basis, g), dense @ g, atol=1e-12)
