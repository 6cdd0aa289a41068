"""Reference observations per structure, built once from QM data, and their weights.

Kinds (score = sum over kinds and entries of (w * (ref - calc))^2, no normalisation):

- ``eig_diag``: diagonal of V^T H_MM V (MM Hessian at the QM geometry) vs QM eigenvalues.
- ``eig_offdiag``: upper off-diagonal of the same matrix vs 0 (optional).
- ``bond_length``, ``bond_angle``, ``torsion``: internal coordinates of the MM structure
  minimized from the QM geometry vs their QM values (torsion residuals wrapped).
- ``frequency``: ascending MM harmonic frequencies at the MM minimum vs ascending QM ones
  (cm^-1; optional).
- ``energy``: MM energy differences between minimized structures of one composition vs QM
  differences (kcal/mol; optional).
- ``charge``: MM3* partial charge of every atom vs the QM charge the structure carries
  (``properties['qm_charges']``, e, as the QM reader or the system's ``charges`` option chose;
  optional). Every atom is scored: an MM3* atom carries its formal charge plus +-mu/(c r0)
  of each of its bonds whose stretch row has a bond dipole mu (``q2mm.mm3.charges``), so it
  depends on parameters only, never on the geometry.

Rigid-body modes and the TS reaction-coordinate mode get weight 0 in the eigenmatrix
(``ts_mode_weight`` can change the latter, e.g. together with ``invert_ts_curvature``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.model.molecule import Molecule
from q2mm.model.units import HARTREE_IN_KCAL_PER_MOL
from q2mm.reference import vibrations
from q2mm.reference.eigenmatrix import EigenReference, qm_eigen_reference
from q2mm.reference.geometry import InternalCoordinates, angle_values, bond_values, internal_coordinates, torsion_values

KINDS = ("eig_diag", "eig_offdiag", "bond_length", "bond_angle", "torsion", "frequency", "energy", "charge")
# The one table of observation weights: Q2MM's weight of each kind when it is scored, and the
# kinds scored unless a system says otherwise (the others then have weight 0, i.e. are off).
KIND_WEIGHTS = {
    "eig_diag": 0.1,
    "eig_offdiag": 0.05,
    "bond_length": 10.0,
    "bond_angle": 5.0,
    "torsion": 1.0,
    "frequency": 1.0,
    "energy": 1.0,
    "charge": 10.0,  # Q2MM's weight of atomic charges (its 'q' data type)
}
DEFAULT_KINDS = ("eig_diag", "bond_length", "bond_angle", "torsion")


def default_weights() -> dict[str, float]:
    """Weight per kind of a system that states none: KIND_WEIGHTS for DEFAULT_KINDS, else 0 (off)."""
    return {kind: KIND_WEIGHTS[kind] if kind in DEFAULT_KINDS else 0.0 for kind in KINDS}


GEOMETRY_KINDS = ("bond_length", "bond_angle", "torsion")
PERIODIC_KINDS = ("torsion",)


@dataclass(frozen=True)
class ObservationSettings:
    """Which observation kinds enter the score, their weights and the TS treatment."""

    kinds: tuple[str, ...] = DEFAULT_KINDS
    eig_diag_weight: float = KIND_WEIGHTS["eig_diag"]
    eig_offdiag_weight: float = KIND_WEIGHTS["eig_offdiag"]
    bond_length_weight: float = KIND_WEIGHTS["bond_length"]
    bond_angle_weight: float = KIND_WEIGHTS["bond_angle"]
    torsion_weight: float = KIND_WEIGHTS["torsion"]
    frequency_weight: float = KIND_WEIGHTS["frequency"]
    energy_weight: float = KIND_WEIGHTS["energy"]
    charge_weight: float = KIND_WEIGHTS["charge"]
    ts_mode_weight: float = 0.0
    invert_ts_curvature: bool = False
    ts_eigenvalue: float = 1.0  # Hartree/(Bohr^2 amu) replacing the reaction-mode eigenvalue

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ConfigurationError(f"unknown observation kinds {unknown}; known: {list(KINDS)}")
        object.__setattr__(self, "kinds", tuple(self.kinds))

    def weight(self, kind: str) -> float:
        return float(getattr(self, f"{kind}_weight"))

    def uses(self, kind: str) -> bool:
        return kind in self.kinds

    @property
    def needs_minimum(self) -> bool:
        """Whether any enabled kind is measured on the minimized MM structure."""
        return any(k in self.kinds for k in (*GEOMETRY_KINDS, "frequency", "energy"))


@dataclass(frozen=True)
class StructureObservations:
    """Reference values and weights of one structure (arrays are per entry).

    ``eigen`` is None when the kind list has no eigenmatrix kind or the structure has no
    Hessian. ``frequency_drop`` = how many of the lowest MM frequencies are skipped (1 for a TS
    whose reaction mode was not inverted). ``energy_anchor`` = index of the structure the
    energy is measured against, or None.
    """

    index: int
    title: str
    masses: np.ndarray
    internal: InternalCoordinates
    geometry_ref: dict[str, np.ndarray]
    eigen: EigenReference | None = None
    eig_diag_weight: np.ndarray | None = None
    eig_offdiag_weight: np.ndarray | None = None
    frequency_ref: np.ndarray | None = None
    frequency_drop: int = 0
    energy_ref: float | None = None
    energy_anchor: int | None = None
    geometry_weight: dict[str, float] = field(default_factory=dict)
    charge_ref: np.ndarray | None = None


def _eigen_weights(eigen: EigenReference, settings: ObservationSettings) -> tuple[np.ndarray, np.ndarray]:
    n = eigen.basis.shape[1]
    diag = np.full(n, settings.eig_diag_weight)
    diag[: eigen.n_rigid] = 0.0
    if eigen.ts_mode is not None:
        diag[eigen.ts_mode] = settings.ts_mode_weight
    off = np.triu(np.full((n, n), settings.eig_offdiag_weight), k=1)
    off[: eigen.n_rigid, :] = 0.0
    off[:, : eigen.n_rigid] = 0.0
    if eigen.ts_mode is not None:
        off[eigen.ts_mode, :] = 0.0
        off[:, eigen.ts_mode] = 0.0
    return diag, off


def _frequency_reference(eigen: EigenReference) -> tuple[np.ndarray, int]:
    vib = eigen.eigenvalues[eigen.n_rigid :]
    drop = 0
    if eigen.ts_mode is not None and vib[eigen.ts_mode - eigen.n_rigid] < 0.0:
        vib = np.delete(vib, eigen.ts_mode - eigen.n_rigid)
        drop = 1
    return np.sort(vibrations.eigenvalues_to_wavenumbers(vib)), drop


def _energy_anchors(molecules: list[Molecule]) -> dict[int, tuple[int, float]]:
    """Per structure with a QM energy: (anchor index, QM energy relative to it in kcal/mol).

    Structures are grouped by composition; the anchor is the group's lowest QM energy.
    Groups of one structure carry no energy information and are left out.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    energy: dict[int, float] = {}
    for k, mol in enumerate(molecules):
        if mol.energy is not None:
            groups.setdefault(tuple(sorted(mol.elements)), []).append(k)
            energy[k] = mol.energy
    out = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        anchor = min(members, key=lambda k: energy[k])
        for k in members:
            rel = (energy[k] - energy[anchor]) * HARTREE_IN_KCAL_PER_MOL
            out[k] = (anchor, rel)
    return out


