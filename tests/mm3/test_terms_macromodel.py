"""Each MM3* term against MacroModel, on MacroModel's own interaction lists (.mmo).

Parameters come from the `.fld` line MacroModel names in each row (the printed ones are
rounded); geometry from the .mmo coordinates. Per row the energy must agree to the print
precision (0.0005 kJ/mol plus rounding of the geometry), per term the total to 0.01 kJ/mol.
"""

from __future__ import annotations

import numpy as np
import pytest

import q2mm.jaxconfig  # noqa: F401
import jax
import jax.numpy as jnp

from q2mm.io.fld import read_fld
from q2mm.mm3 import nonbonded, terms
from tests.mm3.test_terms_reference import STRUCTURES, MmoReference, mmo_references  # noqa: F401

KJ = terms.KJ_PER_KCAL
ROW_TOL = 0.002  # kJ/mol: three printed decimals plus 4-decimal coordinates
TOTAL_TOL = 0.01  # kJ/mol


@pytest.fixture(scope="module")
def ff(rh_dir):
    return read_fld(rh_dir / "mm3.fld")


def fld_values(ff, line: int) -> tuple[float, ...]:
    """Value fields of the row on `line` (a descriptor continuation line takes the row above)."""
    while line not in ff._by_line or ff.row(line).values[0] is None:
        line -= 1
    return tuple(v or 0.0 for v in ff.row(line).values)


def working_coords(ref: MmoReference) -> tuple[np.ndarray, np.ndarray]:
    """Hydrogens H1 moved 0.923 toward their lowest-numbered bonded neighbour."""
    x = ref.xyz
    neighbours: dict[int, list[int]] = {}
    for (i, j), *_ in ref.stretch:
        neighbours.setdefault(i, []).append(j)
        neighbours.setdefault(j, []).append(i)
    parent = np.arange(len(x))
    factor = np.ones(len(x))
    for a, t in enumerate(ref.types):
        if t == "H1":
            parent[a], factor[a] = min(neighbours[a]), 0.923
    return np.asarray(terms.reduce_hydrogens(jnp.asarray(x), jnp.asarray(parent), jnp.asarray(factor))), factor


def check(name: str, energies_kj, ref_rows_kj, total_kj, ref_total):
    energies_kj = np.asarray(energies_kj)
    worst = np.max(np.abs(energies_kj - np.asarray(ref_rows_kj))) if len(ref_rows_kj) else 0.0
    assert worst < ROW_TOL, f"{name}: worst row off by {worst:.4f} kJ/mol"
    assert abs(total_kj - ref_total) < TOTAL_TOL, f"{name}: total {total_kj:.4f} vs {ref_total:.4f}"


@pytest.mark.parametrize("k", STRUCTURES)
def test_stretch_matches_macromodel(k, mmo_references, ff):
    ref = mmo_references[k]
    xr, f = working_coords(ref)
    pairs = np.array([row[0] for row in ref.stretch])
    r0, kk = np.array([fld_values(ff, row[-1])[:2] for row in ref.stretch]).T
    r = terms.bond_lengths(jnp.asarray(xr), jnp.asarray(f), jnp.asarray(pairs))
    e = terms.stretch(r, r0, kk) * KJ
    check("stretch", e, [row[4] for row in ref.stretch], float(e.sum()), ref.totals["stretch"])


