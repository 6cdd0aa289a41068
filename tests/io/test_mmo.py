"""MacroModel .mmo energy breakdowns: every table, totals, connection table."""

from __future__ import annotations

from pathlib import Path

import pytest

from q2mm.io.fld import read_fld
from q2mm.io.mmo import read_mmo

STRUCTURES = [1, 2, 4, 6, 7, 8]
SUMMED = ["stretch", "bend", "stretch_bend", "bend_bend", "proper_torsion", "out_of_plane",
          "torsion_stretch", "van_der_waals", "electrostatic"]


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
    rows = {"stretch": len(b.stretches), "bend": len(b.bends), "stretch_bend": len(b.bends),
            "bend_bend": len(b.bend_bends), "proper_torsion": len(b.torsions),
            "out_of_plane": len(b.impropers), "torsion_stretch": len(b.cross_terms),
            "van_der_waals": len(b.nonbonded), "electrostatic": len(b.nonbonded)}
    for key in SUMMED:
        assert sums[key] == pytest.approx(b.totals[key], abs=0.0005 * rows[key] + 1e-4), key
    assert sum(b.totals[key] for key in SUMMED) + b.totals["hydrogen_bonding"] == pytest.approx(b.totals["total"], abs=2e-4)
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
    assert (row.k, row.k_sb, row.theta0, row.theta, row.energy, row.energy_sb) == (1.07, 0.13, 124.8, 123.08, 0.297, -0.005)
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
    assert (row.rv, row.eps, row.qq, row.distance, row.energy_vdw, row.energy_elec) == (3.93, 0.1646, -0.0207, 4.02, -0.761, -7.148)
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
