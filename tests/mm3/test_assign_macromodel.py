"""Parameter assignment against MacroModel's own evaluation (rh-enamide `.mmo` files).

Every bonded interaction MacroModel lists must be assigned the `.fld` row it printed as
"FF Line" (a descriptor-continuation line resolves to its row), with the same values, and
no interaction MacroModel lists may be missing or extra. Torsions whose row is all zero are
not listed by MacroModel (they are kept in the assignment; their energy is zero).
"""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.errors import ParameterAssignmentError
from q2mm.io.fld import read_fld
from q2mm.io.mae import read_mae
from q2mm.io.mmo import read_mmo
from q2mm.mm3.interactions import assign_parameters

STRUCTURES_WITH_MMO = (1, 2, 4, 6, 7, 8)


@pytest.fixture(scope="module")
def rh(rh_dir):
    ff = read_fld(rh_dir / "mm3.fld")
    molecules = read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")
    assignments = {k: assign_parameters(m, ff) for k, m in enumerate(molecules, start=1)}
    mmo = {k: read_mmo(rh_dir / "macromodel" / f"structure_{k}.mmo") for k in STRUCTURES_WITH_MMO}
    return ff, molecules, assignments, mmo


def _key(atoms):
    """Direction-free key of a chain of atoms."""
    atoms = tuple(atoms)
    return min(atoms, atoms[::-1])


def _improper_key(atoms):
    return (atoms[1], tuple(sorted((atoms[0], atoms[2], atoms[3]))))


def _compare_lines(ff, listed, mine, key):
    ref = {key(r.atoms0): ff.row(r.ff_line).line for r in listed}
    got = {key(it.atoms): it.fld_line for it in mine}
    assert set(ref) - set(got) == set(), "interactions MacroModel lists but we do not"
    assert set(got) - set(ref) == set(), "interactions we assign but MacroModel does not list"
    wrong = {k: (ref[k], got[k]) for k in ref if ref[k] != got[k]}
    assert wrong == {}, "(MacroModel FF line, ours)"


@pytest.mark.parametrize("k", STRUCTURES_WITH_MMO)
def test_stretch_rows_and_values_match_macromodel(rh, k):
    ff, _, assignments, mmo = rh
    stretches = assignments[k].of("stretch")
    _compare_lines(ff, mmo[k].stretches, stretches, _key)
    by_key = {_key(it.atoms): it for it in stretches}
    for row in mmo[k].stretches:
        r0, kb = by_key[_key(row.atoms0)].values[:2]
        assert (r0, kb) == pytest.approx((row.r0, row.k), abs=1e-4)


@pytest.mark.parametrize("k", STRUCTURES_WITH_MMO)
def test_bend_and_stretch_bend_match_macromodel(rh, k):
    ff, _, assignments, mmo = rh
    bends = assignments[k].of("bend")
    _compare_lines(ff, mmo[k].bends, bends, _key)
    by_key = {_key(it.atoms): it for it in bends}
    ksb = {_key(it.atoms): it.values[0] for it in assignments[k].of("stretch_bend")}
    for row in mmo[k].bends:
        theta0, kb = by_key[_key(row.atoms0)].values
        assert (theta0, kb) == pytest.approx((row.theta0, row.k), abs=1e-3)
        assert ksb.get(_key(row.atoms0), 0.0) == pytest.approx(row.k_sb, abs=1e-4)


@pytest.mark.parametrize("k", STRUCTURES_WITH_MMO)
def test_torsion_rows_and_values_match_macromodel(rh, k):
    ff, _, assignments, mmo = rh
    nonzero = [it for it in assignments[k].of("torsion") if not it.is_zero]
    _compare_lines(ff, mmo[k].torsions, nonzero, _key)
    by_key = {_key(it.atoms): it for it in nonzero}
    for row in mmo[k].torsions:
        assert by_key[_key(row.atoms0)].values[:3] == pytest.approx((row.v1, row.v2, row.v3), abs=1e-4)


@pytest.mark.parametrize("k", STRUCTURES_WITH_MMO)
def test_out_of_plane_rows_and_atom_order_match_macromodel(rh, k):
    ff, _, assignments, mmo = rh
    impropers = assignments[k].of("improper")
    _compare_lines(ff, mmo[k].impropers, impropers, _improper_key)
    # MacroModel's atom order (n1, centre, n2, n3) fixes the sign of the improper dihedral.
    assert sorted(it.atoms for it in impropers) == sorted(r.atoms0 for r in mmo[k].impropers)
    for row in mmo[k].impropers:
        match = next(it for it in impropers if it.atoms == row.atoms0)
        assert match.values == pytest.approx((row.v2,), abs=1e-4)


