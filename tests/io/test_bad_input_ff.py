"""Damaged copies of the shared force-field and MacroModel files: one clear error each.

Every case copies a real shared file into tmp_path, damages it the way files really get
damaged (cut short, a mistyped value, a dropped column, an unknown type, a stray byte) and
checks that reading ends in one InputFormatError naming the file, the line and what was
expected. Readers never write: the shared originals are compared before and after.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from q2mm.errors import InputFormatError, UnknownAtomTypeError
from q2mm.io.atomtyp import read_atomtyp
from q2mm.io.fld import read_fld
from q2mm.io.mae import read_mae
from q2mm.io.mmo import read_mmo


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def damaged(tmp_path: Path, src: Path, lines: list[bytes], name: str | None = None) -> Path:
    out = tmp_path / (name or src.name)
    out.write_bytes(b"".join(lines))
    return out


def expect_error(read, path: Path, line: int, expected_part: str, found_part: str | None = None) -> InputFormatError:
    with pytest.raises(InputFormatError) as info:
        read(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line
    assert expected_part in err.expected
    if found_part is not None:
        assert found_part in (err.found or "")
    assert f"{path}:{line}" in str(err)
    return err


@pytest.fixture()
def fld_lines(rh_dir: Path) -> list[bytes]:
    return lines_of(rh_dir / "mm3.fld")


def test_fld_cut_inside_a_value_field(tmp_path: Path, rh_dir: Path, fld_lines):
    cut = fld_lines[:1879] + [fld_lines[1879][:40]]  # line 1880 ends inside field 2
    path = damaged(tmp_path, rh_dir / "mm3.fld", cut)
    expect_error(read_fld, path, 1880, "field 2 complete in columns 35-44")


def test_fld_cut_inside_the_opt_substructure(tmp_path: Path, rh_dir: Path, fld_lines):
    path = damaged(tmp_path, rh_dir / "mm3.fld", fld_lines[:1880])
    expect_error(read_fld, path, 1880, "'-3' closing substructure", "end of file")


def test_fld_cut_inside_the_vdw_table(tmp_path: Path, rh_dir: Path, fld_lines):
    path = damaged(tmp_path, rh_dir / "mm3.fld", fld_lines[:1040])
    expect_error(read_fld, path, 1040, "END OF NONBONDED")


def test_fld_cut_in_half_before_the_vdw_table(tmp_path: Path, rh_dir: Path, fld_lines):
    """Half of mm3.fld (standard rows, no -6 table, no -3) was read as an empty force field."""
    path = damaged(tmp_path, rh_dir / "mm3.fld", fld_lines[: len(fld_lines) // 2])
    expect_error(read_fld, path, len(fld_lines) // 2, "-6 vdW table closed by 'END OF NONBONDED'", "end of file")


def test_fld_cut_in_the_rows_after_the_vdw_table(tmp_path: Path, rh_dir: Path, fld_lines):
    path = damaged(tmp_path, rh_dir / "mm3.fld", fld_lines[:1100])
    expect_error(read_fld, path, 1100, "'-3' closing the parameter section opened by '-2' on line 1083")


def test_substructure_only_files_stay_legitimate(rh_dir: Path):
    """A published substructure-only file (no -1 table, no vdW table) is complete as it is."""
    ff = read_fld(rh_dir / "rh-hydrogenation-enamide-final.fld")
    assert len(ff.substructures) == 3 and not ff.functions and ff.rows


def test_fld_corrupted_value_field(tmp_path: Path, rh_dir: Path, fld_lines):
    line = fld_lines[1859]
    assert b"2.5782" in line
    fld_lines[1859] = line.replace(b"2.5782", b"2.5x82")
    path = damaged(tmp_path, rh_dir / "mm3.fld", fld_lines)
    expect_error(read_fld, path, 1860, "a number (or blank) in field 2, columns 35-44", "2.5x82")


def test_fld_corrupted_vdw_field(tmp_path: Path, rh_dir: Path, fld_lines):
    fld_lines[1031] = fld_lines[1031].replace(b"1.9400", b"1.94OO")
    path = damaged(tmp_path, rh_dir / "mm3.fld", fld_lines)
    expect_error(read_fld, path, 1032, "field 1, columns 6-15", "1.94OO")


def test_fld_non_utf8_byte(tmp_path: Path, rh_dir: Path, fld_lines):
    line = fld_lines[99]
    fld_lines[99] = line[:-3] + b"\xe9" + line[-2:]  # a Latin-1 e-acute in the comment
    path = damaged(tmp_path, rh_dir / "mm3.fld", fld_lines)
    expect_error(read_fld, path, 100, "UTF-8 text", "\\xe9")


@pytest.fixture()
def mae_lines(rh_dir: Path) -> list[bytes]:
    return lines_of(rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae")


def test_mae_missing_column_header(tmp_path: Path, rh_dir: Path, mae_lines):
    index = next(i for i, ln in enumerate(mae_lines) if ln.strip() == b"r_m_y_coord")
    del mae_lines[index]
    path = damaged(tmp_path, rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae", mae_lines)
    first_row = next(i for i, ln in enumerate(mae_lines) if ln.strip().startswith(b"1 250")) + 1
    expect_error(
        lambda p: read_mae(p, rh_dir / "atom.typ"),
        path,
        first_row,
        "10 values after the row index in m_atom",
        "11 values",
    )


def test_mae_row_missing_a_value(tmp_path: Path, rh_dir: Path, mae_lines):
    index = next(i for i, ln in enumerate(mae_lines) if ln.strip().startswith(b"3 2 1.132800"))
    mae_lines[index] = mae_lines[index].replace(b" 0.000000 2.733100", b" 2.733100")
    path = damaged(tmp_path, rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae", mae_lines)
    expect_error(lambda p: read_mae(p, rh_dir / "atom.typ"), path, index + 1, "11 values after the row index in m_atom")


def test_mae_required_coordinate_column_missing(tmp_path: Path, rh_dir: Path, mae_lines):
    index = next(i for i, ln in enumerate(mae_lines) if ln.strip() == b"r_m_z_coord")
    mae_lines[index] = mae_lines[index].replace(b"r_m_z_coord", b"r_m_q_coord")
    path = damaged(tmp_path, rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae", mae_lines)
    ct_line = next(i for i, ln in enumerate(mae_lines) if ln.startswith(b"f_m_ct")) + 1
    expect_error(lambda p: read_mae(p, rh_dir / "atom.typ"), path, ct_line, "column 'r_m_z_coord' in m_atom")


def test_mae_atom_type_unknown_to_atomtyp(tmp_path: Path, rh_dir: Path, mae_lines):
    index = next(i for i, ln in enumerate(mae_lines) if ln.strip().startswith(b"1 250 "))
    mae_lines[index] = mae_lines[index].replace(b"1 250 ", b"1 299 ", 1)
    path = damaged(tmp_path, rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae", mae_lines)
    err = expect_error(
        lambda p: read_mae(p, rh_dir / "atom.typ"), path, index + 1, "known to the standard table or atom.typ", "299"
    )
    assert isinstance(err, UnknownAtomTypeError)


def test_mae_custom_type_without_atomtyp(rh_dir: Path):
    """Type 250 (RH) is only in atom.typ: reading without it names the atom's line."""
    path = rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae"
    row = next(i for i, ln in enumerate(lines_of(path)) if ln.strip().startswith(b"1 250 ")) + 1
    err = expect_error(read_mae, path, row, "atom.typ", "250")
    assert isinstance(err, UnknownAtomTypeError)


