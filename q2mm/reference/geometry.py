"""Internal coordinates: which bonds, angles and torsions a structure has, and their values.

The measuring functions take the array module (``numpy`` or ``jax.numpy``) as ``xp`` so the
reference objective and the JAX loss measure with the same formulas. Angles use
atan2(|a x b|, a.b) with a norm whose gradient is finite at zero (linear angles).
Values: bond lengths in Angstrom, angles and torsions in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from q2mm.model.molecule import Molecule

LINEAR_ANGLE_DEG = 175.0  # torsions through an angle wider than this are undefined: skipped


@dataclass(frozen=True)
class InternalCoordinates:
    """0-based atom index arrays: bonds (B, 2), angles (A, 3) i-j-k, torsions (T, 4) i-j-k-l."""

    bonds: np.ndarray
    angles: np.ndarray
    torsions: np.ndarray


def _neighbours(n_atoms: int, bonds: np.ndarray) -> list[list[int]]:
    nbrs: list[list[int]] = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        nbrs[int(i)].append(int(j))
        nbrs[int(j)].append(int(i))
    return [sorted(set(n)) for n in nbrs]


def angles_from_bonds(n_atoms: int, bonds: np.ndarray) -> np.ndarray:
    """Every i-j-k with i-j and j-k bonded, i < k, as an (A, 3) array."""
    nbrs = _neighbours(n_atoms, bonds)
    rows = [(i, j, k) for j in range(n_atoms) for a, i in enumerate(nbrs[j]) for k in nbrs[j][a + 1 :]]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def torsions_from_bonds(n_atoms: int, bonds: np.ndarray) -> np.ndarray:
    """Every i-j-k-l along bonded j-k (each central bond once, j < k), i != l, as (T, 4)."""
    nbrs = _neighbours(n_atoms, bonds)
    rows = []
    for j, k in sorted((min(int(a), int(b)), max(int(a), int(b))) for a, b in bonds):
        for i in nbrs[j]:
            for l in nbrs[k]:
                if i != k and l != j and i != l:
                    rows.append((i, j, k, l))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def internal_coordinates(molecule: Molecule, skip_linear_torsions: bool = True) -> InternalCoordinates:
    """Bonds of the molecule plus the angles and torsions its bond graph implies.

    Torsions through a (nearly) linear angle at the molecule's own geometry are skipped:
    their dihedral is undefined.
    """
    bonds = molecule.bond_pairs()
    angles = angles_from_bonds(molecule.n_atoms, bonds)
    torsions = torsions_from_bonds(molecule.n_atoms, bonds)
    if skip_linear_torsions and len(torsions):
        first = angle_values(molecule.coords, torsions[:, :3])
        second = angle_values(molecule.coords, torsions[:, 1:])
        keep = (first < LINEAR_ANGLE_DEG) & (second < LINEAR_ANGLE_DEG)
        torsions = torsions[keep]
    return InternalCoordinates(bonds, angles, torsions)


def _safe_norm(v, xp=np):
    """Euclidean norm over the last axis with a zero (not NaN) gradient at the origin."""
    sq = xp.sum(v * v, axis=-1)
    positive = sq > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, sq, 1.0)), 0.0)


def bond_values(x, idx, xp=np):
    """Distances (Angstrom) between the atom pairs idx (B, 2) of coordinates x (N, 3)."""
    return _safe_norm(x[idx[:, 1]] - x[idx[:, 0]], xp)


def angle_values(x, idx, xp=np):
    """Angles i-j-k in degrees for idx (A, 3), via atan2(|a x b|, a . b)."""
    a = x[idx[:, 0]] - x[idx[:, 1]]
    b = x[idx[:, 2]] - x[idx[:, 1]]
    return xp.degrees(xp.arctan2(_safe_norm(xp.cross(a, b), xp), xp.sum(a * b, axis=-1)))


def torsion_values(x, idx, xp=np):
    """IUPAC dihedral angles i-j-k-l in degrees, in (-180, 180], for idx (T, 4)."""
    b1 = x[idx[:, 1]] - x[idx[:, 0]]
    b2 = x[idx[:, 2]] - x[idx[:, 1]]
    b3 = x[idx[:, 3]] - x[idx[:, 2]]
    n1 = xp.cross(b1, b2)
    n2 = xp.cross(b2, b3)
    y = _safe_norm(b2, xp) * xp.sum(b1 * n2, axis=-1)
    return xp.degrees(xp.arctan2(y, xp.sum(n1 * n2, axis=-1)))


def wrap_degrees(delta, xp=np):
    """Map angle differences to [-180, 180)."""
    return xp.mod(delta + 180.0, 360.0) - 180.0
