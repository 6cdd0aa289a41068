"""MacroModel .fld reader/writer on the shared rh-enamide force fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from q2mm.errors import FieldOverflowError, Q2MMError
from q2mm.io.fld import parse_fld, read_fld, write_fld
from q2mm.model.forcefield import ForceFieldWriteError, ParamRef, format_value


@pytest.fixture(scope="module")
def mm3(rh_dir: Path):
    return read_fld(rh_dir / "mm3.fld")


def all_fld_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.fld"))


def test_round_trip_is_byte_identical_for_every_shared_fld(data_root: Path, tmp_path: Path):
    files = all_fld_files(data_root)
    assert len(files) >= 5
    for src in files:
        ff = read_fld(src)
        out = write_fld(ff, tmp_path / src.name)
        assert out.read_bytes() == src.read_bytes(), src


def test_function_table_unit_factors(mm3):
    factors = {f.term: f.factor for f in mm3.functions if f.factor is not None}
    assert factors["STR"] == pytest.approx(601.99392)
    assert factors["TOR"] == pytest.approx(2.092)
    assert factors["IMP"] == pytest.approx(60.19939)
    assert factors["ELE"] == pytest.approx(1389.5)
    sel = [f for f in mm3.functions if f.term == "SEL"]
    assert [f.label for f in sel] == ["O", "M", "A", "1", "2", "3"]
    assert sel[0].description == "Original MM3 Parameters"


def test_equivalence_classes(mm3):
    eq = {e.name: e.members for e in mm3.equivalences}
    assert eq["PX"] == ("P0", "P3", "P4", "P5")
    assert eq["HX"] == ("H1", "H2", "H3", "H4", "H5", "H6", "H7")
    assert mm3.equivalences[0].line == 48


def test_standard_bond_row(mm3):
    row = mm3.row(95)  # O2 = C2, the row MacroModel matched for O=C in structure_1.mmo
    assert row.term == "bond" and row.substructure is None
    assert row.atoms == ("O2", "C2") and row.bond_orders == ("=",)
    assert row.values == (1.208, 10.1, -1.86)
    assert row.comment == "O=C"
    assert row.select == "O 1"


def test_row_kinds_found_in_mm3(mm3):
    terms = {r.term for r in mm3.rows}
    assert {
        "bond",
        "angle",
        "stretch_bend",
        "torsion",
        "improper",
        "vdw_pair",
        "hbond",
        "torsion_stretch",
        "vdw",
    } <= terms
    ts = mm3.row(1011)
    assert ts.term == "torsion_stretch" and ts.atoms == ("00", "C3", "C3", "00") and ts.values[0] == 0.059
    imp = mm3.row(1023)
    assert imp.term == "improper" and imp.atoms == ("C2", "00", "00", "00") and imp.values[1] == 0.05
    sb = mm3.row(438)
    assert sb.term == "stretch_bend" and sb.bond_orders == ("*", "*") and sb.values == (0.13, None, None)
    triple = mm3.row(106)
    assert triple.atoms == ("C1", "C1") and triple.bond_orders == ("%",)


def test_descriptor_continuation_lines_are_not_rows(mm3):
    assert mm3.row(61) is mm3.row(60)
    assert not any(r.line == 61 for r in mm3.rows)
    assert mm3.row(60).descriptors == ("1C200", "0000", "O200", "0000")
    with pytest.raises(KeyError):
        mm3.row(59)


def test_lookups_that_name_no_parameter_are_user_errors(mm3):
    with pytest.raises(Q2MMError, match=r"mm3\.fld: line 59 holds no parameter row$") as caught:
        mm3.value(ParamRef(59, 1))
    assert isinstance(caught.value, KeyError) and str(caught.value).startswith(str(mm3.path))


def test_vdw_table(mm3):
    rh = next(r for r in mm3.rows if r.term == "vdw" and r.atoms == ("RH",))
    assert rh.values == (2.69, 0.14, 0.0) and rh.charge == 1.0
    h1 = [r for r in mm3.rows if r.term == "vdw" and r.atoms == ("H1",)]
    assert h1[1].values[2] == -0.077
    assert mm3.value(ParamRef(rh.line, 1)) == 2.69
    assert mm3.kind(ParamRef(rh.line, 2)) == ("vdw_eps", "kcal/mol")


def test_substructures_and_opt_marker(mm3):
    subs = mm3.substructures
    assert len(subs) == 18
    opt = [s for s in subs if s.opt]
    assert [s.number for s in opt] == [17, 18]
    assert opt[0].patterns == ("HX-RH(-PX)-HX.C2*C2(.2)-N2-C2=O2.2",)
    assert opt[0].name_line == 1856 and opt[0].end_line == 1905
    assert subs[0].name == "Benzenoid" and not subs[0].opt


def test_substructure_rows_use_pattern_positions(mm3):
    row = mm3.row(1862)  # a1   2   3  -> Rh-P alternative bond
    assert row.alt == "a" and row.term == "bond" and row.atoms == (2, 3)
    assert row.substructure.number == 17
    assert row.values == (2.2886, 1.5293, -5.0068)
    tor = mm3.row(1896)
    assert tor.atoms == (1, 2) or tor.term == "torsion"
    wild = mm3.row(1890)
    assert wild.atoms == ("00", 2, 3, "00")
    mixed = mm3.row(1886)
    assert mixed.atoms == (2, 6, "C2")


def test_active_set_is_the_opt_substructures(mm3):
    refs = mm3.active_refs()
    lines = {r.line for r in refs}
    assert min(lines) == 1860 and max(lines) == 1910
    assert 1859 not in lines  # 'aA' row: kind code A has no known parameter layout
    assert ParamRef(1860, 1) in refs and ParamRef(1860, 2) in refs
    assert ParamRef(1860, 3) not in refs  # bond dipoles are fixed by default
    with_dipoles = mm3.active_refs(exclude_kinds=())
    assert ParamRef(1860, 3) in with_dipoles
    kinds = {mm3.kind(r)[0] for r in refs}
    assert kinds == {"bond_r0", "bond_k", "angle_theta0", "angle_k", "torsion_v1", "torsion_v2", "torsion_v3"}
    assert len(refs) == 8 * 2 + 23 * 2 + 16 * 3


def test_active_refs_only_narrows_and_rejects_inactive(mm3):
    picked = mm3.active_refs(only=[(1861, 2), (1860, 1)])
    assert picked == (ParamRef(1860, 1), ParamRef(1861, 2))
    with pytest.raises(KeyError):
        mm3.active_refs(only=[(95, 2)])


def test_with_values_splices_only_the_field(mm3, tmp_path: Path):
    ref = ParamRef(1861, 2)
    new = mm3.with_values({ref: 5.12345})
    assert new.value(ref) == 5.12345  # 5 decimals hold it exactly: no rounding to 4
    assert mm3.value(ref) == 5.07  # the original is unchanged
    old_line, new_line = mm3.lines[1860], new.lines[1860]
    assert new_line[34:44] == "   5.12345"
    assert old_line[:34] == new_line[:34] and old_line[44:] == new_line[44:]
    assert sum(a != b for a, b in zip(mm3.lines, new.lines)) == 1
    reread = read_fld(write_fld(new, tmp_path / "new.fld"))
    assert reread.value(ref) == 5.12345


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5177, "    1.5177"),  # published values keep their 4 decimals
        (4.49, "    4.4900"),
        (1.591428010502203, " 1.5914280"),  # a fitted value: as many decimals as fit after a blank
        (170.14854874633156, " 170.14855"),
        (-0.05238700964223101, " -0.052387"),
        (0.0003223759967795605, " 0.0003224"),
        (-9999.99991, "-9999.9999"),  # no room for a blank: 4 decimals, the whole field
    ],
)
def test_format_value_writes_the_decimals_the_field_holds(value: float, text: str):
    """Issue 17: rounding fitted values to 4 decimals moved the rh-enamide score by up to 7 %."""
    assert format_value(value) == text
    assert abs(float(text) - value) <= 0.5 * 10.0 ** -len(text.split(".")[1])


def test_with_values_refuses_overflow(mm3):
    with pytest.raises(FieldOverflowError):
        mm3.with_values({ParamRef(1861, 2): 123456789.0})
    with pytest.raises(FieldOverflowError):
        mm3.with_values({ParamRef(1861, 2): float("nan")})
    assert mm3.with_values({ParamRef(1861, 2): -9999.9999}).lines[1860][34:44] == "-9999.9999"
    with pytest.raises(FieldOverflowError):
        mm3.with_values({ParamRef(1861, 2): -10000.0})


def test_with_values_vdw_table_field(mm3):
    rh = next(r for r in mm3.rows if r.term == "vdw" and r.atoms == ("RH",))
    new = mm3.with_values({ParamRef(rh.line, 1): 2.5})
    assert new.lines[rh.line - 1][5:15] == "    2.5000"


def test_write_refuses_the_source_file(tmp_path: Path, rh_dir: Path):
    copy = tmp_path / "mm3.fld"
    copy.write_bytes((rh_dir / "mm3.fld").read_bytes())
    ff = read_fld(copy)
    with pytest.raises(ForceFieldWriteError):
        write_fld(ff, copy)
    assert copy.read_bytes() == (rh_dir / "mm3.fld").read_bytes()


def test_crlf_and_missing_final_newline_round_trip():
    text = "-2\r\n 1  C3 - C3                1.5247     4.4900     0.0000  0000 0000\r\n-3"
    ff = parse_fld(text)
    assert ff.text() == text
    assert ff.row(2).values == (1.5247, 4.49, 0.0)
    new = ff.with_values({ParamRef(2, 1): 1.6})
    assert new.lines[1].endswith("\r\n") and "    1.6000" in new.lines[1]


def test_published_final_substructure_file(rh_dir: Path):
    ff = read_fld(rh_dir / "rh-hydrogenation-enamide-final.fld")
    assert [s.name for s in ff.substructures][0] == "Rhodium catalyzed hydrogenation of enamides (RhH3-E)"
    assert ff.substructures[0].patterns == ("Z0(-P1)(-P2)(.O2)(.C2*C2.H7-1)(-H6)",)
    assert not any(s.opt for s in ff.substructures)
    assert ff.active_refs() == ()
    assert not any(r.term == "vdw" for r in ff.rows)  # loose '#'-commented snippets are text


def test_continuation_line_resolves_to_its_row(mm3):
    """MacroModel's .mmo 'FF Line' names the last line of a two-line row (115 for 114-115)."""
    row = mm3.row(115)
    assert row.line == 114 and row.last_line == 115 and row.continuation_lines == (115,)
    assert row.descriptors == ("1C200", "0000", "O200", "0000")
    assert mm3.value(ParamRef(114, 2)) == 6.77
    with pytest.raises(KeyError, match="continues row 114"):
        mm3.value(ParamRef(115, 2))


def test_package_force_fields_round_trip(tmp_path: Path):
    from q2mm.paths import PACKAGE_DATA

    files = sorted(PACKAGE_DATA.rglob("*.fld"))
    for src in files:
        ff = read_fld(src)
        assert write_fld(ff, tmp_path / src.name).read_bytes() == src.read_bytes(), src


def test_lookup_helpers(mm3):
    assert mm3.unit_factor("ELE") == 1389.5
    assert mm3.equivalence_map()["CU"] == ("C1", "C2")
    assert len(mm3.rows_of("torsion_stretch")) == 6
    assert all(r.substructure is None for r in mm3.standard_rows("bond"))
    assert [r.line for r in mm3.substructure_rows(18)] == [1909, 1910]