def test_mae_non_utf8_byte(tmp_path: Path, rh_dir: Path, mae_lines):
    mae_lines[18] = mae_lines[18].replace(b"ZDMP", b"ZD\xffMP")
    path = damaged(tmp_path, rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae", mae_lines)
    expect_error(read_mae, path, 19, "UTF-8 text")


def test_mae_unclosed_quote(tmp_path: Path, rh_dir: Path, mae_lines):
    mae_lines[18] = b' "1 ZDMP from JCTC SI\n'
    path = damaged(tmp_path, rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae", mae_lines)
    expect_error(read_mae, path, 19, "a closing double quote")


def test_atomtyp_bad_formal_charge(tmp_path: Path, rh_dir: Path):
    lines = lines_of(rh_dir / "atom.typ")
    lines[29] = lines[29].replace(b"   +1  NCA", b"   +x  NCA")
    path = damaged(tmp_path, rh_dir / "atom.typ", lines)
    expect_error(read_atomtyp, path, 30, "the formal charge in column 16", "+x")


def test_atomtyp_truncated_line(tmp_path: Path, rh_dir: Path):
    lines = lines_of(rh_dir / "atom.typ")
    path = damaged(tmp_path, rh_dir / "atom.typ", lines[:29] + [lines[29][:40]])
    expect_error(read_atomtyp, path, 30, "an atom type line with 16+ columns")


def test_mmo_missing_stretch_row(tmp_path: Path, rh_dir: Path):
    src = rh_dir / "macromodel" / "structure_1.mmo"
    lines = lines_of(src)
    del lines[20]  # one of the 38 stretch rows
    path = damaged(tmp_path, src, lines)
    expect_error(read_mmo, path, 10, "38 stretch rows as the table header says", "37 rows")


def test_mmo_non_utf8_byte(tmp_path: Path, rh_dir: Path):
    src = rh_dir / "macromodel" / "structure_1.mmo"
    lines = lines_of(src)
    lines[4] = b" \x92" + lines[4]  # a Windows-1252 quote
    path = damaged(tmp_path, src, lines)
    expect_error(read_mmo, path, 5, "UTF-8 text")


def test_readers_never_write(rh_dir: Path):
    files = [
        rh_dir / "mm3.fld",
        rh_dir / "atom.typ",
        rh_dir / "rh_enamide_training_set.mae",
        rh_dir / "macromodel" / "structure_1.mmo",
    ]
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    read_fld(files[0])
    read_atomtyp(files[1])
    read_mae(files[2], files[1])
    read_mmo(files[3])
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files} == before
