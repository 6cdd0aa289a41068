"""Damaged copies of real QM files: each read fails with one InputFormatError that names the
file, the 1-based line and what was expected. The originals are only read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from q2mm.errors import InputFormatError
from q2mm.io.gaussian import read_fchk, read_gaussian_log
from q2mm.io.jaguar import read_jaguar_in, read_jaguar_out
from q2mm.io.mol2 import read_mol2
from q2mm.io.xyz import read_xyz

JAGUAR_STEM = "1ZDMPfromJCTCSI_loner1"


def damaged_copy(source: Path, target: Path, edit: Callable[[list[bytes]], list[bytes]]) -> Path:
    """Copy ``source`` to ``target`` with its lines (bytes, endings kept) passed through ``edit``."""
    lines = source.read_bytes().splitlines(keepends=True)
    target.write_bytes(b"".join(edit(lines)))
    return target


def with_line(row: int, new: bytes) -> Callable[[list[bytes]], list[bytes]]:
    """An edit that replaces line ``row`` (0-based) by ``new``."""
    return lambda lines: [*lines[:row], new, *lines[row + 1 :]]


def line_index(lines: list[bytes], text: bytes, after: int = 0) -> int:
    """0-based index of the first line from ``after`` whose stripped content starts with ``text``."""
    return next(k for k in range(after, len(lines)) if lines[k].strip().startswith(text))


def expect_error(reader: Callable, path: Path, line: int | None, expected: str) -> InputFormatError:
    with pytest.raises(InputFormatError) as info:
        reader(path)
    error = info.value
    assert error.path == str(path)
    assert error.line == line
    assert expected in error.expected
    assert str(error).startswith(f"{path}:{line}: expected" if line is not None else f"{path}: expected")
    return error


@pytest.fixture()
def jaguar_in(rh_dir: Path) -> Path:
    return rh_dir / "jaguar" / f"{JAGUAR_STEM}.01.in"


def test_jaguar_truncated_inside_hess(jaguar_in: Path, tmp_path: Path) -> None:
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    cut = line_index(lines, b"&hess") + 500
    path = damaged_copy(jaguar_in, tmp_path / "cut.01.in", lambda ls: ls[:cut])
    expect_error(read_jaguar_in, path, cut, "closing the &hess section")


def test_jaguar_truncated_inside_guess(jaguar_in: Path, tmp_path: Path) -> None:
    path = damaged_copy(jaguar_in, tmp_path / "cut.01.in", lambda ls: ls[:3000])
    expect_error(read_jaguar_in, path, 3000, "closing the &guess section")


def test_jaguar_hess_row_missing(jaguar_in: Path, tmp_path: Path) -> None:
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    start = line_index(lines, b"&hess")
    missing = start + 1 + 1 + 41  # header '1', rows 1..41, then row 42 is dropped
    assert lines[missing].split()[0] == b"42"
    path = damaged_copy(jaguar_in, tmp_path / "gap.01.in", lambda ls: ls[:missing] + ls[missing + 1 :])
    error = expect_error(read_jaguar_in, path, missing + 1, "&hess row '42' with 5 values")
    assert error.found.startswith("43 ")


def test_jaguar_hess_larger_than_geometry(jaguar_in: Path, tmp_path: Path) -> None:
    """One atom fewer in &zmat: the Hessian (108 rows) no longer fits 3N = 105."""
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    last_atom = line_index(lines, b"H36")

    def drop_atom(ls: list[bytes]) -> list[bytes]:
        return ls[:last_atom] + ls[last_atom + 1 :]

    path = damaged_copy(jaguar_in, tmp_path / "small.01.in", drop_atom)
    shifted = drop_atom(lines)
    row_106 = line_index(shifted, b"106", line_index(shifted, b"&hess"))
    expect_error(read_jaguar_in, path, row_106 + 1, "block header '6' alone on its line (105 rows for the 35 atoms")


def test_jaguar_hess_wrong_number_of_values(jaguar_in: Path, tmp_path: Path) -> None:
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"3 ", line_index(lines, b"&hess"))
    path = damaged_copy(jaguar_in, tmp_path / "short.01.in", with_line(row, lines[row].rsplit(b" ", 1)[0] + b"\n"))
    expect_error(read_jaguar_in, path, row + 1, "&hess row '3' with 3 values")


def test_jaguar_hess_non_numeric(jaguar_in: Path, tmp_path: Path) -> None:
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"1  2.944868E-01")
    damaged = lines[row].replace(b"2.944868E-01", b"2.94O868E-01")
    path = damaged_copy(jaguar_in, tmp_path / "nan.01.in", with_line(row, damaged))
    error = expect_error(read_jaguar_in, path, row + 1, "a number in &hess")
    assert error.found == "2.94O868E-01"


def test_jaguar_non_utf8_byte(jaguar_in: Path, tmp_path: Path) -> None:
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"C3 ")
    path = damaged_copy(jaguar_in, tmp_path / "latin1.01.in", with_line(row, lines[row].replace(b"C3 ", b"C\xe93")))
    error = expect_error(read_jaguar_in, path, row + 1, "UTF-8 text")
    assert "xe9" in error.found


def test_jaguar_zmatrix_instead_of_cartesian(jaguar_in: Path, tmp_path: Path) -> None:
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"O2 ")
    path = damaged_copy(jaguar_in, tmp_path / "zmat.01.in", with_line(row, b"  O2  Rh1  2.2154\n"))
    expect_error(read_jaguar_in, path, row + 1, "Cartesian &zmat row")


def test_jaguar_out_truncated_in_frequency_table(rh_dir: Path, tmp_path: Path) -> None:
    source = rh_dir / "jaguar" / f"{JAGUAR_STEM}.out"
    lines = source.read_bytes().splitlines(keepends=True)
    cut = line_index(lines, b"frequencies      -705.89") + 40  # 3 property rows, then mode rows 1..36
    path = damaged_copy(source, tmp_path / "cut.out", lambda ls: ls[:cut])
    error = expect_error(read_jaguar_out, path, cut + 1, "normal-mode row 37 of 108")
    assert error.found == "end of file"


@pytest.fixture()
def ethane_log(ethane_dir: Path) -> Path:
    return ethane_dir / "TS.log"


def test_gaussian_truncated_log(ethane_log: Path, tmp_path: Path) -> None:
    lines = ethane_log.read_bytes().splitlines(keepends=True)
    cut = line_index(lines, b"Frequencies --") + 3
    path = damaged_copy(ethane_log, tmp_path / "cut.log", lambda ls: ls[:cut])
    expect_error(read_gaussian_log, path, cut, "'Normal termination of Gaussian' after the last job step")


def test_gaussian_archive_missing_hessian_value(ethane_log: Path, tmp_path: Path) -> None:
    lines = ethane_log.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"[C3(C1.C1),3SGV(H2)]\\NImag=1")
    fixed = lines[row].replace(b"0.04920710,", b"")
    path = damaged_copy(ethane_log, tmp_path / "short.log", with_line(row, fixed))
    error = expect_error(read_gaussian_log, path, row + 1, "300 lower-triangle Hessian values for 8 atoms")
    assert error.found == "299 values"


def test_gaussian_archive_non_numeric(ethane_log: Path, tmp_path: Path) -> None:
    lines = ethane_log.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"[C3(C1.C1),3SGV(H2)]\\NImag=1") + 2
    damaged = lines[row][:20] + b"x" + lines[row][21:]
    path = damaged_copy(ethane_log, tmp_path / "bad.log", with_line(row, damaged))
    error = expect_error(read_gaussian_log, path, row + 1, "a Hessian value in the archive")
    assert "x" in error.found


def test_gaussian_archive_without_end(ethane_log: Path, tmp_path: Path) -> None:
    lines = ethane_log.read_bytes().splitlines(keepends=True)
    start = line_index(lines, b"1\\1\\GINC-GANDALF3\\Freq")
    end = next(k for k in range(start, len(lines)) if lines[k].rstrip().endswith(b"@"))
    path = damaged_copy(ethane_log, tmp_path / "noend.log", with_line(end, lines[end].rstrip()[:-2] + b"\n"))
    expect_error(read_gaussian_log, path, len(lines), "the end '@' of the archive block")


def test_fchk_truncated_force_constants(ethane_dir: Path, tmp_path: Path) -> None:
    source = ethane_dir / "GS.fchk"
    lines = source.read_bytes().splitlines(keepends=True)
    cut = line_index(lines, b"Cartesian Force Constants") + 30
    path = damaged_copy(source, tmp_path / "cut.fchk", lambda ls: ls[:cut])
    error = expect_error(read_fchk, path, cut, "300 values for 'Cartesian Force Constants'")
    assert error.found == "145 values"


def test_fchk_non_numeric_coordinate(ethane_dir: Path, tmp_path: Path) -> None:
    source = ethane_dir / "GS.fchk"
    lines = source.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"Current cartesian coordinates") + 1
    path = damaged_copy(source, tmp_path / "bad.fchk", with_line(row, lines[row].replace(b"E-02", b"E-0Z", 1)))
    expect_error(read_fchk, path, row + 1, "a number in 'Current cartesian coordinates'")


def test_mol2_unknown_bond_type(ethane_dir: Path, tmp_path: Path) -> None:
    source = ethane_dir / "GS.mol2"
    lines = source.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"@<TRIPOS>BOND") + 2
    path = damaged_copy(source, tmp_path / "bad.mol2", with_line(row, lines[row].rstrip()[:-1] + b"q\n"))
    expect_error(read_mol2, path, row + 1, "a BOND row 'id a1 a2 type'")


def test_mol2_missing_atom_row(ethane_dir: Path, tmp_path: Path) -> None:
    source = ethane_dir / "GS.mol2"
    lines = source.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"8 H")
    path = damaged_copy(source, tmp_path / "short.mol2", lambda ls: ls[:row] + ls[row + 1 :])
    expect_error(read_mol2, path, row, "8 ATOM rows")


def test_xyz_too_few_atom_rows(sn2_dir: Path, tmp_path: Path) -> None:
    source = sn2_dir / "sn2-ts-optimized.xyz"
    path = damaged_copy(source, tmp_path / "short.xyz", lambda ls: ls[:-1])
    expect_error(read_xyz, path, 8, "6 atom rows")


def test_jaguar_non_integer_charge(jaguar_in: Path, tmp_path: Path) -> None:
    lines = jaguar_in.read_bytes().splitlines(keepends=True)
    row = line_index(lines, b"molchg=1")
    path = damaged_copy(jaguar_in, tmp_path / "charge.01.in", with_line(row, b"molchg=+one\n"))
    expect_error(read_jaguar_in, path, row + 1, "an integer molchg")
