"""What the fast paths of the engine must never change.

* Energies stay at MacroModel parity: every term of the six .mmo structures within 0.002
  kJ/mol, totals within 0.003 kJ/mol (the parity the engine had before it was made fast;
  the engine tests allow 0.05/0.1).
* The assembled Hessian (``q2mm.mm3.hessian``) equals plain automatic differentiation of the
  energy, ``jax.hessian(energy)``, to rounding: at the input geometries, away from them, at
  other parameters, batched over structures; and its derivatives in p and x (which the
  frequency term of the loss needs) equal central differences of it.
* The energy and gradient that come with the assembled Hessian (``energy_gradient_hessian``)
  equal ``energy`` and its autodiff gradient to rounding.
* One compiled function serves every structure and every p (no recompilation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import q2mm.jaxconfig  # noqa: F401
from q2mm.io.fld import read_fld
from q2mm.io.mae import read_mae
from q2mm.mm3.engine import TERMS, MM3Model
from tests.mm3.test_terms_reference import STRUCTURES, mmo_references  # noqa: F401

TERM_PARITY = 0.002  # kJ/mol, each term of each .mmo structure
TOTAL_PARITY = 0.003  # kJ/mol
HESSIAN_RTOL = 1e-12  # of max |H|: the two derivative paths differ by rounding only
CHECKED = (0, 2, 3)  # 36 atoms; 38 atoms padded to 62; the largest (62 atoms)


@pytest.fixture(scope="module")
def model(rh_dir) -> MM3Model:
    molecules = read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")
    return MM3Model.build(molecules, read_fld(rh_dir / "mm3.fld"))


@pytest.fixture(scope="module")
def autodiff_hessian():
    return jax.jit(jax.hessian(MM3Model.energy))


def _moved(model: MM3Model, k: int, seed: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Structure k's input geometry shaken by 0.03 A and p0 scaled by 1 +- 2% (both real atoms only)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(model.coords[k]).copy()
    n = model.molecules[k].n_atoms
    x[:n] += 0.03 * rng.normal(size=(n, 3))
    return jnp.asarray(x), jnp.asarray(model.p0 * (1.0 + 0.02 * rng.normal(size=model.p0.shape)))


def _close(fast, reference, rtol=HESSIAN_RTOL) -> None:
    fast, reference = np.asarray(fast), np.asarray(reference)
    assert np.all(np.isfinite(fast))
    assert np.max(np.abs(fast - reference)) <= rtol * np.max(np.abs(reference))


@pytest.mark.parametrize("k", STRUCTURES)
def test_terms_and_total_stay_at_macromodel_parity(k, model, mmo_references):
    ref = mmo_references[k]
    parts = model.breakdown(k - 1)
    off = {t: abs(parts[t] - ref.totals[t]) for t in TERMS}
    assert max(off.values()) < TERM_PARITY, off
    assert abs(model.energy_of(k - 1) * 4.184 - ref.totals["total"]) < TOTAL_PARITY


@pytest.mark.slow  # compiles jax.hessian(energy): ~30 s
@pytest.mark.parametrize("k", CHECKED)
def test_hessian_equals_autodiff_of_the_energy(k, model, autodiff_hessian):
    x, p, topo = model.arguments(k)
    fast = model.compiled("hessian")
    _close(fast(x, p, topo), autodiff_hessian(x, p, topo))
    x2, p2 = _moved(model, k, seed=k)
    _close(fast(x2, p2, topo), autodiff_hessian(x2, p2, topo))


def test_energy_gradient_hessian_equals_the_energy_its_gradient_and_hessian(model):
    """One program for every Newton step (``energy_gradient_hessian``): the energy and gradient
    summed from each interaction's derivatives equal ``energy`` and ``jax.grad(energy)`` to
    rounding, padded atoms included, and its Hessian is ``hessian``'s."""
    together = jax.jit(MM3Model.energy_gradient_hessian)
    energy_gradient = jax.jit(jax.value_and_grad(MM3Model.energy))
    hessian = model.compiled("hessian")
    for k in CHECKED:
        x, p, topo = model.arguments(k)
        for xk, pk in ((x, p), _moved(model, k, seed=10 + k)):
            e, g, h = together(xk, pk, topo)
            e_ref, g_ref = energy_gradient(xk, pk, topo)
            assert float(e) == pytest.approx(float(e_ref), rel=1e-13, abs=1e-12)
            _close(g, g_ref)
            _close(h, hessian(xk, pk, topo))


