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


def jaguar_charge_table(header: str, labels: tuple[str, ...], charges: np.ndarray) -> list[str]:
    """A charge table as Jaguar prints it: five atoms per 'Atom'/'Charge' block."""
    lines = [f"  {header}", ""]
    for k in range(0, len(labels), 5):
        lines.append("  Atom    " + "".join(f"{label:>11}" for label in labels[k : k + 5]))
        lines.append("  Charge  " + "".join(f"{q:11.5f}" for q in charges[k : k + 5]))
        lines.append("")
    return lines + [f"  sum of atomic charges:  {charges.sum():10.6f}", ""]


def test_esp_and_mulliken_charges_of_an_output(rh_dir: Path, tmp_path: Path) -> None:
    """ESP (icfit=1) and Mulliken tables of a .out are read as 'esp' and 'mulliken' (e); a
    Jaguar input beside it carries them into a system; a cut table is refused with its line."""
    from q2mm.errors import InputFormatError
    from q2mm.systems.formats import read_qm

    lines = (rh_dir / "jaguar" / f"{STEM}.out").read_text().splitlines()
    labels = read_jaguar_out(rh_dir / "jaguar" / f"{STEM}.out").molecule.properties["labels"]
    esp = np.round(np.linspace(-0.8, 0.8, len(labels)), 5)
    esp += (1.0 - esp.sum()) / len(labels)  # net charge +1, as the structure
    mulliken = np.round(np.cos(np.arange(len(labels))), 5)
    at = next(k for k, text in enumerate(lines) if "Atomic Polar Tensors" in text)
    tables = jaguar_charge_table("Atomic charges from Mulliken population analysis:", labels, mulliken)
    tables += jaguar_charge_table("Atomic charges from electrostatic potential:", labels, esp)
    (tmp_path / f"{STEM}.out").write_text("\n".join(lines[:at] + tables + lines[at:]) + "\n")
    out = read_jaguar_out(tmp_path / f"{STEM}.out")
    sets = out.molecule.properties["qm_charge_sets"]
    assert sets["esp"][0] == "Jaguar ESP charges (.out)"
    np.testing.assert_allclose(sets["esp"][1], np.round(esp, 5), atol=1e-12)
    np.testing.assert_allclose(sets["mulliken"][1], mulliken, atol=1e-12)
    (tmp_path / f"{STEM}.01.in").write_bytes((rh_dir / "jaguar" / f"{STEM}.01.in").read_bytes())
    paired = read_qm(tmp_path / f"{STEM}.01.in")
    np.testing.assert_array_equal(paired.properties["qm_charge_sets"]["esp"][1], sets["esp"][1])
    # the ESP table (its header on line at + 29: the Mulliken table takes 28) loses its last two blocks
    cut = lines[:at] + tables[:-8] + lines[at:]
    (tmp_path / f"{STEM}.out").write_text("\n".join(cut) + "\n")
    with pytest.raises(
        InputFormatError, match=rf"{STEM}.out:{at + 29}: expected 36 atomic charges in the table .*, found .30."
    ):
        read_jaguar_out(tmp_path / f"{STEM}.out")


def test_a_jaguar_output_as_the_qm_file_names_its_restart_input(rh_dir: Path, tmp_path: Path) -> None:
    """A .out given where the Hessian is wanted: the message names the restart input beside it;
    another program's file: the .xyz + NAME-hessian.npy route."""
    from q2mm.errors import InputFormatError
    from q2mm.systems.formats import read_qm

    with pytest.raises(
        InputFormatError, match=rf"a Jaguar .out holds no Hessian: give its restart input, {STEM}.01.in beside it"
    ):
        read_qm(rh_dir / "jaguar" / f"{STEM}.out")
    (tmp_path / "ts.hess").write_text("$orca_hessian_file\n")
    with pytest.raises(
        InputFormatError, match=r"the geometry as ts.xyz with its Cartesian Hessian .* as ts-hessian.npy"
    ):
        read_qm(tmp_path / "ts.hess")
