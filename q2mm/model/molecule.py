"""The Molecule: one structure of a training set, in internal units."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from q2mm.errors import StructureError
from q2mm.model import elements


@dataclass(frozen=True)
class Bond:
    """A covalent bond between 0-based atoms i and j with a MacroModel/mol2 bond order."""

    i: int
    j: int
    order: float = 1.0


@dataclass(frozen=True, eq=False)
class Molecule:
    """One structure: atoms, coordinates (Angstrom), optional MM3 atom types, bonds, QM data.

    ``hessian`` is the Cartesian QM Hessian in Hartree/Bohr^2 (3N x 3N, not mass-weighted),
    ``energy`` the QM energy in Hartree. ``atom_types`` are MacroModel type names ('C3', 'H1',
    'RH'...), ``type_numbers`` the MacroModel type numbers where the source carries them.
    """

    title: str
    elements: tuple[str, ...]
    coords: np.ndarray
    bonds: tuple[Bond, ...] = ()
    atom_types: tuple[str, ...] | None = None
    type_numbers: tuple[int, ...] | None = None
    formal_charges: tuple[int, ...] | None = None
    charge: int = 0
    hessian: np.ndarray | None = None
    energy: float | None = None
    source: str = ""
    properties: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        coords = np.asarray(self.coords, dtype=np.float64)
        if coords.shape != (len(self.elements), 3):
            raise StructureError(
                f"{self._name()}: coords shape {coords.shape} does not match {len(self.elements)} atoms"
            )
        object.__setattr__(self, "coords", coords)
        if self.hessian is not None:
            hess = np.asarray(self.hessian, dtype=np.float64)
            n3 = 3 * len(self.elements)
            if hess.shape != (n3, n3):
                raise StructureError(f"{self._name()}: Hessian shape {hess.shape}, expected ({n3}, {n3})")
            object.__setattr__(self, "hessian", hess)

    def _name(self) -> str:
        """The structure as a message names it: its title and the file it came from."""
        return f"{self.title} ({self.source})" if self.source and self.title else (self.title or self.source)

    @property
    def n_atoms(self) -> int:
        return len(self.elements)

    @property
    def masses(self) -> np.ndarray:
        """Monoisotopic masses in amu, one per atom."""
        return np.array([elements.mass(e) for e in self.elements])

    @property
    def atomic_numbers(self) -> np.ndarray:
        return np.array([elements.ATOMIC_NUMBER[e.upper()] for e in self.elements])

    def bond_pairs(self) -> np.ndarray:
        """Bonds as an (M, 2) int array of 0-based atom indices."""
        return np.array([(b.i, b.j) for b in self.bonds], dtype=np.int64).reshape(-1, 2)

    def with_(self, **changes) -> Molecule:
        """A copy with some fields replaced (the model is immutable)."""
        return replace(self, **changes)