def test_hessian_of_padded_atoms_is_zero_and_symmetric(model):
    k = 2
    n = model.molecules[k].n_atoms
    h = np.asarray(model.compiled("hessian")(*model.arguments(k)))
    assert not np.any(h[n:]) and not np.any(h[:, :, n:])
    flat = h.reshape(h.shape[0] * 3, -1)
    assert np.max(np.abs(flat - flat.T)) <= 1e-12 * np.max(np.abs(flat))


@pytest.mark.slow  # compiles the vmapped Hessian
def test_batched_hessian_matches_one_by_one_without_recompiling(model):
    p = jnp.asarray(model.p0)
    every = np.asarray(model.compiled("hessian_all")(model.coords, p, model.topology))
    one = model.compiled("hessian")
    before = one._cache_size()  # jit's cache is per function, shared with other tests' shapes
    for k in range(model.n_structures):
        _close(every[k], one(*model.arguments(k)))
    assert one._cache_size() - before <= 1  # every structure and p share one executable


@pytest.mark.slow  # compiles jvp-of-jvp of the energy
def test_mode_curvature_by_forward_mode_matches_the_hessian(model):
    """u^T H u by jvp-of-jvp of the energy (how the loss gets eigenmatrix diagonals)."""
    k = 3
    x, p, topo = model.arguments(k)
    n = model.molecules[k].n_atoms
    u = jnp.zeros_like(x).at[:n].set(jnp.asarray(np.random.default_rng(1).normal(size=(n, 3))))
    along = lambda t: jax.jvp(lambda s: model.energy(x + s * u, p, topo), (t,), (1.0,))[1]
    curvature = jax.jvp(along, (0.0,), (1.0,))[1]
    h = model.compiled("hessian")(x, p, topo).reshape(x.size, x.size)
    assert float(curvature) == pytest.approx(float(u.ravel() @ h @ u.ravel()), rel=1e-11)


@pytest.mark.slow
def test_hessian_derivatives_in_p_and_x_match_central_differences(model):
    """d H / d p and d H / d x along random directions (the loss differentiates H in both)."""
    k = 0
    x, p, topo = model.arguments(k)
    n = model.molecules[k].n_atoms
    rng = np.random.default_rng(2)
    dp = jnp.asarray(rng.normal(size=p.shape) * np.abs(model.p0) * 1e-2)
    dx = jnp.zeros_like(x).at[:n].set(jnp.asarray(rng.normal(size=(n, 3)) * 1e-2))
    hess = jax.jit(model.hessian)
    jvp = jax.jit(lambda x, p, dx, dp: jax.jvp(lambda a, b: model.hessian(a, b, topo), (x, p), (dx, dp))[1])
    for tx, tp in ((jnp.zeros_like(x), dp), (dx, jnp.zeros_like(p))):
        step = 1e-4
        fd = (hess(x + step * tx, p + step * tp, topo) - hess(x - step * tx, p - step * tp, topo)) / (2 * step)
        _close(jvp(x, p, tx, tp), fd, rtol=1e-7)


@pytest.mark.parametrize("k", (0,))  # 36 atoms; each structure shape is one more ~35 s compile
def test_hessian_dot_and_its_p_gradient_equal_the_assembled_hessians(k, model):
    """hessian_dot(x, p, g) = sum(g * H(x, p)); its p-gradient equals reverse mode through the
    assembly for every parameter but the hydrogen reduction factors (held fixed there)."""
    x, p = _moved(model, k, seed=11)
    topo = model.structure(k)
    n = x.size
    g = np.random.default_rng(5).normal(size=(n, n))
    g = jnp.asarray((g + g.T).reshape(x.shape[0], 3, x.shape[0], 3))
    value = jax.jit(lambda q: MM3Model.hessian_dot(x, q, topo, g))(p)
    assert float(value) == pytest.approx(float(jnp.sum(g * MM3Model.hessian(x, p, topo))), rel=1e-12)
    fast = np.asarray(jax.jit(jax.grad(lambda q: MM3Model.hessian_dot(x, q, topo, g)))(p))
    slow = np.asarray(jax.jit(jax.grad(lambda q: jnp.sum(g * MM3Model.hessian(x, q, topo))))(p))
    keep = np.ones(p.size, bool)
    keep[model.reduction_slots()] = False
    assert np.count_nonzero(fast[keep]) > 20
    _close(fast[keep], slow[keep])
