"""MacroModel .mmo energy breakdowns: every table, totals, connection table."""

from __future__ import annotations

from pathlib import Path

import pytest

from q2mm.errors import InputFormatError
from q2mm.io.fld import read_fld
from q2mm.io.mmo import read_mmo

STRUCTURES = [1, 2, 4, 6, 7, 8]
SUMMED = [
    "stretch",
    "bend",
    "stretch_bend",
    "bend_bend",
    "proper_torsion",
    "out_of_plane",
    "torsion_stretch",
    "van_der_waals",
    "electrostatic",
]


@pytest.fixture(scope="module")
def s1(rh_dir: Path):
    return read_mmo(rh_dir / "macromodel" / "structure_1.mmo")


def test_header_counts_match_parsed_rows(rh_dir: Path):
    for k in STRUCTURES:
        b = read_mmo(rh_dir / "macromodel" / f"structure_{k}.mmo")
        listed = b.listed_counts()
        for key in ("stretch", "bend", "bend_bend", "torsion", "improper", "nonbonded"):
            assert listed[key] == b.counts[key], (k, key)
        assert 0 < listed["cross_terms"] <= b.counts["cross_terms"] or k == 1  # only non-zero rows printed


@pytest.mark.parametrize("k", STRUCTURES)
def test_listed_energies_sum_to_printed_totals(rh_dir: Path, k: int):
    """Each printed row carries 3 decimals: the sum may drift by 0.0005 per row."""
    b = read_mmo(rh_dir / "macromodel" / f"structure_{k}.mmo")
    sums = b.listed_sums()
    rows = {
        "stretch": len(b.stretches),
        "bend": len(b.bends),
        "stretch_bend": len(b.bends),
        "bend_bend": len(b.bend_bends),
        "proper_torsion": len(b.torsions),
        "out_of_plane": len(b.impropers),
        "torsion_stretch": len(b.cross_terms),
        "van_der_waals": len(b.nonbonded),
        "electrostatic": len(b.nonbonded),
    }
    for key in SUMMED:
        assert sums[key] == pytest.approx(b.totals[key], abs=0.0005 * rows[key] + 1e-4), key
    assert sum(b.totals[key] for key in SUMMED) + b.totals["hydrogen_bonding"] == pytest.approx(
        b.totals["total"], abs=2e-4
    )
    assert b.totals["total"] == pytest.approx(b.totals_kcal["total"] * 4.184, abs=1e-3)


def test_stretch_row(s1):
    row = s1.stretches[0]
    assert row.atoms == (1, 13) and row.atoms0 == (0, 12)
    assert (row.k, row.r0, row.r, row.energy) == (1.5293, 2.2886, 2.2777, 0.056)
    assert (row.select, row.alts, row.ff_line) == ("Subst", 17, 1862)
    assert row.comment == "Rhodium catalyzed hydrogenati"
    assert s1.stretches[6].comment == "O=C" and s1.stretches[6].ff_line == 95


def test_bend_and_stretch_bend_row(s1):
    row = next(r for r in s1.bends if r.atoms == (2, 3, 4))
    assert (row.k, row.k_sb, row.theta0, row.theta, row.energy, row.energy_sb) == (
        1.07,
        0.13,
        124.8,
        123.08,
        0.297,
        -0.005,
    )
    assert (row.select, row.alts, row.ff_line) == ("O2", 0, 285)


def test_bend_bend_row(s1):
    row = s1.bend_bends[0]
    assert row.atoms == (3, 2, 4, 2, 12)
    assert row.angle1 == (2, 3, 4) and row.angle2 == (2, 3, 12)
    assert (row.k, row.theta_1, row.theta_2, row.energy) == (0.072, 123.0795, 120.7523, 0.018)


def test_torsion_and_improper_rows(s1):
    tor = next(r for r in s1.torsions if r.atoms == (2, 3, 4, 5))
    assert (tor.v1, tor.v2, tor.v3, tor.angle, tor.energy, tor.ff_line) == (0.0, 4.5, 0.0, 7.0, 0.278, 950)
    imp = next(r for r in s1.impropers if r.atoms == (5, 6, 10, 9))
    assert (imp.v2, imp.angle, imp.energy, imp.comment, imp.ff_line) == (0.05, -145.8, 1.902, "", 1023)


def test_cross_terms_structure_4(rh_dir: Path):
    b = read_mmo(rh_dir / "macromodel" / "structure_4.mmo")
    row = b.cross_terms[0]
    assert row.atoms == (13, 20, 37, 39)
    assert (row.k_ts, row.k_tb, row.k_tt, row.angle, row.energy) == (0.059, 0.0, 0.0, 84.3, -0.021)


def test_nonbonded_rows(s1):
    row = s1.nonbonded[0]
    assert row.atoms == (1, 8)
    assert (row.rv, row.eps, row.qq, row.distance, row.energy_vdw, row.energy_elec) == (
        3.93,
        0.1646,
        -0.0207,
        4.02,
        -0.761,
        -7.148,
    )
    assert s1.nonbonded[3].eps == pytest.approx(0.09721)  # printed as .9721E-01


