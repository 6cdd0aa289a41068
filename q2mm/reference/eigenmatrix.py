"""Eigenmatrix reference data: QM normal modes and the MM Hessian projected onto them.

V holds the eigenvectors of the mass-weighted QM Hessian M^-1/2 H_QM M^-1/2: the exact
rigid-body basis first (translations/rotations, weight 0), then the 3N - 6 vibrational modes
in ascending eigenvalue order (``q2mm.reference.vibrations``). The calculated eigenmatrix is
V^T (M^-1/2 H_MM M^-1/2) V with H_MM (kcal/mol/A^2, at the QM geometry) converted to
Hartree/Bohr^2. Eigenvalues are in Hartree/(Bohr^2 amu).

The score compares eigenmatrix entries in kJ/(mol A^2 amu) (``EIGEN_SCORE_UNIT``): the unit in
which Q2MM defined its default weights (eigenmatrix diagonal 0.1 next to bonds 10, angles 5).
Scored in Hartree/(Bohr^2 amu) the same weights would make the Hessian data ~1e-4 of the score
and a fit would ignore it. Evidence: with kJ units the published rh-enamide force field scores
about 3.8e5 in our engine, next to the 3.92e5 the reference implementation reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from q2mm.model.units import HARTREE_BOHR2_TO_KJ_PER_MOL_A2, KCAL_PER_MOL_A2_TO_HARTREE_BOHR2
from q2mm.reference import vibrations

EIGEN_SCORE_UNIT = HARTREE_BOHR2_TO_KJ_PER_MOL_A2  # Hartree/(Bohr^2 amu) -> kJ/(mol A^2 amu) in the score
TS_EIGENVALUE_THRESHOLD = -1e-4  # Hartree/(Bohr^2 amu): below this a vibrational mode is imaginary (~51i cm^-1)


@dataclass(frozen=True)
class EigenReference:
    """QM eigenbasis of one structure.

    ``basis`` (3N, 3N) columns: ``n_rigid`` rigid-body vectors, then vibrational modes.
    ``eigenvalues`` (3N,) the QM values as used for reference (0 for rigid modes; after
    ``invert_ts_curvature`` when requested). ``ts_mode`` the column of the reaction-coordinate
    mode, or None for a minimum. ``raw_eigenvalues`` the values before any inversion.
    """

    basis: np.ndarray
    eigenvalues: np.ndarray
    raw_eigenvalues: np.ndarray
    n_rigid: int
    ts_mode: int | None


def invert_eigenvalues(values: np.ndarray, ts_index: int | None, ts_value: float) -> np.ndarray:
    """Replace the reaction-coordinate eigenvalue by ``ts_value`` and every other negative by 0."""
    out = np.where(np.asarray(values) < 0.0, 0.0, values).astype(np.float64)
    if ts_index is not None:
        out[ts_index] = ts_value
    return out


def invert_ts_curvature(hessian: np.ndarray, ts_value: float = 1.0) -> np.ndarray:
    """A Cartesian Hessian with its most negative eigenvalue set to ``ts_value`` (other negatives 0).

    Works in the Hessian's own (not mass-weighted) eigenbasis, Hartree/Bohr^2; a Hessian without
    a negative eigenvalue below the rigid-body noise comes back unchanged.
    """
    sym = 0.5 * (np.asarray(hessian, dtype=np.float64) + np.asarray(hessian).T)
    values, vectors = np.linalg.eigh(sym)
    if values[0] >= TS_EIGENVALUE_THRESHOLD:
        return sym
    fixed = invert_eigenvalues(values, 0, ts_value)
    return (vectors * fixed) @ vectors.T


def qm_eigen_reference(
    hessian: np.ndarray, masses: np.ndarray, coords: np.ndarray, invert: bool = False, ts_value: float = 1.0
) -> EigenReference:
    """Build the eigenbasis of one QM structure (Hessian Hartree/Bohr^2, masses amu, coords A)."""
    rigid = vibrations.rigid_body_basis(coords, masses)
    values, modes = vibrations.vibrational_modes(hessian, masses, coords)
    n_rigid = rigid.shape[1]
    basis = np.hstack([rigid, modes])
    raw = np.concatenate([np.zeros(n_rigid), values])
    ts_mode = n_rigid if values[0] < TS_EIGENVALUE_THRESHOLD else None
    used = invert_eigenvalues(raw, ts_mode, ts_value) if invert else raw
    return EigenReference(basis, used, raw, n_rigid, ts_mode)


def mass_weighted_mm_hessian(hessian_kcal, masses, xp=np):
    """M^-1/2 H_MM M^-1/2 in Hartree/(Bohr^2 amu) from an MM Hessian in kcal/mol/A^2."""
    inv_sqrt_m = xp.repeat(1.0 / xp.sqrt(masses), 3)
    return hessian_kcal * KCAL_PER_MOL_A2_TO_HARTREE_BOHR2 * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]


def eigenmatrix(hessian_kcal, masses, basis, xp=np):
    """V^T (M^-1/2 H_MM M^-1/2) V: the MM Hessian in the QM eigenbasis (Hartree/(Bohr^2 amu))."""
    return basis.T @ mass_weighted_mm_hessian(hessian_kcal, masses, xp) @ basis
