"""Harmonic vibrational analysis of a Cartesian Hessian (Hartree/Bohr^2, masses in amu).

The mass-weighted Hessian is M^-1/2 H M^-1/2; its eigenvalues are in Hartree/(Bohr^2 amu) and
convert to wavenumbers as sign(l) sqrt(|l|) * HARTREE_BOHR2_AMU_TO_CM1 (imaginary -> negative).
The six (five for a linear molecule) translations and rotations are described by
``rigid_body_basis``; ``vibrational_modes`` removes them exactly by diagonalizing the Hessian in
the orthogonal complement, so it returns 3N - 6 (3N - 5) modes and no spurious near-zeros.
"""

from __future__ import annotations

import numpy as np

from q2mm.model.units import HARTREE_BOHR2_AMU_TO_CM1

RANK_TOLERANCE = 1e-6  # relative singular value below which a rigid-body vector is dependent


def mass_weighted_hessian(hessian: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """M^-1/2 H M^-1/2 for a (3N, 3N) Hessian and N masses (amu); symmetrized."""
    hessian = np.asarray(hessian, dtype=np.float64)
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(np.asarray(masses, dtype=np.float64)), 3)
    if hessian.shape != (inv_sqrt_m.size, inv_sqrt_m.size):
        raise ValueError(f"Hessian shape {hessian.shape} does not match {inv_sqrt_m.size // 3} masses")
    symmetric = 0.5 * (hessian + hessian.T)
    return symmetric * np.outer(inv_sqrt_m, inv_sqrt_m)


def rigid_body_basis(coords: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal columns (3N, k) spanning the mass-weighted translations and rotations.

    k = 6 for a nonlinear molecule, 5 for a linear one, 3 for an atom. The span does not
    depend on the length unit of ``coords``.
    """
    coords = np.asarray(coords, dtype=np.float64)
    masses = np.asarray(masses, dtype=np.float64)
    sqrt_m = np.sqrt(masses)[:, None]
    centred = coords - masses @ coords / masses.sum()
    generators = []
    for axis in np.eye(3):
        generators.append((np.broadcast_to(axis, coords.shape) * sqrt_m).ravel())
    for axis in np.eye(3):
        generators.append((np.cross(axis, centred) * sqrt_m).ravel())
    left, singular, _ = np.linalg.svd(np.array(generators).T, full_matrices=False)
    return left[:, singular > RANK_TOLERANCE * singular.max()]


def internal_basis(rigid: np.ndarray) -> np.ndarray:
    """Orthonormal columns (3N, 3N - k) spanning the complement of a rigid-body basis."""
    complete, _ = np.linalg.qr(rigid, mode="complete")
    return complete[:, rigid.shape[1] :]


def normal_modes(hessian: np.ndarray, masses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending, Hartree/(Bohr^2 amu)) and eigenvectors (columns) of M^-1/2 H M^-1/2.

    Nothing is projected: all 3N modes, the rigid-body ones included (near zero at a
    stationary point). This is the eigenbasis the eigenmatrix observations use.
    """
    return np.linalg.eigh(mass_weighted_hessian(hessian, masses))


def rigid_mode_mask(eigenvectors: np.ndarray, coords: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Boolean mask over the columns of ``normal_modes`` eigenvectors: True for the k (6, or 5
    if linear) modes that overlap most with the translations and rotations."""
    basis = rigid_body_basis(coords, masses)
    overlap = np.sum((basis.T @ eigenvectors) ** 2, axis=0)
    mask = np.zeros(eigenvectors.shape[1], dtype=bool)
    mask[np.argsort(overlap)[-basis.shape[1] :]] = True
    return mask


def vibrational_modes(hessian: np.ndarray, masses: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3N - 6 (3N - 5 if linear) vibrational eigenpairs with translations/rotations removed.

    Eigenvalues ascending in Hartree/(Bohr^2 amu); eigenvectors (3N, 3N - k) are mass-weighted
    and orthogonal to ``rigid_body_basis(coords, masses)``.
    """
    internal = internal_basis(rigid_body_basis(coords, masses))
    reduced = internal.T @ mass_weighted_hessian(hessian, masses) @ internal
    values, vectors = np.linalg.eigh(0.5 * (reduced + reduced.T))
    return values, internal @ vectors


def eigenvalues_to_wavenumbers(eigenvalues: np.ndarray) -> np.ndarray:
    """Mass-weighted eigenvalues (Hartree/(Bohr^2 amu)) -> cm^-1, negative for imaginary modes."""
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    return np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * HARTREE_BOHR2_AMU_TO_CM1


def wavenumbers_to_eigenvalues(wavenumbers: np.ndarray) -> np.ndarray:
    """Inverse of ``eigenvalues_to_wavenumbers``: cm^-1 (negative = imaginary) -> Hartree/(Bohr^2 amu)."""
    scaled = np.asarray(wavenumbers, dtype=np.float64) / HARTREE_BOHR2_AMU_TO_CM1
    return np.sign(scaled) * scaled**2


def frequencies(hessian: np.ndarray, masses: np.ndarray, coords: np.ndarray | None = None) -> np.ndarray:
    """Harmonic frequencies in cm^-1, ascending, imaginary ones negative.

    With ``coords`` the rigid-body modes are removed first (3N - 6 values, what QM programs
    print); without, all 3N eigenvalues of the mass-weighted Hessian are converted.
    """
    if coords is None:
        values, _ = normal_modes(hessian, masses)
    else:
        values, _ = vibrational_modes(hessian, masses, coords)
    return eigenvalues_to_wavenumbers(values)


def reduced_masses(eigenvectors: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Reduced mass (amu) of each mass-weighted mode column l: 1 / |M^-1/2 l|^2 (Gaussian's convention)."""
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(np.asarray(masses, dtype=np.float64)), 3)
    cartesian = eigenvectors * inv_sqrt_m[:, None]
    return 1.0 / np.sum(cartesian**2, axis=0)
