"""Jaguar restart inputs (&zmat, &hess) and outputs (geometry, SCFE, frequency tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from q2mm.io.jaguar import read_jaguar_in, read_jaguar_out, read_sections
from q2mm.model.units import BOHR_IN_ANGSTROM

STEM = "1ZDMPfromJCTCSI_loner1"


def jaguar_hess_lines(matrix: np.ndarray) -> list[str]:
    """The lower triangle in Jaguar's &hess layout: blocks of five columns, header = first column."""
    n = len(matrix)
    out = []
    for first in range(1, n + 1, 5):
        out.append(f"{first:4d}")
        for row in range(first, n + 1):
            values = matrix[row - 1, first - 1 : min(first + 4, row)]
            out.append(f"{row:4d}" + "".join(f"{v:14.6E}" for v in values))
    return out


def write_small_input(path: Path, matrix: np.ndarray, iunit: str | None = None) -> None:
    gen = ["&gen", "molchg=-1", "multip=2"] + ([f"iunit={iunit}"] if iunit else []) + ["&"]
    zmat = ["&zmat", " O1   0.0 0.0 0.0", " H2   0.0 0.0 0.97", "&"]
    guess = ["&guess  basgss=6-31g**", "  1 Orbital Energy  -20.5 Occupation 1.0", "  &not a section", "&"]
    text = "\n".join(["MAEFILE: x.mae", *gen, *zmat, *guess, "&hess", *jaguar_hess_lines(matrix), "&", ""])
    path.write_text(text, encoding="utf-8")


def test_small_input_round_trips_hessian_blocks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6))
    matrix = np.round(a + a.T, 6)  # 6 columns: one full block of five and one of one column
    path = tmp_path / "oh.01.in"
    write_small_input(path, matrix)
    molecule = read_jaguar_in(path)
    assert molecule.elements == ("O", "H")
    assert molecule.properties["labels"] == ("O1", "H2")
    assert molecule.charge == -1 and molecule.properties["multiplicity"] == 2
    np.testing.assert_allclose(molecule.coords[1], [0.0, 0.0, 0.97])
    np.testing.assert_allclose(molecule.hessian, matrix, rtol=1e-6)
    np.testing.assert_array_equal(molecule.hessian, molecule.hessian.T)


def test_iunit_zero_means_bohr(tmp_path: Path) -> None:
    path = tmp_path / "oh.01.in"
    write_small_input(path, np.eye(6), iunit="0")
    assert read_jaguar_in(path).coords[1, 2] == pytest.approx(0.97 * BOHR_IN_ANGSTROM)


def test_guess_section_is_skipped_whole(tmp_path: Path) -> None:
    path = tmp_path / "oh.01.in"
    write_small_input(path, np.eye(6))
    sections = read_sections(path)
    assert set(sections) == {"gen", "zmat", "guess", "hess"}
    assert sections["guess"].header == "guess  basgss=6-31g**"


def test_rh_enamide_input(rh_dir: Path) -> None:
    molecule = read_jaguar_in(rh_dir / "jaguar" / f"{STEM}.01.in")
    assert molecule.n_atoms == 36 and molecule.charge == 1
    assert molecule.elements[:4] == ("Rh", "O", "C", "N")
    assert molecule.properties["labels"][12] == "P13"
    np.testing.assert_allclose(molecule.coords[1], [0.0, 0.0, 2.21545])
    np.testing.assert_allclose(molecule.coords[-1], [2.0785, -0.3765, -2.9386])
    hessian = molecule.hessian
    assert hessian.shape == (108, 108)
    assert hessian[0, 0] == 2.944868e-01
    assert hessian[1, 0] == hessian[0, 1] == -1.904832e-02
    assert hessian[99, 95] == -1.050539e-05 and hessian[99, 99] == 4.607962e-02  # block 96, row 100
    assert hessian[107, 105] == hessian[105, 107] == 7.561788e-02  # last block, row 108, column 106
    assert hessian[107, 107] == 7.813888e-02


def test_rh_enamide_output(rh_dir: Path) -> None:
    out = read_jaguar_out(rh_dir / "jaguar" / f"{STEM}.out")
    assert out.molecule.energy == -1369.88293508102
    assert out.molecule.elements[0] == "Rh"
    np.testing.assert_allclose(out.molecule.coords[2], [1.13277, 0.0, 2.73309])
    assert out.frequencies.shape == (102,)
    assert out.frequencies[0] == -705.89 and out.frequencies[-1] == 3587.52
    assert out.reduced_masses[0] == 0.76 and out.force_constants[-1] == 7.13
    assert out.normal_modes.shape == (102, 36, 3)
    np.testing.assert_allclose(out.normal_modes[0, 0], [-0.00331, 0.01499, -0.00191])
    np.testing.assert_allclose(out.normal_modes[101, 35], [0.00015, -0.00007, 0.00001])