def _geometry_reference(mol: Molecule, internal: InternalCoordinates) -> dict[str, np.ndarray]:
    return {
        "bond_length": bond_values(mol.coords, internal.bonds),
        "bond_angle": angle_values(mol.coords, internal.angles),
        "torsion": torsion_values(mol.coords, internal.torsions),
    }


def structure_observations(
    index: int, mol: Molecule, settings: ObservationSettings, energy: tuple[int, float] | None = None
) -> StructureObservations:
    """Reference data of one structure (QM Hessian Hartree/Bohr^2, coordinates Angstrom)."""
    internal = internal_coordinates(mol)
    needs_eigen = any(settings.uses(k) for k in ("eig_diag", "eig_offdiag", "frequency"))
    eigen = diag_w = off_w = freq_ref = None
    drop = 0
    if needs_eigen and mol.hessian is not None:
        eigen = qm_eigen_reference(
            mol.hessian, mol.masses, mol.coords, settings.invert_ts_curvature, settings.ts_eigenvalue
        )
        diag_w, off_w = _eigen_weights(eigen, settings)
        freq_ref, drop = _frequency_reference(eigen)
    anchor, rel = energy if energy is not None else (None, None)
    return StructureObservations(
        index=index,
        title=mol.title,
        masses=mol.masses,
        internal=internal,
        geometry_ref=_geometry_reference(mol, internal),
        eigen=eigen,
        eig_diag_weight=diag_w,
        eig_offdiag_weight=off_w,
        frequency_ref=freq_ref,
        frequency_drop=drop,
        energy_ref=rel,
        energy_anchor=anchor,
        geometry_weight={k: settings.weight(k) for k in GEOMETRY_KINDS},
        charge_ref=_charge_reference(mol) if settings.uses("charge") else None,
    )


