"""Pair a geometry file's structure (atom types, bonds) with a QM structure (coordinates, Hessian).

Checked, never assumed: the same element sequence, and the same geometry after the best
rotation and translation (Kabsch). The QM coordinates are the reference geometry; the
geometry file contributes types and bonds only. When the two frames differ (Gaussian's input
orientation against a ``.mae`` written elsewhere), the QM coordinates and Hessian are rotated
rigidly into the geometry file's frame, which changes no score (every observation is
invariant under a rigid motion applied to both).

Tolerance: a ``.mae`` saved from the QM job differs by rounding and a last optimization step
(0.014 A RMSD on a public Pd pair); another atom order or another conformer differs by tenths
of an Angstrom. RMSD_TOLERANCE sits between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from q2mm.errors import PairingError
from q2mm.model.molecule import Molecule

RMSD_TOLERANCE = 0.05  # Angstrom, after superposition
ATOM_TOLERANCE = 0.15  # Angstrom: an atom further off than this is named as where the files differ
SAME_FRAME = 0.02  # Angstrom: max coordinate difference below which no rotation is applied


@dataclass(frozen=True)
class Alignment:
    """How a QM structure maps onto a geometry file's structure (x_geo ~ (x_qm - c_qm) R + c_geo)."""

    rotation: np.ndarray  # (3, 3) proper rotation, applied to row vectors
    qm_centre: np.ndarray
    geometry_centre: np.ndarray
    rmsd: float  # Angstrom, after superposition
    deviations: np.ndarray  # per atom, Angstrom, after superposition
    max_coordinate_error: float  # without any alignment

    @property
    def same_frame(self) -> bool:
        return self.max_coordinate_error <= SAME_FRAME

    def coords(self, x: np.ndarray) -> np.ndarray:
        return (x - self.qm_centre) @ self.rotation + self.geometry_centre

    def hessian(self, h: np.ndarray) -> np.ndarray:
        """A Cartesian Hessian in the rotated frame: R^T per 3x3 block on both sides."""
        n = h.shape[0] // 3
        blocks = h.reshape(n, 3, n, 3)
        return np.einsum("ai,manb,bj->minj", self.rotation, blocks, self.rotation).reshape(h.shape)


def kabsch(qm: np.ndarray, geometry: np.ndarray) -> Alignment:
    """The proper rotation that best superposes ``qm`` onto ``geometry`` (both (N, 3), Angstrom)."""
    cq, cg = qm.mean(axis=0), geometry.mean(axis=0)
    a, b = qm - cq, geometry - cg
    u, _, vt = np.linalg.svd(a.T @ b)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt
    deviations = np.linalg.norm(a @ rotation - b, axis=1)
    return Alignment(
        rotation, cq, cg, float(np.sqrt((deviations**2).mean())), deviations, float(np.abs(qm - geometry).max())
    )


def pair(qm: Molecule, geometry: Molecule) -> Molecule:
    """``qm`` (coordinates, Hessian, energy) with the atom types and bonds of ``geometry``.

    Raises PairingError naming both files and the first atom where they differ. A geometry
    without coordinates (q2mm metadata) is paired by elements alone.
    """
    where = f"{geometry.source} and {qm.source}"
    if geometry.n_atoms != qm.n_atoms:
        raise PairingError(
            where,
            None,
            f"the same atoms in both files ({geometry.n_atoms} in the first)",
            f"{qm.n_atoms} atoms in the QM file",
        )
    for k, (a, b) in enumerate(zip(geometry.elements, qm.elements)):
        if a != b:
            raise PairingError(
                where,
                None,
                f"the same element sequence; atom {k + 1} is {a} in the geometry file",
                f"{b} in the QM file",
            )
    properties = {**_provenance(geometry), **qm.properties, "geometry_source": geometry.source, "qm_source": qm.source}
    charge_sets = {**geometry.properties.get("qm_charge_sets", {}), **qm.properties.get("qm_charge_sets", {})}
    if charge_sets:  # a .mae may carry Jaguar ESP charges; the QM file's own sets win
        properties["qm_charge_sets"] = charge_sets
    moved = qm
    if np.all(np.isfinite(geometry.coords)):
        alignment = kabsch(qm.coords, geometry.coords)
        _check_alignment(alignment, where)
        properties["pairing"] = {"rmsd": alignment.rmsd, "rotated": not alignment.same_frame}
        if not alignment.same_frame:
            hessian = None if qm.hessian is None else alignment.hessian(qm.hessian)
            moved = qm.with_(coords=alignment.coords(qm.coords), hessian=hessian)
    if "transition_state" in geometry.properties:
        properties["transition_state"] = geometry.properties["transition_state"]
    charge = qm.charge if qm.properties.get("charge_known", True) else geometry.charge
    return moved.with_(
        title=geometry.title or qm.title,
        atom_types=geometry.atom_types,
        bonds=geometry.bonds,
        type_numbers=geometry.type_numbers,
        formal_charges=geometry.formal_charges,
        charge=charge,
        energy=qm.energy if qm.energy is not None else geometry.energy,
        properties=properties,
    )


def _check_alignment(alignment: Alignment, where: str) -> None:
    if alignment.rmsd <= RMSD_TOLERANCE:
        return
    off = np.flatnonzero(alignment.deviations > ATOM_TOLERANCE)
    k = int(off[0]) if off.size else int(np.argmax(alignment.deviations))
    raise PairingError(
        where,
        None,
        f"the same structure in the same atom order (RMSD after superposition <= {RMSD_TOLERANCE} A)",
        f"RMSD {alignment.rmsd:.3f} A; atom {k + 1} is {alignment.deviations[k]:.3f} A off",
    )


def _provenance(geometry: Molecule) -> dict:
    """Where types and bonds came from."""
    keys = ("types_from", "bonds_from")
    return {key: geometry.properties[key] for key in keys if key in geometry.properties}