@pytest.mark.parametrize("k", STRUCTURES_WITH_MMO)
def test_bend_bend_constants_and_ideal_angles_match_macromodel(rh, k):
    """Kbb and the ideal angles bend-bend uses (a standard row's, for substructure angles)."""
    _, _, assignments, mmo = rh

    def key(atoms):
        return (atoms[0], frozenset({frozenset(atoms[1:3]), frozenset(atoms[3:5])}))

    mine = {key(it.atoms): it for it in assignments[k].of("bend_bend") if it.values[0] * it.values[1] != 0.0}
    ref = {key(r.atoms0): r for r in mmo[k].bend_bends}
    assert set(mine) == set(ref)
    for x, row in ref.items():
        it = mine[x]
        assert it.values[0] * it.values[1] == pytest.approx(row.k, abs=1e-4)
        ideal = {frozenset(it.atoms[1:3]): it.values[2], frozenset(it.atoms[3:5]): it.values[3]}
        assert ideal[frozenset(row.atoms0[1:3])] == pytest.approx(row.theta0_1, abs=1e-3)
        assert ideal[frozenset(row.atoms0[3:5])] == pytest.approx(row.theta0_2, abs=1e-3)


@pytest.mark.parametrize("k", STRUCTURES_WITH_MMO)
def test_torsion_stretch_constants_match_macromodel(rh, k):
    _, _, assignments, mmo = rh
    mine = {_key(it.atoms): it.values[0] for it in assignments[k].of("torsion_stretch") if not it.is_zero}
    ref = {_key(r.atoms0): r.k_ts for r in mmo[k].cross_terms if r.k_ts != 0.0}
    assert set(mine) == set(ref)
    assert all(mine[x] == pytest.approx(ref[x], abs=1e-4) for x in ref)


@pytest.mark.parametrize("k", (1, 4, 6))
def test_vdw_radii_and_epsilons_match_macromodel(rh, k):
    """rv = r_i + r_j and eps = sqrt(eps_i eps_j), or a special pair row; pairs under 5 A
    (MacroModel's softcut scales eps down near the 7 A cutoff)."""
    _, _, assignments, mmo = rh
    per_atom = {it.atoms[0]: it.values for it in assignments[k].of("vdw")}
    special = {it.atoms: it.values for it in assignments[k].of("vdw_pair")}
    checked = 0
    for row in mmo[k].nonbonded:
        if row.distance > 5.0:
            continue
        i, j = row.atoms0
        if (i, j) in special:
            rv, eps = special[(i, j)]
        else:
            rv = per_atom[i][0] + per_atom[j][0]
            eps = (per_atom[i][1] * per_atom[j][1]) ** 0.5
        assert (rv, eps) == pytest.approx((row.rv, row.eps), rel=2e-3), row
        checked += 1
    assert checked > 200


def test_alternative_rows_follow_the_trans_to_oxygen_criterion(rh):
    """Structure 1: the P trans to O (angle P-Rh-O within 180 +- 45) gets the `a1` row."""
    ff, molecules, assignments, _ = rh
    rh_p = {it.atoms: it for it in assignments[1].of("stretch") if set(it.atoms) in ({0, 12}, {0, 13})}
    lines = {frozenset(a): ff.row(it.fld_line).alt for a, it in rh_p.items()}
    assert lines == {frozenset({0, 12}): "a", frozenset({0, 13}): ""}


@pytest.mark.parametrize("k", (3, 5, 9))
def test_structures_without_mmo_assign_like_their_conformers(rh, k):
    """3, 5, 9 have no .mmo: everything is assigned, with the same rows per kind as the
    structure of the same ligand (2, 4, 8), whatever the atom numbering."""
    _, _, assignments, _ = rh
    sibling = {3: 2, 5: 4, 9: 8}[k]
    assert assignments[k].missing == []
    for kind, items in assignments[k].interactions.items():
        ours = sorted(tuple(sorted(it.refs)) for it in items)
        theirs = sorted(tuple(sorted(it.refs)) for it in assignments[sibling].of(kind))
        assert ours == theirs, kind


def test_missing_parameters_raise_with_atoms_and_types(rh):
    ff, molecules, _, _ = rh
    strange = molecules[0].with_(atom_types=("SI",) + molecules[0].atom_types[1:], type_numbers=None)
    with pytest.raises(ParameterAssignmentError, match=r"stretch 1-2 \(SI-O2\)"):
        assign_parameters(strange, ff)
    result = assign_parameters(strange, ff, allow_missing=True)
    assert any(m.kind == "stretch" and m.atoms == (0, 1) for m in result.missing)
    assert "without parameters" in result.report()


@pytest.mark.parametrize("k", STRUCTURES_WITH_MMO)
def test_stretch_atoms_in_row_order_give_macromodel_charges(rh, k):
    """Bond dipoles point from the row's first atom to its second: formal charge plus
    +-mu / (4.8032 r0) per bond reproduces the printed charges (3 decimals)."""
    _, molecules, assignments, mmo = rh
    molecule = molecules[k - 1]
    charges = np.array(molecule.formal_charges or [0] * molecule.n_atoms, dtype=float)
    for it in assignments[k].of("stretch"):
        if len(it.values) == 3:
            shift = it.values[2] / (4.8032 * it.values[0])
            charges[it.atoms[0]] += shift
            charges[it.atoms[1]] -= shift
    assert charges == pytest.approx(mmo[k].charges, abs=6e-4)
