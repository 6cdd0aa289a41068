"""MM3Model against MacroModel: per-term totals, total energy and charges of six structures;
gradients and Hessians against finite differences on all nine training structures."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import q2mm.jaxconfig  # noqa: F401
from q2mm.io.fld import read_fld
from q2mm.io.mae import read_mae
from q2mm.mm3.charges import DEBYE_PER_E_ANGSTROM
from q2mm.mm3.engine import TERMS, MM3Model
from tests.mm3.test_terms_reference import STRUCTURES, mmo_references  # noqa: F401

TERM_TOL = 0.05  # kJ/mol
TOTAL_TOL = 0.1  # kJ/mol


@pytest.fixture(scope="module")
def model(rh_dir) -> MM3Model:
    molecules = read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")
    return MM3Model.build(molecules, read_fld(rh_dir / "mm3.fld"))


@pytest.mark.parametrize("k", STRUCTURES)
def test_every_term_matches_macromodel(k, model, mmo_references):
    ref = mmo_references[k]
    parts = model.breakdown(k - 1)
    worst = {t: abs(parts[t] - ref.totals[t]) for t in TERMS}
    assert max(worst.values()) < TERM_TOL, worst
    assert abs(sum(parts.values()) - ref.totals["total"]) < TOTAL_TOL
    assert model.energy_of(k - 1) * 4.184 == pytest.approx(ref.totals["total"], abs=TOTAL_TOL)


@pytest.mark.parametrize("k", STRUCTURES)
def test_charges_match_macromodel(k, model, mmo_references):
    np.testing.assert_allclose(model.charges(k - 1), mmo_references[k].charges, atol=6e-4)


def test_vmap_over_structures_matches_one_by_one_and_p_does_not_recompile(model):
    all_e = model.energies()
    one = [model.energy_of(k) for k in range(model.n_structures)]
    np.testing.assert_allclose(all_e, one, rtol=1e-12)
    batched = jax.jit(jax.vmap(model.energy, in_axes=(0, None, 0)))
    p = jnp.asarray(model.p0)
    batched(model.coords, p, model.topology)
    size = batched._cache_size()
    changed = batched(model.coords, p * 1.01, model.topology)
    assert batched._cache_size() == size
    assert not np.allclose(changed, all_e)


def _central_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("k", [0, 3] + [pytest.param(k, marks=pytest.mark.slow) for k in (1, 2, 4, 5, 6, 7, 8)])
def test_gradient_and_hessian_match_finite_differences(k, model):
    n = model.molecules[k].n_atoms
    x0 = np.asarray(model.coords[k])
    p = jnp.asarray(model.p0)
    topo = model.structure(k)
    energy, grad = model.compiled("energy"), model.compiled("gradient")
    g = np.asarray(grad(jnp.asarray(x0), p, topo))
    embed = lambda y: jnp.asarray(x0).at[:n].set(y)
    fd = _central_gradient(lambda y: float(energy(embed(y), p, topo)), x0[:n].copy())
    assert np.all(np.isfinite(g))
    assert np.linalg.norm(g[:n] - fd) / np.linalg.norm(g[:n]) < 1e-6
    assert np.allclose(g[n:], 0.0)
    h = model.hessian_of(k)
    assert np.all(np.isfinite(h)) and np.allclose(h, h.T, atol=1e-8)
    step = 1e-5
    cols = []
    for a in range(3 * n):
        e = np.zeros_like(x0)
        e[a // 3, a % 3] = step
        gp = np.asarray(grad(jnp.asarray(x0 + e), p, topo))[:n].ravel()
        gm = np.asarray(grad(jnp.asarray(x0 - e), p, topo))[:n].ravel()
        cols.append((gp - gm) / (2 * step))
    fd_h = np.array(cols).T
    assert np.linalg.norm(h - fd_h) / np.linalg.norm(h) < 1e-6


def test_linear_nitrile_angle_keeps_finite_nonzero_forces(model):
    """Structure 1 with C5-C7-N8 put exactly at 180 degrees (and 0.1 degree off)."""
    k, c5, c7, n8 = 0, 4, 6, 7
    x = np.asarray(model.coords[k]).copy()
    axis = (x[c7] - x[c5]) / np.linalg.norm(x[c7] - x[c5])
    x[n8] = x[c7] + 1.1664 * axis
    g = model.gradient_of(k, x)
    h = model.hessian_of(k, x)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    assert np.linalg.norm(g[n8]) > 1e-3
    perp = np.cross(axis, [0.0, 0.0, 1.0])
    x[n8] += 1.1664 * np.radians(0.1) * perp / np.linalg.norm(perp)
    energy = model.compiled("energy")
    p, topo = jnp.asarray(model.p0), model.structure(k)
    fd = []
    for c in range(3):
        d = np.zeros_like(x)
        d[n8, c] = 1e-6
        fd.append((float(energy(jnp.asarray(x + d), p, topo)) - float(energy(jnp.asarray(x - d), p, topo))) / 2e-6)
    np.testing.assert_allclose(model.gradient_of(k, x)[n8], fd, rtol=1e-6, atol=1e-6)


def test_p0_is_the_fld_values_and_charges_are_differentiable_in_dipoles(model):
    assert list(model.param_refs) == sorted(model.param_refs)
    np.testing.assert_array_equal(model.p0, [model.ff.value(r) for r in model.param_refs])
    k = 0
    stretch = next(it for it in model.assignments[k].of("stretch") if len(it.refs) > 2 and it.values[2] != 0.0)
    a, b = stretch.atoms
    r0_slot, mu_slot = model.param_refs.index(stretch.refs[0]), model.param_refs.index(stretch.refs[2])
    jac = jax.jacobian(model.atom_charges)(jnp.asarray(model.p0), model.structure(k))
    r0, mu = model.p0[r0_slot], model.p0[mu_slot]
    assert jac[a, mu_slot] == pytest.approx(1.0 / (DEBYE_PER_E_ANGSTROM * r0), rel=1e-12)
    assert jac[b, mu_slot] == pytest.approx(-1.0 / (DEBYE_PER_E_ANGSTROM * r0), rel=1e-12)
    assert jac[a, r0_slot] == pytest.approx(-mu / (DEBYE_PER_E_ANGSTROM * r0**2), rel=1e-12)
