"""Gaussian .log (archive block, orientations, energies, frequency tables) and .fchk readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from q2mm.errors import InputFormatError
from q2mm.io.gaussian import lower_triangle_to_square, read_fchk, read_fchk_fields, read_gaussian_log
from q2mm.model.units import BOHR_IN_ANGSTROM


def test_lower_triangle_to_square() -> None:
    square = lower_triangle_to_square(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 3)
    np.testing.assert_array_equal(square, [[1, 2, 4], [2, 3, 5], [4, 5, 6]])


def test_ethane_gs_log(ethane_dir: Path) -> None:
    log = read_gaussian_log(ethane_dir / "GS.log")
    molecule = log.molecule
    assert molecule.title == "Basic Ethane minimum"
    assert molecule.elements == ("H", "C", "H", "C", "H", "H", "H", "H")
    assert molecule.charge == 0 and log.multiplicity == 1 and log.n_imaginary == 0
    assert molecule.energy == -79.8304168919  # the last 'SCF Done' (the Freq step)
    np.testing.assert_allclose(molecule.coords[0], [0.0178900128, 0.0309591516, -0.0054972515])
    np.testing.assert_allclose(molecule.coords[-1], [-0.7396109089, -1.2810153003, 2.6958304067])
    hessian = molecule.hessian
    assert hessian[0, 0] == 0.04969903 and hessian[1, 0] == hessian[0, 1] == 0.00216464
    assert hessian[2, 1] == -0.00576133  # printed split across an archive line break: '-0.0057' / '6133'
    assert hessian[23, 23] == 0.33827650
    assert log.standard_coords is None  # NoSym: only the input orientation is printed
    assert log.frequencies.shape == (18,) and log.frequencies[0] == 312.9189 and log.frequencies[-1] == 3122.9498
    assert log.reduced_masses[0] == 1.0078 and log.force_constants[3] == 1.953


def test_ethane_ts_log(ethane_dir: Path) -> None:
    log = read_gaussian_log(ethane_dir / "TS.log")
    assert log.molecule.title == "Basic Ethane rotation TS"
    assert log.n_imaginary == 1 and log.frequencies[0] == -304.8914
    assert log.molecule.energy == -79.8259264529
    assert log.standard_coords is not None and log.input_coords is not None
    assert np.abs(log.standard_coords - log.input_coords).max() > 0.1  # symmetry reoriented the TS
    np.testing.assert_allclose(log.molecule.coords[0], [0.38644282, 0.6693386775, -1.3516038399])


@pytest.mark.parametrize("state", ["GS", "TS"])
def test_ethane_fchk(ethane_dir: Path, state: str) -> None:
    fchk = read_fchk(ethane_dir / f"{state}.fchk")
    log = read_gaussian_log(ethane_dir / f"{state}.log")
    assert fchk.elements == log.molecule.elements
    assert fchk.charge == 0 and fchk.properties["multiplicity"] == 1
    assert fchk.energy == pytest.approx(log.molecule.energy, abs=1e-9)
    frame = log.standard_coords if log.standard_coords is not None else log.input_coords
    np.testing.assert_allclose(fchk.coords, frame, atol=1e-6)
    assert fchk.hessian.shape == (24, 24)
    np.testing.assert_array_equal(fchk.hessian, fchk.hessian.T)


def test_fchk_coordinates_are_converted_from_bohr(ethane_dir: Path) -> None:
    raw = read_fchk_fields(ethane_dir / "GS.fchk", ("Current cartesian coordinates",))
    bohr = raw["Current cartesian coordinates"].value
    assert bohr[2] == -1.03882990e-02
    assert read_fchk(ethane_dir / "GS.fchk").coords[0, 2] == pytest.approx(bohr[2] * BOHR_IN_ANGSTROM)


def test_fchk_fields_expose_scalars_and_arrays(ethane_dir: Path) -> None:
    fields = read_fchk_fields(ethane_dir / "GS.fchk")
    assert fields["Number of atoms"].value == 8 and fields["Number of atoms"].line == 3
    assert fields["Cartesian Force Constants"].value.shape == (300,)
    np.testing.assert_array_equal(fields["Atomic numbers"].value, [1, 6, 1, 6, 1, 1, 1, 1])


def test_archive_with_bar_separators(ethane_dir: Path, tmp_path: Path) -> None:
    """Some Gaussian builds write the archive with '|' instead of '\\'."""
    lines = (ethane_dir / "TS.log").read_text(encoding="utf-8").split("\n")
    in_archive = False
    for k, text in enumerate(lines):
        in_archive = in_archive or text.startswith(" 1\\1\\")
        if in_archive:
            lines[k] = text.replace("\\", "|")
            in_archive = not text.rstrip().endswith("@")
    path = tmp_path / "bar.log"
    path.write_text("\n".join(lines), encoding="utf-8")
    bar, original = read_gaussian_log(path), read_gaussian_log(ethane_dir / "TS.log")
    np.testing.assert_array_equal(bar.molecule.hessian, original.molecule.hessian)
    np.testing.assert_array_equal(bar.molecule.coords, original.molecule.coords)
    assert bar.n_imaginary == 1 and bar.molecule.title == original.molecule.title


def test_the_energy_is_the_jobs_own_level(ethane_dir: Path, tmp_path: Path) -> None:
    """SCF/DFT: the last 'SCF Done' (equal to the archive's HF=); a post-HF job (an 'MP2='
    in its archive): that, not the HF reference 'SCF Done' prints; a log cut to its archive
    block and termination line: the archive's HF=."""
    text = (ethane_dir / "TS.log").read_text(encoding="utf-8")
    scf = read_gaussian_log(ethane_dir / "TS.log").molecule
    assert scf.energy == pytest.approx(-79.8259264529, abs=1e-10)
    assert scf.properties["energy_source"] == "Gaussian SCF Done"
    assert scf.energy == pytest.approx(-79.8259265, abs=1e-7)  # the archive's HF=
    last = text.rindex("HF=-79.8259265")  # in the last archive, the one with the Hessian
    (tmp_path / "mp2.log").write_text(text[:last] + "MP2=-80.1234567\\" + text[last:], encoding="utf-8")
    mp2 = read_gaussian_log(tmp_path / "mp2.log").molecule
    assert mp2.energy == -80.1234567 and mp2.properties["energy_source"] == "Gaussian archive MP2="
    lines = text.split("\n")
    start = max(k for k, t in enumerate(lines) if t.startswith(" 1\\1\\"))
    cut = lines[start:] + [" Normal termination of Gaussian"]
    (tmp_path / "cut.log").write_text("\n".join(cut), encoding="utf-8")
    archive_only = read_gaussian_log(tmp_path / "cut.log").molecule
    assert archive_only.energy == -79.8259265 and archive_only.properties["energy_source"] == "Gaussian archive HF="