def test_connection_table_and_charges(s1):
    assert s1.n_atoms == 36 and s1.title == "1 ZDMP from JCTC SI"
    rh = s1.atoms[0]
    assert (rh.type_name, rh.charge) == ("RH", 0.046)
    assert dict(rh.attached) == {13: "-", 18: "-", 17: "-", 14: "-", 2: "", 5: ""}
    assert s1.atoms[6].attached == ((5, "-"), (8, "%"))
    assert s1.charges.sum() == pytest.approx(1.0, abs=2e-3)
    assert s1.total_charge == 1.0
    assert s1.coords.shape == (36, 3)


def test_equations_and_cutoffs(s1):
    assert s1.equations["Van der Waals"] == (3, "MM3 Softcut Buckingham")
    assert s1.equations["Out-of-plane     (OPB)"][1] == "Cosine mimic of harmonic out-of-plane"
    assert s1.cutoffs == {"van der Waals": 7.0, "electrostatic": 12.0, "hydrogen bond": 4.0}


def test_ff_lines_point_at_matching_fld_rows(rh_dir: Path, s1):
    """The 'FF Line' column names the mm3.fld row whose values MacroModel printed."""
    ff = read_fld(rh_dir / "mm3.fld")
    for row in s1.stretches:
        fld = ff.row(row.ff_line)
        assert fld.term == "bond" and (fld.values[0], fld.values[1]) == (row.r0, row.k)
    for row in s1.torsions:
        fld = ff.row(row.ff_line)
        assert fld.term == "torsion" and fld.values == (row.v1, row.v2, row.v3)
    for row in s1.impropers:
        assert ff.row(row.ff_line).term == "improper" and ff.row(row.ff_line).values[1] == row.v2


@pytest.mark.parametrize("k", STRUCTURES)
def test_every_ff_line_resolves_to_the_row_macromodel_used(rh_dir: Path, k: int):
    """Stretch, bend, torsion and improper rows name a .fld line carrying the printed values.

    Bends print 3 decimals (rounded half up, so compare within 0.0005). Torsions matched by
    the benzenoid wildcard row '00 2 3 00' (line 1150) print V/n, n the number of torsions
    about that ring bond; every other torsion prints the row's V1-V3 unchanged.
    """
    ff = read_fld(rh_dir / "mm3.fld")
    b = read_mmo(rh_dir / "macromodel" / f"structure_{k}.mmo")
    for r in b.stretches:
        row = ff.row(r.ff_line)
        assert row.term == "bond" and (row.values[0], row.values[1]) == (r.r0, r.k)
    for r in b.bends:
        row = ff.row(r.ff_line)
        assert row.term == "angle"
        assert row.values[0] == pytest.approx(r.theta0, abs=5.0001e-4)
        assert row.values[1] == pytest.approx(r.k, abs=5.0001e-4)
    for r in b.torsions:
        row = ff.row(r.ff_line)
        assert row.term == "torsion"
        if r.ff_line == 1150:
            n = row.values[1] / r.v2
            assert n in (1.0, 2.0, 3.0, 4.0, 6.0, 9.0) and (row.values[0], row.values[2]) == (0.0, 0.0)
        else:
            assert row.values == (r.v1, r.v2, r.v3)
    for r in b.impropers:
        row = ff.row(r.ff_line)
        assert row.term == "improper" and row.values[1] == r.v2


def test_bend_bend_constant_is_product_of_angle_row_fields(rh_dir: Path, s1):
    """K(bb) printed = product of field 3 ('Bend-Bend FC') of the two angles' .fld rows."""
    ff = read_fld(rh_dir / "mm3.fld")
    by_atoms = {}
    for r in s1.bends:
        by_atoms[r.atoms] = by_atoms[r.atoms[::-1]] = r
    for bb in s1.bend_bends:
        f1 = ff.row(by_atoms[bb.angle1].ff_line).values[2]
        f2 = ff.row(by_atoms[bb.angle2].ff_line).values[2]
        assert f1 * f2 == pytest.approx(bb.k, abs=5e-5)


def test_several_listings_in_one_file(rh_dir: Path, tmp_path: Path):
    from q2mm.io.mmo import read_mmo_all

    joined = tmp_path / "two.mmo"
    joined.write_bytes(
        (rh_dir / "macromodel" / "structure_1.mmo").read_bytes()
        + (rh_dir / "macromodel" / "structure_2.mmo").read_bytes()
    )
    first, second = read_mmo_all(joined)
    assert (first.n_atoms, second.n_atoms) == (36, 38)
    assert first.totals["total"] == 403.9263 and second.title.startswith("2 DMPE")
    with pytest.raises(InputFormatError, match="exactly one"):
        read_mmo(joined)
