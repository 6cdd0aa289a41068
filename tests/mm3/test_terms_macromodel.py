"""Each MM3* term against MacroModel, on MacroModel's own interaction lists (.mmo).

Parameters come from the `.fld` line MacroModel names in each row (the printed ones are
rounded); geometry from the .mmo coordinates. Per row the energy must agree to the print
precision (0.0005 kJ/mol plus rounding of the geometry), per term the total to 0.01 kJ/mol.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import q2mm.jaxconfig  # noqa: F401
from q2mm.io.fld import read_fld
from q2mm.mm3 import nonbonded, terms
from tests.mm3.test_terms_reference import MmoReference, mmo_references  # noqa: F401

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
    """Hydrogens H1 moved 0.923 toward their lowest-numbered bonded neighbour (numpy)."""
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
    return x[parent] + factor[:, None] * (x - x[parent]), factor


class Combined:
    """The six structures side by side: one atom array, rows with global atom indices.

    Evaluating every structure in one call keeps the test fast (one shape per term).
    """

    def __init__(self, refs: dict[int, MmoReference]):
        self.refs = refs
        xs, fs, self.offset = [], [], {}
        start = 0
        for k, ref in refs.items():
            xr, f = working_coords(ref)
            self.offset[k] = start
            xs.append(xr)
            fs.append(f)
            start += len(xr)
        self.xr = jnp.asarray(np.vstack(xs))
        self.x = jnp.asarray(np.vstack([ref.xyz for ref in refs.values()]))
        self.factor = jnp.asarray(np.concatenate(fs))

    def rows(self, section: str):
        """(structure, row) for every row of a section, structures in order."""
        return [(k, row) for k, ref in self.refs.items() for row in getattr(ref, section)]

    def atoms(self, section: str, pick=lambda row: row[0]) -> jnp.ndarray:
        return jnp.asarray(
            np.array([[a + self.offset[k] for a in pick(row)] for k, row in self.rows(section)], dtype=np.int64)
        )

    def check(self, term: str, section: str, energies_kcal, printed_column: int) -> None:
        rows = self.rows(section)
        e_kj = np.asarray(energies_kcal) * KJ
        printed = np.array([row[printed_column] for _, row in rows])
        worst = np.max(np.abs(e_kj - printed)) if len(rows) else 0.0
        assert worst < ROW_TOL, f"{term}: worst row off by {worst:.4f} kJ/mol"
        which = np.array([k for k, _ in rows])
        for k, ref in self.refs.items():
            total = float(e_kj[which == k].sum())
            assert abs(total - ref.totals[term]) < TOTAL_TOL, f"{term} structure {k}: {total:.4f} vs {ref.totals[term]}"


@pytest.fixture(scope="module")
def combined(mmo_references) -> Combined:
    return Combined(mmo_references)


def _r0_of_bonds(combined: Combined, ff) -> dict[tuple[int, frozenset], float]:
    return {(k, frozenset(row[0])): fld_values(ff, row[-1])[0] for k, row in combined.rows("stretch")}


def test_stretch_matches_macromodel(combined, ff):
    r0, kk = np.array([fld_values(ff, row[-1])[:2] for _, row in combined.rows("stretch")]).T
    r = terms.bond_lengths(combined.xr, combined.factor, combined.atoms("stretch"))
    combined.check("stretch", "stretch", terms.stretch(r, r0, kk), 4)


def test_bend_and_stretch_bend_match_macromodel(combined, ff):
    rows = combined.rows("bend")
    th0, kb = np.array([fld_values(ff, row[-1])[:2] for _, row in rows]).T
    theta = terms.angles_deg(combined.xr, combined.atoms("bend"))
    np.testing.assert_allclose(theta, [row[4] for _, row in rows], atol=2e-3)
    combined.check("bend", "bend", terms.bend(theta, th0, kb), 5)
    r0 = _r0_of_bonds(combined, ff)
    legs1, legs2 = combined.atoms("bend", lambda row: row[0][:2]), combined.atoms("bend", lambda row: row[0][1:])
    dr1 = terms.bond_lengths(combined.xr, combined.factor, legs1) - np.array(
        [r0[(k, frozenset(row[0][:2]))] for k, row in rows]
    )
    dr2 = terms.bond_lengths(combined.xr, combined.factor, legs2) - np.array(
        [r0[(k, frozenset(row[0][1:]))] for k, row in rows]
    )
    ksb = np.array([row[2] for _, row in rows])  # printed to 3 decimals, as in the .fld rows
    combined.check("stretch_bend", "bend", terms.stretch_bend(dr1, dr2, theta - th0, ksb), 6)


def test_bend_bend_matches_macromodel(combined):
    rows = combined.rows("bend_bend")
    first = combined.atoms("bend_bend", lambda row: (row[0][1], row[0][0], row[0][2]))
    second = combined.atoms("bend_bend", lambda row: (row[0][3], row[0][0], row[0][4]))
    kbb, i1, i2 = (np.array([row[n] for _, row in rows]) for n in (1, 2, 4))
    t1, t2 = terms.angles_deg(combined.xr, first), terms.angles_deg(combined.xr, second)
    combined.check("bend_bend", "bend_bend", terms.bend_bend(t1 - i1, t2 - i2, kbb), 6)


def torsion_v(ff, row) -> np.ndarray:
    """V1..V3 of the row's .fld line; MacroModel spreads a ring row over the torsions of its
    bond (printed V = fld V / n), which the printed values reveal."""
    v = np.array(fld_values(ff, row[-1]))
    printed = np.array(row[1:4])
    big = np.argmax(np.abs(v))
    share = round(v[big] / printed[big]) if printed[big] else 1
    return v / share


def test_torsion_matches_macromodel(combined, ff):
    rows = combined.rows("torsion")
    v = np.array([torsion_v(ff, row) for _, row in rows])
    w = terms.dihedrals_rad(combined.xr, combined.atoms("torsion"))
    diff = (np.degrees(w) - np.array([row[4] for _, row in rows]) + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(diff)) < 0.06  # same sign convention as MacroModel
    combined.check("torsion", "torsion", terms.torsion(w, jnp.asarray(v)), 5)


def test_out_of_plane_matches_macromodel(combined, ff):
    kk = np.array([fld_values(ff, row[-1])[1] for _, row in combined.rows("improper")])
    w = terms.dihedrals_rad(combined.xr, combined.atoms("improper"))
    combined.check("out_of_plane", "improper", terms.out_of_plane(w, kk), 5)


def test_torsion_stretch_matches_macromodel(combined, ff):
    rows = combined.rows("torsion_stretch")
    assert rows  # structures 2-8 have them
    r0 = _r0_of_bonds(combined, ff)
    centre = combined.atoms("torsion_stretch", lambda row: row[0][1:3])
    dr = terms.bond_lengths(combined.xr, combined.factor, centre) - np.array(
        [r0[(k, frozenset(row[0][1:3]))] for k, row in rows]
    )
    w = terms.dihedrals_rad(combined.xr, combined.atoms("torsion_stretch"))
    kts = np.array([row[1] for _, row in rows])
    combined.check("torsion_stretch", "torsion_stretch", terms.torsion_stretch(w, dr, kts), 5)


def test_buckingham_and_softcut_match_macromodel(combined):
    """Printed (rv, scaled eps) reproduce each vdW energy at the working distance, and the
    printed eps of pairs past 6 A is the full eps times the softcut of the nuclear distance."""
    rows = combined.rows("nonbonded")
    pairs = combined.atoms("nonbonded")
    rv, eps = (np.array([row[n] for _, row in rows]) for n in (1, 2))
    e = nonbonded.buckingham(nonbonded.pair_distances(combined.xr, pairs), rv, eps) * KJ
    assert np.max(np.abs(e - np.array([row[5] for _, row in rows]))) < 0.003
    scale = np.asarray(nonbonded.softcut(nonbonded.pair_distances(combined.x, pairs)))
    assert scale.min() == 0.0 and scale.max() == 1.0 and np.any((scale > 0) & (scale < 1))
    by_types: dict[frozenset, list[tuple[float, float]]] = {}
    for (k, row), s, e_ in zip(rows, scale, eps):
        types = combined.refs[k].types
        by_types.setdefault(frozenset((types[row[0][0]], types[row[0][1]])), []).append((s, e_))
    checked = 0
    for values in by_types.values():
        unscaled = {e_ for s, e_ in values if s == 1.0}
        if len(unscaled) != 1:
            continue  # several parameter sets for one type pair (descriptors): skip
        full = unscaled.pop()
        for s, e_ in values:
            assert s * full == pytest.approx(e_, rel=2e-3, abs=2e-6)
            checked += s < 1.0
    assert checked > 100


def test_angle_gradient_is_finite_and_nonzero_at_180_degrees():
    x = jnp.array([[-1.2, 0.0, 0.0], [0.0, 0.0, 0.0], [1.3, 0.0, 0.0]])
    triples = jnp.array([[0, 1, 2]])
    energy = lambda y: terms.bend(terms.angles_deg(y, triples), 120.0, 0.5).sum()
    grad = jax.jit(jax.grad(energy))
    g = grad(x)
    h = jax.jit(jax.hessian(energy))(x)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    # at exactly 180 degrees the bend force is perpendicular and undefined in direction;
    # a tiny displacement off the line gives a large, finite, well-defined restoring force
    x_bent = x.at[0, 1].set(1e-6)
    g_bent = grad(x_bent)
    assert np.all(np.isfinite(g_bent)) and np.abs(g_bent[0, 1]) > 1.0
    np.testing.assert_allclose(terms.angles_deg(x, triples), [180.0])


def test_stretch_gradient_matches_finite_difference():
    r = jnp.array([1.3, 1.6, 2.1])
    grad = jax.jit(jax.vmap(jax.grad(lambda q: terms.stretch(q, 1.5, 4.0))))(r)
    h = 1e-6
    fd = (terms.stretch(r + h, 1.5, 4.0) - terms.stretch(r - h, 1.5, 4.0)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-7)
