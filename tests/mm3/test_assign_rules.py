"""Assignment rules on a small hand-written force field (propene), one rule per test.

Rows use MacroModel's fixed columns: standard atom types at [4:6], [9:11], [14:16], [19:21]
with bond symbols at 7, 12, 17; substructure slots at [4:6], [8:10], [12:14], [16:18];
values at [23:33], [34:44], [45:55]; descriptors at [57:61], [62:66], ...
"""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.io.fld import parse_fld
from q2mm.mm3.interactions import assign_parameters
from q2mm.model.molecule import Bond, Molecule


def _row(kind: str, atoms: str, *values: float, descriptors: str = "") -> str:
    text = f"{kind:<2s}  {atoms}".ljust(23)
    for v in values:
        text += f"{v:10.4f} "
    return (text.ljust(57) + descriptors).rstrip() + "\n"


STANDARD = "".join(
    [
        "-2\n",
        _row(" 1", "C2 = C2", 1.3320, 7.5000, 0.0),
        _row(" 1", "C2 - C3", 1.4990, 6.3000, -0.9),
        _row(" 1", "C2 - H1", 1.1010, 5.1500, -0.6),
        _row(" 1", "C3 - H1", 1.1130, 4.7400, 0.0, descriptors="H1H1 0000"),  # CH3: C3 has 2 more H
        _row(" 1", "C3 - H1", 1.1120, 4.7400, 0.0),
        _row(" 2", "00 * C2 * 00", 120.0, 0.5, 0.0),
        _row(" 2", "00 - C3 - 00", 109.5, 0.55, 0.0),
        _row(" 4", "00 * C2 = C2 * 00", 0.0, 15.0, 0.0),
        _row(" 4", "00 - C2 - C3 - 00", 0.0, 0.0, 0.2),
        _row(" 5", "C2 * 00 * 00 * 00", 0.0, 0.05),
    ]
)


VDW = "".join(
    [
        "-6\n",
        "  C2     1.9600     0.0560     0.0000\n",
        "  C3     2.0400     0.0270     0.0000\n",
        "  H1     1.6200     0.0200    -0.0770\n",
        " END OF NONBONDED INTERACTIONS\n",
    ]
)


def _ff(substructures: str = ""):
    """Rows first (line numbers used below), the vdW table last."""
    return parse_fld(STANDARD + substructures + VDW)


def _propene(geometry_trans: bool = True) -> Molecule:
    """C1(H2)=C2(H)-C3H3, atoms 0..8; H5 on C2 either trans or cis to C3 across nothing
    (its position only matters for the geometric alternative)."""
    coords = np.array(
        [
            [0.0, 0.0, 0.0],
            [1.33, 0.0, 0.0],
            [2.10, 1.30, 0.0],
            [-0.55, 0.93, 0.0],
            [-0.55, -0.93, 0.0],
            [1.90, -0.93, 0.0],
            [3.2, 1.1, 0.0],
            [1.9, 1.9, 0.89],
            [1.9, 1.9, -0.89],
        ]
    )
    if not geometry_trans:
        coords[5] = [1.90, 0.93, 0.9]
    bonds = [(0, 1, 2), (1, 2, 1), (0, 3, 1), (0, 4, 1), (1, 5, 1), (2, 6, 1), (2, 7, 1), (2, 8, 1)]
    return Molecule(
        "propene",
        ("C", "C", "C", "H", "H", "H", "H", "H", "H"),
        coords,
        tuple(Bond(*b) for b in bonds),
        atom_types=("C2", "C2", "C3") + ("H1",) * 6,
    )


def _lines(assignment, kind):
    return {it.atoms if kind != "stretch" else tuple(sorted(it.atoms)): it.fld_line for it in assignment.of(kind)}


def test_descriptors_and_file_order_pick_standard_rows():
    ff = _ff()
    result = assign_parameters(_propene(), ff)
    stretch = _lines(result, "stretch")
    assert stretch[(0, 1)] == 2 and stretch[(1, 2)] == 3 and stretch[(0, 3)] == 4
    assert stretch[(2, 6)] == 5  # methyl C-H: two other H on C3 -> descriptor row 5, not row 6
    # the dipole row C2 - C3 is oriented as in the row: (C2, C3)
    assert next(it for it in result.of("stretch") if set(it.atoms) == {1, 2}).atoms == (1, 2)


def test_torsions_need_matching_bond_orders_and_impropers_take_the_centre_first():
    result = assign_parameters(_propene(), _ff())
    lines = {min(t.atoms, t.atoms[::-1]): t.fld_line for t in result.of("torsion")}
    assert lines[(2, 1, 0, 3)] == 9 and lines[(5, 1, 2, 6)] == 10
    assert (0, 1, 2, 6) not in lines  # '00 - C2' needs a single bond; C1=C2 is double: no term
    impropers = {it.atoms[1]: it.atoms for it in result.of("improper")}
    assert impropers == {0: (1, 0, 3, 4), 1: (0, 1, 2, 5)}