def _charge_reference(mol: Molecule) -> np.ndarray | None:
    charges = mol.properties.get("qm_charges")
    return None if charges is None else np.asarray(charges, dtype=np.float64).reshape(mol.n_atoms)


def build_observations(molecules: list[Molecule], settings: ObservationSettings) -> list[StructureObservations]:
    """Reference observations for every structure of a training set."""
    energies = _energy_anchors(molecules) if settings.uses("energy") else {}
    return [structure_observations(k, mol, settings, energies.get(k)) for k, mol in enumerate(molecules)]


def missing_hessians(molecules: list[Molecule], settings: ObservationSettings) -> list[str]:
    """Titles of structures that lack the QM Hessian an enabled eigenmatrix kind needs."""
    needs = any(settings.uses(k) for k in ("eig_diag", "eig_offdiag", "frequency"))
    return [m.title for m in molecules if needs and m.hessian is None]


def missing_charges(molecules: list[Molecule], settings: ObservationSettings) -> list[str]:
    """Titles of structures that lack the QM charges an enabled ``charge`` kind needs."""
    return [m.title for m in molecules if settings.uses("charge") and "qm_charges" not in m.properties]


def check_reference_data(molecules: list[Molecule], settings: ObservationSettings) -> None:
    """Refuse enabled kinds whose QM data (Hessians, charges) some structures lack."""
    missing = missing_hessians(molecules, settings)
    if missing:
        raise ConfigurationError(f"eigenmatrix/frequency observations need QM Hessians; missing for {missing}")
    missing = missing_charges(molecules, settings)
    if missing:
        raise ConfigurationError(
            f"charge observations need QM charges; missing for {missing} (a Gaussian Pop=ChelpG/MK/Mulliken "
            "job, a Jaguar .out or a .mae with r_j_ESP_Charges; the system's 'charges' option picks the set)"
        )


def _offdiag_rows(n: int, d: int) -> np.ndarray:
    """Positions of the upper triangle of an n x n block in the row-major upper triangle of d x d."""
    i, j = np.triu_indices(n, k=1)
    return i * d - i * (i + 1) // 2 + (j - i - 1)


def residual_layout(
    observations: list[StructureObservations], settings: ObservationSettings, size: int | None = None
) -> dict[str, list[np.ndarray]]:
    """The one layout of the weighted residual vector: per enabled kind (KINDS order), per
    structure, the entries that are real observations, in the order they are listed (by
    kind, then structure, then entry). ``size``: the padded eigenmatrix dimension, so that
    ``eig_offdiag`` entries are positions in a (size x size) row-major upper triangle (None:
    the structure's own dimension, i.e. simply 0..m-1)."""

    def rows(kind: str, o: StructureObservations) -> np.ndarray:
        if kind in ("eig_diag", "eig_offdiag"):
            n = o.eigen.eigenvalues.size if o.eigen is not None else 0
            if kind == "eig_diag":
                return np.arange(n)
            return _offdiag_rows(n, n if size is None else size)
        count = {
            "frequency": lambda: 0 if o.frequency_ref is None else o.frequency_ref.size,
            "energy": lambda: int(o.energy_anchor is not None),
            "charge": lambda: 0 if o.charge_ref is None else o.charge_ref.size,
        }
        if kind in count:
            return np.arange(count[kind]())
        return np.arange(o.geometry_ref[kind].size)

    return {kind: [rows(kind, o) for o in observations] for kind in KINDS if settings.uses(kind)}


def layout_kinds(layout: dict[str, list[np.ndarray]]) -> np.ndarray:
    """The observation kind of each row of a residual vector laid out by :func:`residual_layout`."""
    return np.array([kind for kind, per in layout.items() for rows in per for _ in rows], dtype=object)
