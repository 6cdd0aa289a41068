"""Parsed QM Hessians, mass-weighted with monoisotopic masses, reproduce the frequencies the QM
programs printed: Jaguar (9 rh-enamide TSs), Gaussian (ethane GS/TS, archive and fchk), and the
sn2 npy Hessians."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from q2mm.io.gaussian import read_fchk, read_gaussian_log
from q2mm.io.jaguar import read_jaguar_in, read_jaguar_out
from q2mm.io.xyz import read_xyz
from q2mm.reference import vibrations as vib

RH_STEMS = [
    "1ZDMPfromJCTCSI_loner1",
    "2DMPEConformation1fromJCTCSI_isomer1",
    "3DMPEConformation2fromJCTCSI_isomer2",
    "4RR-Me-DuPHOSpro-RfromJCTCSI_isomer3",
    "5RR-Me-DuPHOSpro-SfromJCTCSI_isomer4",
    "6RR-Me-BPEpro-RConformation1fromJCTCSI_isomer5",
    "7RR-Me-BPEpro-RConformation2fromJCTCSI_isomer6",
    "8RR-Me-BPEpro-SConformation1fromJCTCSI_isomer7",
    "9RR-Me-BPEpro-SConformation2fromJCTCSI_isomer8",
]
# Jaguar prints frequencies to 0.01 cm^-1 and &hess to 7 significant digits: measured max 0.0054.
JAGUAR_TOL_CM1 = 0.02
# Gaussian prints 4 decimals; the archive Hessian has 8 decimals: measured max 2.5e-4.
GAUSSIAN_TOL_CM1 = 2e-3


@cache
def jaguar_pair(rh_dir: Path, stem: str):
    """The parsed .01.in (Hessian) and .out (printed vibrations) of one structure, read once."""
    return read_jaguar_in(rh_dir / "jaguar" / f"{stem}.01.in"), read_jaguar_out(rh_dir / "jaguar" / f"{stem}.out")


@pytest.mark.parametrize("stem", RH_STEMS)
def test_jaguar_hess_reproduces_printed_frequencies(rh_dir: Path, stem: str) -> None:
    molecule, printed = jaguar_pair(rh_dir, stem)
    np.testing.assert_allclose(molecule.coords, printed.molecule.coords, atol=1e-9)
    computed = vib.frequencies(molecule.hessian, molecule.masses, molecule.coords)
    assert computed.shape == printed.frequencies.shape == (3 * molecule.n_atoms - 6,)
    np.testing.assert_allclose(computed, printed.frequencies, atol=JAGUAR_TOL_CM1)
    assert np.sum(computed < 0) == 1 and computed[0] < -500  # the TS reaction coordinate


@pytest.mark.parametrize("stem", [RH_STEMS[0], RH_STEMS[3]])
def test_jaguar_modes_match_printed_displacements(rh_dir: Path, stem: str) -> None:
    molecule, printed = jaguar_pair(rh_dir, stem)
    _, vectors = vib.vibrational_modes(molecule.hessian, molecule.masses, molecule.coords)
    cartesian = vectors / np.sqrt(np.repeat(molecule.masses, 3))[:, None]  # M^-1/2 l
    for k in (0, 1, len(printed.frequencies) // 2, len(printed.frequencies) - 1):
        ours, theirs = cartesian[:, k], printed.normal_modes[k].ravel()
        cosine = abs(ours @ theirs) / (np.linalg.norm(ours) * np.linalg.norm(theirs))
        assert cosine > 0.9999, f"mode {k}"


@pytest.mark.parametrize("stem", RH_STEMS)
def test_rigid_modes_of_unprojected_hessian_are_the_six_softest(rh_dir: Path, stem: str) -> None:
    """The eigenmatrix works in the unprojected eigenbasis: its rigid-body modes are the six
    nearest zero and never the TS reaction coordinate (index 0)."""
    molecule, _ = jaguar_pair(rh_dir, stem)
    values, vectors = vib.normal_modes(molecule.hessian, molecule.masses)
    mask = vib.rigid_mode_mask(vectors, molecule.coords, molecule.masses)
    assert mask.sum() == 6 and not mask[0]
    np.testing.assert_array_equal(np.flatnonzero(mask), np.sort(np.argsort(np.abs(values))[:6]))
    assert np.all(vib.eigenvalues_to_wavenumbers(values[mask]) ** 2 < 20.0**2)


@pytest.mark.parametrize("state", ["GS", "TS"])
def test_gaussian_archive_and_fchk_reproduce_log_frequencies(ethane_dir: Path, state: str) -> None:
    log = read_gaussian_log(ethane_dir / f"{state}.log")
    fchk = read_fchk(ethane_dir / f"{state}.fchk")
    for molecule in (log.molecule, fchk):
        computed = vib.frequencies(molecule.hessian, molecule.masses, molecule.coords)
        np.testing.assert_allclose(computed, log.frequencies, atol=GAUSSIAN_TOL_CM1)
    assert np.sum(log.frequencies < 0) == log.n_imaginary == (1 if state == "TS" else 0)
    _, vectors = vib.vibrational_modes(log.molecule.hessian, log.molecule.masses, log.molecule.coords)
    np.testing.assert_allclose(vib.reduced_masses(vectors, log.molecule.masses), log.reduced_masses, atol=1e-4)


def kabsch(moving: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation R minimizing |R (moving - c_m) - (target - c_t)|."""
    a, b = moving - moving.mean(axis=0), target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    sign = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, sign]) @ u.T