@pytest.mark.parametrize("k", STRUCTURES)
def test_bend_and_stretch_bend_match_macromodel(k, mmo_references, ff):
    ref = mmo_references[k]
    xr, f = working_coords(ref)
    triples = np.array([row[0] for row in ref.bend])
    th0, kb = np.array([fld_values(ff, row[-1])[:2] for row in ref.bend]).T
    theta = terms.angles_deg(jnp.asarray(xr), jnp.asarray(triples))
    np.testing.assert_allclose(theta, [row[4] for row in ref.bend], atol=2e-3)
    e = terms.bend(theta, th0, kb) * KJ
    check("bend", e, [row[5] for row in ref.bend], float(e.sum()), ref.totals["bend"])
    r0 = {frozenset(row[0]): fld_values(ff, row[-1])[0] for row in ref.stretch}
    legs1, legs2 = triples[:, [0, 1]], triples[:, [2, 1]]
    length = lambda legs: np.asarray(terms.bond_lengths(jnp.asarray(xr), jnp.asarray(f), jnp.asarray(legs)))
    dr1 = length(legs1) - np.array([r0[frozenset(p)] for p in legs1.tolist()])
    dr2 = length(legs2) - np.array([r0[frozenset(p)] for p in legs2.tolist()])
    ksb = np.array([row[2] for row in ref.bend])  # printed to 3 decimals, as in the .fld rows
    esb = terms.stretch_bend(dr1, dr2, theta - th0, ksb) * KJ
    check("stretch_bend", esb, [row[6] for row in ref.bend], float(esb.sum()), ref.totals["stretch_bend"])


@pytest.mark.parametrize("k", STRUCTURES)
def test_bend_bend_matches_macromodel(k, mmo_references):
    ref = mmo_references[k]
    xr, _ = working_coords(ref)
    rows = ref.bend_bend
    first = np.array([(a1, c, b1) for (c, a1, b1, a2, b2), *_ in rows])
    second = np.array([(a2, c, b2) for (c, a1, b1, a2, b2), *_ in rows])
    kbb, i1, i2 = (np.array([row[n] for row in rows]) for n in (1, 2, 4))
    t1 = terms.angles_deg(jnp.asarray(xr), jnp.asarray(first))
    t2 = terms.angles_deg(jnp.asarray(xr), jnp.asarray(second))
    e = terms.bend_bend(t1 - i1, t2 - i2, kbb) * KJ
    check("bend_bend", e, [row[6] for row in rows], float(e.sum()), ref.totals["bend_bend"])


def torsion_v(ff, row) -> np.ndarray:
    """V1..V3 of the row's .fld line; MacroModel spreads a ring row over the torsions of its
    bond (printed V = fld V / n), which the printed values reveal."""
    v = np.array(fld_values(ff, row[-1]))
    printed = np.array(row[1:4])
    big = np.argmax(np.abs(v))
    share = round(v[big] / printed[big]) if printed[big] else 1
    return v / share


@pytest.mark.parametrize("k", STRUCTURES)
def test_torsion_matches_macromodel(k, mmo_references, ff):
    ref = mmo_references[k]
    xr, _ = working_coords(ref)
    quads = np.array([row[0] for row in ref.torsion])
    v = np.array([torsion_v(ff, row) for row in ref.torsion])
    w = terms.dihedrals_rad(jnp.asarray(xr), jnp.asarray(quads))
    printed_w = np.array([row[4] for row in ref.torsion])
    diff = (np.degrees(w) - printed_w + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(diff)) < 0.06  # same sign convention as MacroModel
    e = terms.torsion(w, jnp.asarray(v)) * KJ
    check("torsion", e, [row[5] for row in ref.torsion], float(e.sum()), ref.totals["torsion"])


@pytest.mark.parametrize("k", STRUCTURES)
def test_out_of_plane_matches_macromodel(k, mmo_references, ff):
    ref = mmo_references[k]
    xr, _ = working_coords(ref)
    quads = np.array([row[0] for row in ref.improper])
    kk = np.array([fld_values(ff, row[-1])[1] for row in ref.improper])
    w = terms.dihedrals_rad(jnp.asarray(xr), jnp.asarray(quads))
    e = terms.out_of_plane(w, kk) * KJ
    check("out_of_plane", e, [row[5] for row in ref.improper], float(e.sum()), ref.totals["out_of_plane"])