SUBSTRUCTURE = "".join(
    [
        "-3\n",
        " C  Propene fit OPT\n",
        " 9  C2=C2-C3\n",
        "-2\n",
        _row("aA", " 1   2   3", 180.0, 45.0),  # alternative a: C1-C2-C3 within 180 +- 45
        _row(" 1", " 1   2", 1.3400, 9.0000),
        _row(" 1", " 2   3", 1.5000, 5.0000),
        _row("a1", " 2   3", 1.5100, 5.5000),
        _row(" 2", " 2   3  H1", 110.0, 0.6),  # H1 outside the match only
        _row(" 2", " 2   3  00", 111.0, 0.7),  # 00: any atom, and later rows win
        _row(" 2", " 1   2   3", 124.0, 0.8),
        _row(" 4", "00   1   2  00", 0.0, 12.0, 0.0),  # shared over the 4 torsions about C1=C2
        _row(" 5", " 2   1   3  H1", 0.0, 0.07),
        "-3\n",
    ]
)


def test_substructure_rows_beat_standard_rows_and_last_row_wins():
    result = assign_parameters(_propene(), _ff(SUBSTRUCTURE))
    stretch = _lines(result, "stretch")
    assert stretch[(0, 1)] == 17 and stretch[(1, 2)] == 18  # plain rows: bent propene
    bends = {min(b.atoms, b.atoms[::-1]): b.fld_line for b in result.of("bend")}
    assert bends[(1, 2, 6)] == 21  # the '00' row comes after the 'H1' row: it wins
    assert bends[(0, 1, 2)] == 22
    assert bends[(3, 0, 4)] == 7  # no substructure row for it: standard
    assert next(b for b in result.of("bend") if b.atoms[1] == 2).source == "substructure 1"


def test_named_types_in_substructure_rows_only_match_atoms_outside_the_match():
    """'2 3 C2' would fit C2-C3-C2 only through a matched atom: it must not apply."""
    extra = SUBSTRUCTURE.replace(_row(" 2", " 1   2   3", 124.0, 0.8), _row(" 2", " 3   2  C2", 99.0, 0.9))
    bends = {min(b.atoms, b.atoms[::-1]): b.fld_line for b in assign_parameters(_propene(), _ff(extra)).of("bend")}
    assert bends[(0, 1, 2)] == 7


def test_wildcard_ended_substructure_torsion_is_shared_over_the_bond():
    torsions = [
        t for t in assign_parameters(_propene(), _ff(SUBSTRUCTURE)).of("torsion") if t.atoms[1:3] in ((0, 1), (1, 0))
    ]
    assert len(torsions) == 4
    assert all(t.fld_line == 23 and t.scale == pytest.approx(0.25) for t in torsions)
    assert all(t.values[1] == pytest.approx(3.0) for t in torsions)


def test_alternative_rows_apply_where_the_geometric_criterion_holds():
    linear = _propene()
    coords = linear.coords.copy()
    coords[2] = [2.83, 0.0, 0.0]  # C1-C2-C3 = 180 deg
    result = assign_parameters(linear.with_(coords=coords), _ff(SUBSTRUCTURE))
    assert _lines(result, "stretch")[(1, 2)] == 19  # the a1 row
    assert _lines(result, "stretch")[(0, 1)] == 17  # no alternative for C1=C2


def test_substructure_out_of_plane_row_names_the_centre_by_position():
    impropers = {it.atoms[1]: it for it in assign_parameters(_propene(), _ff(SUBSTRUCTURE)).of("improper")}
    assert impropers[1].atoms == (0, 1, 2, 5) and impropers[1].values == (0.07,)
    assert impropers[1].source == "substructure 1"
    assert impropers[0].source == "standard"


TWO_OPT_SUBSTRUCTURES = "".join(
    [
        "-3\n",
        " C  Propene ends OPT\n",
        " 9  C2=C2\n",
        "-2\n",
        _row(" 1", " 1   2", 1.3400, 9.0000),
        "-3\n",
        " C  Propene middle OPT\n",
        " 9  C2=C2-C3\n",
        "-2\n",
        _row("aA", " 1   2   3", 180.0, 45.0),  # alternative a: C1-C2-C3 within 180 +- 45
        _row(" 2", " 1   2   3", 124.0, 0.8),
        _row("a2", " 1   2   3", 170.0, 0.3),
        _row(" 4", "00   1   2  00", 0.0, 12.0, 0.0),
        _row("a4", "00   1   2  00", 0.0, 8.0, 0.0),
        "-3\n",
    ]
)


@pytest.mark.parametrize("linear", [False, True])
def test_two_opt_substructures_and_alternative_angle_and_torsion_rows(linear):
    """Both OPT substructures apply; a2/a4 rows replace their plain rows where aA holds."""
    molecule = _propene()
    if linear:
        coords = molecule.coords.copy()
        coords[2] = [2.83, 0.0, 0.0]  # C1-C2-C3 = 180 deg
        molecule = molecule.with_(coords=coords)
    ff = _ff(TWO_OPT_SUBSTRUCTURES)
    assert [s.name for s in ff.substructures if s.opt] == ["Propene ends OPT", "Propene middle OPT"]
    result = assign_parameters(molecule, ff)
    line = {row.values[:2]: row.line for row in ff.rows if row.substructure is not None}
    assert _lines(result, "stretch")[(0, 1)] == line[(1.34, 9.0)]
    bends = {min(b.atoms, b.atoms[::-1]): b.fld_line for b in result.of("bend")}
    assert bends[(0, 1, 2)] == line[(170.0, 0.3) if linear else (124.0, 0.8)]
    about_double = {t.fld_line for t in result.of("torsion") if set(t.atoms[1:3]) == {0, 1}}
    assert about_double == {line[(0.0, 8.0) if linear else (0.0, 12.0)]}
    refs = set(result.refs())
    assert {r.line for r in ff.active_refs()} & {r.line for r in refs}