@pytest.mark.parametrize("state", ["GS", "TS"])
def test_gaussian_archive_hessian_equals_fchk_hessian(ethane_dir: Path, state: str) -> None:
    log = read_gaussian_log(ethane_dir / f"{state}.log")
    fchk = read_fchk(ethane_dir / f"{state}.fchk")
    rotation = kabsch(fchk.coords, log.molecule.coords)
    np.testing.assert_allclose(
        (fchk.coords - fchk.coords.mean(0)) @ rotation.T, log.molecule.coords - log.molecule.coords.mean(0), atol=1e-6
    )
    block = np.kron(np.eye(fchk.n_atoms), rotation)
    np.testing.assert_allclose(block @ fchk.hessian @ block.T, log.molecule.hessian, atol=2e-8)
    assert log.molecule.energy == pytest.approx(fchk.energy, abs=1e-9)


def test_gaussian_archive_hessian_is_in_the_input_orientation(ethane_dir: Path) -> None:
    """The TS job used symmetry: input and standard orientation differ. Only the input
    orientation makes the archive Hessian invariant to rigid rotations."""
    log = read_gaussian_log(ethane_dir / "TS.log")
    fchk = read_fchk(ethane_dir / "TS.fchk")
    np.testing.assert_allclose(log.molecule.coords, log.input_coords, atol=1e-6)
    np.testing.assert_allclose(fchk.coords, log.standard_coords, atol=1e-6)  # fchk: standard frame
    mass_weighted = vib.mass_weighted_hessian(log.molecule.hessian, log.molecule.masses)

    def rigid_leak(coords: np.ndarray) -> float:
        return float(np.abs(mass_weighted @ vib.rigid_body_basis(coords, log.molecule.masses)).max())

    assert rigid_leak(log.input_coords) < 1e-4
    assert rigid_leak(log.standard_coords) > 1e-2


@pytest.mark.parametrize(("stem", "n_imaginary"), [("sn2-ts", 1), ("ch3f", 0)])
def test_sn2_hessians_reproduce_frequency_files(sn2_dir: Path, stem: str, n_imaginary: int) -> None:
    molecule = read_xyz(sn2_dir / f"{stem}-optimized.xyz")
    hessian = np.load(sn2_dir / f"{stem}-hessian.npy")
    printed = np.loadtxt(sn2_dir / f"{stem}-frequencies.txt")
    computed = vib.frequencies(hessian, molecule.masses, molecule.coords)
    np.testing.assert_allclose(computed, printed, atol=1e-3)
    assert np.sum(computed < 0) == n_imaginary
    if n_imaginary:
        assert computed[0] == pytest.approx(-461.7, abs=0.1)


def test_sn2_unprojected_eigenvalues_match_stored_modes(sn2_dir: Path) -> None:
    molecule = read_xyz(sn2_dir / "sn2-ts-optimized.xyz")
    stored = np.load(sn2_dir / "sn2-ts-normal-modes.npz")
    np.testing.assert_allclose(stored["masses_amu"], molecule.masses, rtol=1e-8)
    values, _ = vib.normal_modes(np.load(sn2_dir / "sn2-ts-hessian.npy"), molecule.masses)
    np.testing.assert_allclose(values, stored["eigenvalues"], atol=1e-9)