@pytest.mark.parametrize("k", STRUCTURES)
def test_torsion_stretch_matches_macromodel(k, mmo_references, ff):
    ref = mmo_references[k]
    xr, f = working_coords(ref)
    r0 = {frozenset(row[0]): fld_values(ff, row[-1])[0] for row in ref.stretch}
    rows = ref.torsion_stretch
    quads = np.array([row[0] for row in rows], dtype=np.int64).reshape(-1, 4)
    centre = quads[:, 1:3]
    dr = terms.bond_lengths(jnp.asarray(xr), jnp.asarray(f), jnp.asarray(centre)) - np.array(
        [r0[frozenset(c)] for c in centre.tolist()]
    )
    w = terms.dihedrals_rad(jnp.asarray(xr), jnp.asarray(quads))
    e = terms.torsion_stretch(w, dr, np.array([row[1] for row in rows])) * KJ
    check("torsion_stretch", e, [row[5] for row in rows], float(e.sum()), ref.totals["torsion_stretch"])


@pytest.mark.parametrize("k", STRUCTURES)
def test_buckingham_and_softcut_match_macromodel(k, mmo_references):
    """Printed (rv, scaled eps) reproduce each vdW energy at the working distance, and the
    printed eps of pairs past 6 A is the full eps times the softcut of the nuclear distance."""
    ref = mmo_references[k]
    xr, _ = working_coords(ref)
    pairs = np.array([row[0] for row in ref.nonbonded])
    rv, eps = (np.array([row[n] for row in ref.nonbonded]) for n in (1, 2))
    r = nonbonded.pair_distances(jnp.asarray(xr), jnp.asarray(pairs))
    e = nonbonded.buckingham(r, rv, eps) * KJ
    assert np.max(np.abs(e - np.array([row[5] for row in ref.nonbonded]))) < 0.003
    r_nuc = np.asarray(nonbonded.pair_distances(jnp.asarray(ref.xyz), jnp.asarray(pairs)))
    scale = np.asarray(nonbonded.softcut(r_nuc))
    assert scale.min() < 0.5 and scale.max() == 1.0
    full = {}
    for (i, j), s, e_ in zip(pairs.tolist(), scale, eps):
        full.setdefault(frozenset((ref.types[i], ref.types[j])), []).append((s, e_))
    for values in full.values():
        unscaled = [e_ for s, e_ in values if s == 1.0]
        if not unscaled or len(set(unscaled)) != 1:
            continue  # several parameter sets for one type pair (descriptors): skip
        for s, e_ in values:
            assert s * unscaled[0] == pytest.approx(e_, rel=2e-3, abs=2e-6)


def test_angle_gradient_is_finite_and_nonzero_at_180_degrees():
    x = jnp.array([[-1.2, 0.0, 0.0], [0.0, 0.0, 0.0], [1.3, 0.0, 0.0]])
    triples = jnp.array([[0, 1, 2]])
    energy = lambda y: terms.bend(terms.angles_deg(y, triples), 120.0, 0.5).sum()
    g = jax.grad(energy)(x)
    h = jax.hessian(energy)(x)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    # at exactly 180 degrees the bend force is perpendicular and undefined in direction;
    # a tiny displacement off the line gives a large, finite, well-defined restoring force
    x_bent = x.at[0, 1].set(1e-6)
    g_bent = jax.grad(energy)(x_bent)
    assert np.all(np.isfinite(g_bent)) and np.abs(g_bent[0, 1]) > 1.0
    np.testing.assert_allclose(terms.angles_deg(x, triples), [180.0])


def test_stretch_gradient_matches_finite_difference():
    r = jnp.array([1.3, 1.6, 2.1])
    grad = jax.vmap(jax.grad(lambda q: terms.stretch(q, 1.5, 4.0)))(r)
    h = 1e-6
    fd = (terms.stretch(r + h, 1.5, 4.0) - terms.stretch(r - h, 1.5, 4.0)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-7)