def test_atomic_charges_mulliken_then_esp(ethane_dir, tmp_path):
    """The last Mulliken table of a log; an ESP table (Pop=CHELPG) is read beside it."""
    molecule = read_gaussian_log(ethane_dir / "GS.log").molecule
    assert set(molecule.properties["qm_charge_sets"]) == {"mulliken"}
    source, charges = molecule.properties["qm_charge_sets"]["mulliken"]
    assert source == "Gaussian Mulliken charges"
    assert charges[1] == pytest.approx(-0.43282) and charges.sum() == pytest.approx(0.0, abs=1e-5)
    lines = (ethane_dir / "GS.log").read_text().splitlines()
    esp = (
        [" ESP charges:", "               1"]
        + [
            f"{k:6d}  {e}   {q:9.6f}"
            for k, (e, q) in enumerate(zip(molecule.elements, [0.1, -0.3, 0.1, -0.3, 0.1, 0.1, 0.1, 0.1]), start=1)
        ]
        + [" Sum of ESP charges =   0.00000"]
    )
    at = max(k for k, line in enumerate(lines) if "Sum of Mulliken charges" in line) + 1
    path = tmp_path / "GS.log"
    path.write_text("\n".join(lines[:at] + esp + lines[at:]) + "\n")
    molecule = read_gaussian_log(path).molecule
    sets = molecule.properties["qm_charge_sets"]
    assert sets["esp"][0] == "Gaussian ESP charges" and list(sets["esp"][1][:2]) == [0.1, -0.3]
    np.testing.assert_array_equal(sets["mulliken"][1], charges)
    broken = lines[:at] + esp[:5] + lines[at:]
    path.write_text("\n".join(broken) + "\n")
    with pytest.raises(InputFormatError, match=r"GS.log:\d+: expected row 4 of the charge table"):
        read_gaussian_log(path)
    # Gaussian 03/09: 'Charges from ESP fit' and a 'Charge=' line, no 'ESP charges:' header
    older = [
        " Charges from ESP fit, RMS=   0.00140 RRMS=   0.11340:",
        " Charge=   0.00000 Dipole=     0.0000     0.0000     0.0000 Tot=     0.0000",
    ] + esp[1:]
    path.write_text("\n".join(lines[:at] + older + lines[at:]) + "\n")
    sets = read_gaussian_log(path).molecule.properties["qm_charge_sets"]
    assert list(sets["esp"][1]) == [0.1, -0.3, 0.1, -0.3, 0.1, 0.1, 0.1, 0.1]
    newer = older[:2] + esp  # Gaussian 16 prints both: the table is read once
    path.write_text("\n".join(lines[:at] + newer + lines[at:]) + "\n")
    assert list(read_gaussian_log(path).molecule.properties["qm_charge_sets"]["esp"][1][:2]) == [0.1, -0.3]
