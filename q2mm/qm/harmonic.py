"""Harmonic analysis of a Cartesian Hessian (used by the generators and to check shipped data).

Frequencies come from the mass-weighted Hessian with the translations and rotations projected
out, in cm^-1; imaginary modes are reported as negative numbers (the QM programs' convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from q2mm.model import elements
from q2mm.model.units import BOHR_IN_ANGSTROM, HARTREE_BOHR2_AMU_TO_CM1


def rigid_body_basis(coords_angstrom: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted translation/rotation vectors as columns (3N, 5 or 6)."""
    coords = np.asarray(coords_angstrom, dtype=np.float64) / BOHR_IN_ANGSTROM
    sqrt_m = np.sqrt(np.asarray(masses, dtype=np.float64))
    centred = coords - (masses[:, None] * coords).sum(axis=0) / masses.sum()
    vectors = []
    for axis in range(3):
        shift = np.zeros_like(coords)
        shift[:, axis] = 1.0
        vectors.append((shift * sqrt_m[:, None]).ravel())
    for axis in range(3):
        unit = np.zeros(3)
        unit[axis] = 1.0
        vectors.append((np.cross(unit, centred) * sqrt_m[:, None]).ravel())
    basis, singular, _ = np.linalg.svd(np.array(vectors).T, full_matrices=False)
    return basis[:, singular > 1e-6 * singular.max()]


def frequencies_cm1(
    hessian_hartree_bohr2: np.ndarray,
    coords_angstrom: np.ndarray,
    element_symbols: Sequence[str],
) -> np.ndarray:
    """Vibrational frequencies (cm^-1, ascending, imaginary as negative) of a Cartesian Hessian.

    The 5 or 6 rigid-body modes are projected out and dropped.
    """
    masses = np.array([elements.mass(symbol) for symbol in element_symbols])
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(masses), 3)
    hessian = np.asarray(hessian_hartree_bohr2, dtype=np.float64)
    mass_weighted = 0.5 * (hessian + hessian.T) * np.outer(inv_sqrt_m, inv_sqrt_m)
    rigid = rigid_body_basis(coords_angstrom, masses)
    projector = np.eye(len(inv_sqrt_m)) - rigid @ rigid.T
    projected = projector @ mass_weighted @ projector
    eigenvalues = np.linalg.eigvalsh(projected)
    keep = np.argsort(np.abs(eigenvalues))[rigid.shape[1]:]
    vibrational = np.sort(eigenvalues[keep])
    return np.sign(vibrational) * np.sqrt(np.abs(vibrational)) * HARTREE_BOHR2_AMU_TO_CM1
