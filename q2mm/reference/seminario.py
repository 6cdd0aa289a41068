"""Seminario / QFUERZA starting values for bond and angle parameters from QM Hessians.

Bond i-j: the interaction block A = -H[i, j] (3 x 3, Hartree/Bohr^2); k = sum_n l_n |e_n . u_ij|
over A's eigenpairs, averaged over ij and ji. Angle i-j-k: two springs in series on the
in-plane perpendiculars, 1/k = 1/(r_ij^2 k_PA) + 1/(r_kj^2 k_PC) (Seminario, Int. J. Quantum
Chem. 1996, 60, 1271); the modified Seminario (Allen, Payne, Cole, J. Chem. Theory Comput. 2018,
14, 5777) divides each arm's k_P by 1 + the mean |u_P . u_P'|^2 over the other angles at the
same centre sharing that bond. Force constants are scaled (DFT frequency scale) and converted
to MM3 units (mdyn/A, mdyn A/rad^2); r0 and theta0 are the mean QM values over all matches.
QFUERZA rules: TS Hessians first go through ``invert_ts_curvature``; angles with a terminal
hydrogen get a fixed force constant; active torsions start at 0. Only ACTIVE parameters change;
every change is recorded with its reason.

The parameter-to-atoms mapping comes from the caller (the engine's assignment): for each
ParamRef a list, per structure, of atom tuples: pairs (bond rows: field 1 r0, field 2 k),
triples (angle rows: field 1 theta0, field 2 k) or quadruples (torsion rows: any field).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.model.forcefield import ParamRef
from q2mm.model.molecule import Molecule
from q2mm.model.units import BOHR_IN_ANGSTROM, HARTREE_BOHR2_TO_MDYN_A
from q2mm.reference.eigenmatrix import invert_ts_curvature
from q2mm.reference.geometry import angle_values, bond_values

LINEAR_DEG = 175.0  # an angle wider than this has no in-plane perpendicular: skipped

AtomTuples = Sequence[Sequence[tuple[int, ...]]]  # per structure, the atom tuples of one parameter


@dataclass(frozen=True)
class SeminarioSettings:
    """Options of the Seminario/QFUERZA estimate."""

    modified: bool = False  # plain Seminario reproduces the shipped rh-enamide Seminario start
    frequency_scale: float = 0.963
    hydrogen_angle_k: float = 0.5  # mdyn A/rad^2 for angles with a terminal H
    invert_ts_curvature: bool = True
    ts_eigenvalue: float = 1.0  # Hartree/Bohr^2 replacing the reaction-mode curvature
    zero_torsions: bool = True


@dataclass(frozen=True)
class ParameterChange:
    """One overwritten value: the parameter, its old and new value and why."""

    ref: ParamRef
    old: float
    new: float
    why: str


@dataclass(frozen=True)
class SeminarioResult:
    """All values (changed active ones and untouched others), the changes, and what was skipped."""

    values: dict
    changes: list[ParameterChange]
    skipped: list[tuple[ParamRef, str]]


# ----------------------------------------------------------------------------- force constants


def _block(hessian: np.ndarray, i: int, j: int) -> np.ndarray:
    return -hessian[3 * i : 3 * i + 3, 3 * j : 3 * j + 3]


def _projected_stiffness(block: np.ndarray, direction: np.ndarray) -> float:
    """sum_n l_n |e_n . u| over the eigenpairs of a 3 x 3 interaction block (Hartree/Bohr^2)."""
    values, vectors = np.linalg.eig(block)
    vectors = np.real(vectors)
    vectors = vectors / np.linalg.norm(vectors, axis=0)
    return float(np.sum(np.real(values) * np.abs(direction @ vectors)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def bond_force_constant(hessian: np.ndarray, coords: np.ndarray, i: int, j: int) -> float:
    """Seminario bond force constant in Hartree/Bohr^2 (unscaled), averaged over ij and ji."""
    u = _unit(coords[j] - coords[i])
    return 0.5 * (_projected_stiffness(_block(hessian, i, j), u) + _projected_stiffness(_block(hessian, j, i), -u))


def _perpendicular(coords: np.ndarray, outer: int, centre: int, other: int) -> np.ndarray:
    """In-plane unit vector perpendicular to bond centre-outer, for the angle outer-centre-other."""
    u_outer = _unit(coords[outer] - coords[centre])
    u_other = _unit(coords[other] - coords[centre])
    normal = _unit(np.cross(u_other, u_outer))
    return np.cross(normal, u_outer)


def _arm_stiffness(hessian, coords, outer, centre, other, neighbours, modified) -> float:
    """k_P of one arm (Hartree/Bohr^2), divided by the modified-Seminario factor when asked."""
    u_p = _perpendicular(coords, outer, centre, other)
    k_p = abs(_projected_stiffness(_block(hessian, outer, centre), u_p))
    if not modified:
        return k_p
    others = [
        m
        for m in neighbours[centre]
        if m not in (outer, other) and angle_values(coords, np.array([[outer, centre, m]]))[0] < LINEAR_DEG
    ]
    if not others:
        return k_p
    overlap = np.mean([abs(u_p @ _perpendicular(coords, outer, centre, m)) ** 2 for m in others])
    return k_p / (1.0 + overlap)


def angle_force_constant(
    hessian: np.ndarray,
    coords: np.ndarray,
    i: int,
    j: int,
    k: int,
    neighbours: list[list[int]] | None = None,
    modified: bool = False,
) -> float:
    """Seminario angle force constant i-j-k in Hartree/rad^2 (unscaled); coords in Angstrom."""
    nbrs = neighbours if neighbours is not None else [[] for _ in range(len(coords))]
    r_ij = np.linalg.norm(coords[i] - coords[j]) / BOHR_IN_ANGSTROM
    r_kj = np.linalg.norm(coords[k] - coords[j]) / BOHR_IN_ANGSTROM
    k_a = _arm_stiffness(hessian, coords, i, j, k, nbrs, modified)
    k_c = _arm_stiffness(hessian, coords, k, j, i, nbrs, modified)
    return float(1.0 / (1.0 / (r_ij**2 * k_a) + 1.0 / (r_kj**2 * k_c)))


# ----------------------------------------------------------------------------- the estimate

HARTREE_PER_RAD2_TO_MDYN_A = HARTREE_BOHR2_TO_MDYN_A * BOHR_IN_ANGSTROM**2  # 4.3597 aJ


def _neighbours(mol: Molecule) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(mol.n_atoms)]
    for b in mol.bonds:
        out[b.i].append(b.j)
        out[b.j].append(b.i)
    return out


def prepared_hessians(molecules: Sequence[Molecule], settings: SeminarioSettings) -> list[np.ndarray | None]:
    """QM Hessians (Hartree/Bohr^2), TS curvature inverted when the settings ask."""
    out: list[np.ndarray | None] = []
    for mol in molecules:
        if mol.hessian is None:
            out.append(None)
        elif settings.invert_ts_curvature:
            out.append(invert_ts_curvature(mol.hessian, settings.ts_eigenvalue))
        else:
            out.append(mol.hessian)
    return out


def _estimate(ref, field: int, tuples: AtomTuples, molecules, hessians, neighbours, s: SeminarioSettings):
    """(value, why) for one parameter, or (None, reason skipped)."""
    matches = [(n, tuple(t)) for n, per in enumerate(tuples) for t in per]
    if not matches:
        return None, "no atoms matched"
    lengths = {len(t) for _, t in matches}
    if len(lengths) != 1:
        return None, f"atom tuples of mixed lengths {sorted(lengths)}"
    arity = lengths.pop()
    if arity == 4:
        return (0.0, "active torsion starts at 0 (QFUERZA)") if s.zero_torsions else (None, "torsions not zeroed")
    if arity == 2 and field == 1:
        values = [bond_values(molecules[n].coords, np.array([t]))[0] for n, t in matches]
        return float(np.mean(values)), f"mean QM bond length over {len(values)} matches"
    if arity == 3 and field == 1:
        values = [angle_values(molecules[n].coords, np.array([t]))[0] for n, t in matches]
        return float(np.mean(values)), f"mean QM angle over {len(values)} matches"
    if field != 2 or arity not in (2, 3):
        return None, f"field {field} of a {arity}-atom row has no Seminario estimate"
    return _force_constant(matches, molecules, hessians, neighbours, s)


def _force_constant(matches, molecules, hessians, neighbours, s: SeminarioSettings):
    arity = len(matches[0][1])
    if arity == 3 and any(molecules[n].elements[t[0]] == "H" or molecules[n].elements[t[2]] == "H" for n, t in matches):
        return s.hydrogen_angle_k, "angle with a terminal H: fixed (QFUERZA)"
    if any(hessians[n] is None for n, _ in matches):
        return None, "a matched structure has no QM Hessian"
    if arity == 3 and any(angle_values(molecules[n].coords, np.array([t]))[0] > LINEAR_DEG for n, t in matches):
        return None, "linear angle: no in-plane perpendicular"
    ks = []
    for n, t in matches:
        coords = molecules[n].coords
        if arity == 2:
            ks.append(bond_force_constant(hessians[n], coords, t[0], t[1]) * HARTREE_BOHR2_TO_MDYN_A)
        else:
            k = angle_force_constant(hessians[n], coords, t[0], t[1], t[2], neighbours[n], s.modified)
            ks.append(k * HARTREE_PER_RAD2_TO_MDYN_A)
    method = "modified Seminario" if (arity == 3 and s.modified) else "Seminario"
    return s.frequency_scale * float(np.mean(ks)), f"{method} over {len(ks)} matches, scaled {s.frequency_scale}"


def seminario_start(
    molecules: Sequence[Molecule],
    assignments: Mapping[ParamRef, AtomTuples],
    current: Mapping[ParamRef, float],
    active: Collection[ParamRef],
    settings: SeminarioSettings = SeminarioSettings(),
) -> SeminarioResult:
    """New starting values for the ACTIVE parameters among ``assignments``; all others kept.

    ``assignments[ref]`` lists, per structure (same order as ``molecules``), the atom tuples
    (0-based) that parameter ``ref`` (with ``.field``) applies to. ``current`` holds every
    parameter's present value.
    """
    for ref, tuples in assignments.items():
        if len(tuples) != len(molecules):
            raise ConfigurationError(f"{ref}: atom tuples for {len(tuples)} structures, expected {len(molecules)}")
    hessians = prepared_hessians(molecules, settings)
    neighbours = [_neighbours(m) for m in molecules]
    values = dict(current)
    changes: list[ParameterChange] = []
    skipped: list[tuple[ParamRef, str]] = []
    active = set(active)
    for ref, tuples in assignments.items():
        if ref not in active:
            continue
        new, why = _estimate(ref, ref.field, tuples, molecules, hessians, neighbours, settings)
        if new is None:
            skipped.append((ref, why))
            continue
        changes.append(ParameterChange(ref, float(current[ref]), new, why))
        values[ref] = new
    return SeminarioResult(values, changes, skipped)


ENGINE_KINDS = {"stretch": 2, "bend": 2, "torsion": 3}  # kind -> how many leading refs are its own row's


def mapping_from_assignments(assignments: Sequence[Any]) -> dict[ParamRef, list[list[tuple[int, ...]]]]:
    """{ParamRef: per-structure atom tuples} for bond (r0, k), angle (theta0, k) and torsion (V1-V3)
    rows, from per-structure engine assignments (objects with ``of(kind)`` -> items with ``atoms``
    and ``refs``, as ``q2mm.mm3.assign.Assignment``)."""
    mapping: dict[ParamRef, list[list[tuple[int, ...]]]] = {}
    for s, asg in enumerate(assignments):
        for kind, n_refs in ENGINE_KINDS.items():
            for item in asg.of(kind):
                for ref in item.refs[:n_refs]:
                    mapping.setdefault(ref, [[] for _ in assignments])[s].append(tuple(item.atoms))
    return mapping
