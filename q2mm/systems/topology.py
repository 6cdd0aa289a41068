"""Join a QM structure (coordinates + Hessian, one frame) with a structure file's types and bonds.

The Hessian is only meaningful in the frame of the coordinates it was computed with, so the
QM file's coordinates are always kept; the structure file (mae, mol2) contributes atom types
and bonds after checking that it describes the same atoms in the same order: equal elements
and equal interatomic distances. Whether the two files also share one Cartesian frame is
recorded in ``properties['frame']`` (informative; a rotated structure file is fine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from q2mm.errors import InputFormatError
from q2mm.model.molecule import Molecule

DISTANCE_TOLERANCE = 0.02  # Angstrom: structure files round coordinates (mae: 4 decimals)


@dataclass(frozen=True)
class FrameComparison:
    """How a structure file's coordinates relate to the QM coordinates (Angstrom)."""

    max_distance_error: float  # max |D_qm - D_struct| over all atom pairs
    max_coordinate_error: float  # max |x_qm - x_struct| without any alignment
    aligned_rmsd: float  # RMSD after the best rotation + translation (Kabsch)

    @property
    def same_frame(self) -> bool:
        return self.max_coordinate_error <= DISTANCE_TOLERANCE


def kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD between two (N, 3) point sets after optimal superposition (proper rotation)."""
    pa, pb = a - a.mean(axis=0), b - b.mean(axis=0)
    u, _, vt = np.linalg.svd(pa.T @ pb)
    sign = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt
    return float(np.sqrt(((pa @ rotation - pb) ** 2).sum(axis=1).mean()))


def compare_frames(qm_coords: np.ndarray, struct_coords: np.ndarray) -> FrameComparison:
    def distances(x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)

    return FrameComparison(
        max_distance_error=float(np.abs(distances(qm_coords) - distances(struct_coords)).max()),
        max_coordinate_error=float(np.abs(qm_coords - struct_coords).max()),
        aligned_rmsd=kabsch_rmsd(qm_coords, struct_coords),
    )


def attach_topology(qm: Molecule, structure: Molecule, atom_types: tuple[str, ...],
                    extra: dict | None = None) -> Molecule:
    """``qm`` (coordinates, Hessian, energy) with the types/bonds of ``structure``, atom by atom.

    Raises InputFormatError (naming the structure file) when the atom count, the element
    order or the interatomic distances disagree.
    """
    where = structure.source or structure.title
    if structure.n_atoms != qm.n_atoms:
        raise InputFormatError(where, None, f"{qm.n_atoms} atoms as in {qm.source}", str(structure.n_atoms))
    for k, (a, b) in enumerate(zip(qm.elements, structure.elements)):
        if a != b:
            raise InputFormatError(where, None, f"element {a} at atom {k + 1} as in {qm.source}", b)
    frame = compare_frames(qm.coords, structure.coords)
    if frame.max_distance_error > DISTANCE_TOLERANCE:
        raise InputFormatError(
            where, None, f"the geometry of {qm.source} (interatomic distances within {DISTANCE_TOLERANCE} A)",
            f"distances off by up to {frame.max_distance_error:.3f} A",
        )
    properties = {**qm.properties, **(extra or {}), "frame": frame, "topology_source": where}
    return qm.with_(atom_types=tuple(atom_types), bonds=structure.bonds, type_numbers=structure.type_numbers,
                    formal_charges=structure.formal_charges, properties=properties)
