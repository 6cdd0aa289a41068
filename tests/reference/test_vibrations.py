"""Vibrational analysis on small systems whose harmonic frequencies are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from q2mm.model import elements
from q2mm.model.units import HARTREE_BOHR2_AMU_TO_CM1
from q2mm.reference import vibrations as vib

K_STRETCH = 0.35  # Hartree/Bohr^2, a plausible C-O stretch


def spring_hessian(coords: np.ndarray, pairs: list[tuple[int, int]], k: float) -> np.ndarray:
    """Cartesian Hessian of harmonic springs 0.5 k (|ri - rj| - r0)^2 at their rest lengths."""
    n = len(coords)
    hessian = np.zeros((3 * n, 3 * n))
    for i, j in pairs:
        u = coords[j] - coords[i]
        block = k * np.outer(u, u) / (u @ u)
        for a, b, sign in ((i, i, 1), (j, j, 1), (i, j, -1), (j, i, -1)):
            hessian[3 * a : 3 * a + 3, 3 * b : 3 * b + 3] += sign * block
    return hessian


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def water_like() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coords = np.array([[0.0, 0.0, 0.117], [0.0, 0.757, -0.469], [0.0, -0.757, -0.469]])
    masses = np.array([elements.mass("O"), elements.mass("H"), elements.mass("H")])
    hessian = spring_hessian(coords, [(0, 1), (0, 2), (1, 2)], K_STRETCH)
    return coords, masses, hessian


def test_conversion_constant_matches_codata() -> None:
    hartree, bohr, amu, c_cm = 4.3597447222071e-18, 5.29177210903e-11, 1.66053906660e-27, 2.99792458e10
    expected = math.sqrt(hartree / (bohr**2 * amu)) / (2 * math.pi * c_cm)
    assert HARTREE_BOHR2_AMU_TO_CM1 == pytest.approx(expected, rel=1e-7)


def test_diatomic_frequency_is_sqrt_k_over_reduced_mass() -> None:
    coords = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.128]])
    masses = np.array([elements.mass("C"), elements.mass("O")])
    mu = masses.prod() / masses.sum()
    freqs = vib.frequencies(spring_hessian(coords, [(0, 1)], K_STRETCH), masses, coords)
    assert freqs.shape == (1,)  # 3N - 5: linear
    assert freqs[0] == pytest.approx(math.sqrt(K_STRETCH / mu) * HARTREE_BOHR2_AMU_TO_CM1, rel=1e-12)


def test_linear_triatomic_has_five_rigid_modes_and_known_stretches() -> None:
    coords = np.array([[0.0, 0.0, -1.16], [0.0, 0.0, 0.0], [0.0, 0.0, 1.16]])
    m_o, m_c = elements.mass("O"), elements.mass("C")
    masses = np.array([m_o, m_c, m_o])
    hessian = spring_hessian(coords, [(0, 1), (1, 2)], K_STRETCH)
    assert vib.rigid_body_basis(coords, masses).shape == (9, 5)
    freqs = vib.frequencies(hessian, masses, coords)
    symmetric = math.sqrt(K_STRETCH / m_o) * HARTREE_BOHR2_AMU_TO_CM1
    antisymmetric = math.sqrt(K_STRETCH * (1 / m_o + 2 / m_c)) * HARTREE_BOHR2_AMU_TO_CM1
    np.testing.assert_allclose(freqs[:2], 0.0, atol=1e-3)  # no bending springs: sqrt(1e-16) noise
    np.testing.assert_allclose(freqs[2:], [symmetric, antisymmetric], rtol=1e-12)


def test_rigid_basis_is_orthonormal_and_six_dimensional_for_bent_molecule() -> None:
    coords, masses, _ = water_like()
    basis = vib.rigid_body_basis(coords, masses)
    assert basis.shape == (9, 6)
    np.testing.assert_allclose(basis.T @ basis, np.eye(6), atol=1e-12)
    internal = vib.internal_basis(basis)
    assert internal.shape == (9, 3)
    np.testing.assert_allclose(basis.T @ internal, 0.0, atol=1e-12)


def test_rigid_basis_does_not_depend_on_length_unit() -> None:
    coords, masses, _ = water_like()
    in_angstrom = vib.rigid_body_basis(coords, masses)
    in_bohr = vib.rigid_body_basis(coords / 0.529177210903, masses)
    np.testing.assert_allclose(in_angstrom @ in_angstrom.T, in_bohr @ in_bohr.T, atol=1e-12)


def test_spring_hessian_is_invariant_to_rigid_motion() -> None:
    coords, masses, hessian = water_like()
    basis = vib.rigid_body_basis(coords, masses)
    np.testing.assert_allclose(vib.mass_weighted_hessian(hessian, masses) @ basis, 0.0, atol=1e-12)


def test_projection_removes_rigid_body_contamination() -> None:
    coords, masses, hessian = water_like()
    clean = vib.frequencies(hessian, masses, coords)
    basis = vib.rigid_body_basis(coords, masses)
    sqrt_m = np.repeat(np.sqrt(masses), 3)
    noise = basis @ np.diag([3e-4, -2e-4, 1e-4, 5e-5, -4e-5, 2e-5]) @ basis.T
    contaminated = hessian + noise * np.outer(sqrt_m, sqrt_m)  # back to Cartesian
    np.testing.assert_allclose(vib.frequencies(contaminated, masses, coords), clean, rtol=1e-12)
    # without projection the contamination shows up as spurious modes
    raw = vib.frequencies(contaminated, masses)
    assert raw.size == 9 and np.sum(raw < 0) == 2


def test_frequencies_invariant_under_rotation_and_translation() -> None:
    coords, masses, hessian = water_like()
    rotation = random_rotation(7)
    moved = coords @ rotation.T + np.array([1.0, -2.0, 0.5])
    block = np.kron(np.eye(len(coords)), rotation)
    rotated = block @ hessian @ block.T
    np.testing.assert_allclose(
        vib.frequencies(rotated, masses, moved), vib.frequencies(hessian, masses, coords), rtol=1e-10
    )


def test_imaginary_mode_is_negative() -> None:
    coords, masses, hessian = water_like()
    values, vectors = vib.vibrational_modes(hessian, masses, coords)
    cartesian_mode = vectors[:, -1] * np.repeat(np.sqrt(masses), 3)  # M^1/2 l
    flipped = hessian - 2 * values[-1] * np.outer(cartesian_mode, cartesian_mode)  # eigenvalue -> -eigenvalue
    freqs = vib.frequencies(flipped, masses, coords)
    assert freqs[0] == pytest.approx(-vib.eigenvalues_to_wavenumbers(values[-1]), rel=1e-10)
    assert np.sum(freqs < 0) == 1


def test_wavenumber_conversion_round_trip() -> None:
    values = np.array([-0.008, -1e-6, 0.0, 2e-5, 0.3])
    np.testing.assert_allclose(
        vib.wavenumbers_to_eigenvalues(vib.eigenvalues_to_wavenumbers(values)), values, rtol=1e-14
    )


def test_normal_modes_diagonalize_mass_weighted_hessian() -> None:
    coords, masses, hessian = water_like()
    values, vectors = vib.normal_modes(hessian, masses)
    mw = vib.mass_weighted_hessian(hessian, masses)
    np.testing.assert_allclose(vectors.T @ mw @ vectors, np.diag(values), atol=1e-12)
    assert np.all(np.diff(values) >= 0)


def test_reduced_mass_of_diatomic_stretch_follows_gaussian_convention() -> None:
    # Gaussian's "Red. masses" is 1/|Cartesian displacement|^2 of the normalized mass-weighted
    # mode: m1 m2 (m1 + m2) / (m1^2 + m2^2) for a diatomic (1.0078 for H2), not m1 m2 / (m1 + m2).
    coords = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.917]])
    m1, m2 = elements.mass("H"), elements.mass("F")
    _, vectors = vib.vibrational_modes(spring_hessian(coords, [(0, 1)], 0.6), np.array([m1, m2]), coords)
    expected = m1 * m2 * (m1 + m2) / (m1**2 + m2**2)
    assert vib.reduced_masses(vectors, np.array([m1, m2]))[0] == pytest.approx(expected, rel=1e-12)


def test_mass_weighting_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="does not match"):
        vib.mass_weighted_hessian(np.eye(6), np.ones(3))


def test_rigid_mode_mask_picks_the_translations_and_rotations() -> None:
    coords, masses, hessian = water_like()
    values, vectors = vib.normal_modes(hessian, masses)
    mask = vib.rigid_mode_mask(vectors, coords, masses)
    assert mask.sum() == 6
    np.testing.assert_allclose(values[mask], 0.0, atol=1e-12)  # springs: rigid modes are exact zeros
    assert np.all(values[~mask] > 1e-3)
