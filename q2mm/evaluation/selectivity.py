"""Selectivity from the training set: QM vs MM3* energy differences of TS groups.

Each group holds the TSs (conformers) that lead to one stereochemical outcome. A group's
energy is the Boltzmann combination of its members, G = E_min - RT ln sum exp(-(E_i - E_min)/RT),
at the spec's temperature; a pair (a, b) reports G(b) - G(a) in kJ/mol, from the QM energies
the files hold (electronic SCF energies, no thermal corrections) and from the MM3* energies
of the minimized structures. Limits: the MM energies are those of the training geometries
minimized, not of a conformational search; electronic, not free, energies on both sides.

Only stereoisomers and conformers compare: a pair whose structures differ in composition
(different atoms) or in constitution (same atoms, different bonds: e.g. attack at either
terminus of an allyl, giving regioisomers) is reported without an MM3* difference and left
out of MUE and R2, because force-field steric energies carry no bond-energy terms that would
put different bonding patterns on one scale (and different atoms compare on neither side).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.evaluation.select import resolve_structures
from q2mm.model.units import HARTREE_IN_KJ_PER_MOL, KCAL_IN_KJ
from q2mm.reference import stats
from q2mm.systems.spec import SelectivitySpec

GAS_CONSTANT_KJ = 8.314462618e-3  # kJ/(mol K)

ENERGY_LABELS = {
    ".out": "Jaguar SCF energy (SCFE)",
    ".log": "Gaussian SCF energy (last 'SCF Done')",
    ".fchk": "Gaussian 'Total Energy' (the SCF energy for HF/DFT)",
}


def boltzmann_energy(energies_kj: Sequence[float], temperature: float) -> float:
    """-RT ln sum exp(-E_i/RT) (kJ/mol), evaluated relative to the lowest member."""
    values = np.asarray(energies_kj, float)
    rt = GAS_CONSTANT_KJ * temperature
    low = float(values.min())
    return low - rt * float(np.log(np.sum(np.exp(-(values - low) / rt))))


def resolve_groups(spec: SelectivitySpec, molecules: Sequence[Any]) -> dict[str, list[int]]:
    """group -> 0-based structure indices (unknown or repeated selectors raise ConfigurationError)."""
    titles = [m.title for m in molecules]
    return {
        name: resolve_structures(members, titles, f"selectivity group {name!r}")
        for name, members in spec.groups.items()
    }


def check_groups(spec: SelectivitySpec, molecules: Sequence[Any]) -> list[str]:
    """Check the groups against the structures before any fit: selectors resolve and every
    member has a QM energy (else ConfigurationError); return one note per pair left uncompared."""
    groups = resolve_groups(spec, molecules)
    _require_qm_energies(groups, molecules)
    notes = []
    for a, b in spec.compared:
        reason = incomparable([molecules[k] for k in groups[a] + groups[b]])
        if reason:
            notes.append(f"selectivity pair {a!r}/{b!r} not compared: {reason}")
    return notes


def _require_qm_energies(groups: dict[str, list[int]], molecules: Sequence[Any]) -> None:
    members = sorted({k for ks in groups.values() for k in ks})
    missing = [molecules[k].title for k in members if molecules[k].energy is None]
    if missing:
        raise ConfigurationError(f"selectivity needs QM energies; none read for {missing}")


def incomparable(structures: Sequence[Any]) -> str | None:
    """Why the energies of these structures do not compare, or None for stereoisomers and conformers
    (one composition and, as far as colour refinement of the bond graph tells, one constitution)."""
    formulas = {formula(m.elements) for m in structures}
    if len(formulas) > 1:
        return f"different composition ({', '.join(sorted(formulas))}): their energies do not compare"
    if len(set(constitution_classes(structures))) > 1:
        return (
            "constitutional isomers (same atoms, different bonds): MM3* steric energies compare only "
            "between stereoisomers and conformers"
        )
    return None


def formula(elements: Sequence[str]) -> str:
    """Hill formula (C, H, then the other elements alphabetically) of a structure's atoms."""
    counts = Counter(e.capitalize() for e in elements)
    order = [e for e in ("C", "H") if "C" in counts and e in counts]
    order += sorted(e for e in counts if e not in order)
    return "".join(f"{e}{counts[e] if counts[e] > 1 else ''}" for e in order)


def constitution_classes(structures: Sequence[Any]) -> list[tuple[int, ...]]:
    """Per structure, the sorted atom colours of a joint colour refinement (1-dimensional
    Weisfeiler-Lehman) of the element-labelled bond graphs, bond orders ignored. Different
    colour multisets prove different constitutions; equal ones almost always mean the same
    (refinement cannot tell a few regular graphs apart, e.g. decalin and bicyclopentyl), so an
    isomer pair may go unflagged, but stereoisomers and conformers are never flagged."""
    neighbours: list[list[list[int]]] = []
    colours: list[list[Any]] = []
    for molecule in structures:
        adjacent: list[list[int]] = [[] for _ in molecule.elements]
        for bond in molecule.bonds:
            adjacent[bond.i].append(bond.j)
            adjacent[bond.j].append(bond.i)
        neighbours.append(adjacent)
        colours.append([e.capitalize() for e in molecule.elements])
    n_colours = -1
    while True:
        signatures = [
            [(c[i], tuple(sorted(c[j] for j in adjacent[i]))) for i in range(len(c))]
            for c, adjacent in zip(colours, neighbours)
        ]
        table = {sig: k for k, sig in enumerate(sorted({sig for sigs in signatures for sig in sigs}))}
        colours = [[table[sig] for sig in sigs] for sigs in signatures]
        if len(table) == n_colours:  # the partition is stable: it only refines, so the count only grows
            return [tuple(sorted(c)) for c in colours]
        n_colours = len(table)


def qm_energy_label(molecule: Any) -> str:
    """Which QM energy a structure carries (its loader's label, else from the file suffix)."""
    label = molecule.properties.get("energy_source") if molecule.properties else None
    return label or ENERGY_LABELS.get(Path(str(molecule.source)).suffix, f"energy read from {molecule.source}")


def selectivity_table(
    spec: SelectivitySpec, molecules: Sequence[Any], mm_kcal: Sequence[float | None]
) -> dict[str, Any]:
    """Per compared pair: QM and MM3* G(b) - G(a) (kJ/mol) and their error; MUE and R2 over the
    comparable pairs. A pair of different constitution keeps its QM difference but gets no MM3*
    one (``mm_kj``, ``error_kj`` None), different compositions get neither; ``note`` says why.

    ``mm_kcal`` is the MM3* energy (kcal/mol) of each structure's minimum.
    """
    groups = resolve_groups(spec, molecules)
    _require_qm_energies(groups, molecules)
    members = sorted({k for ks in groups.values() for k in ks})
    unminimized = [molecules[k].title for k in members if mm_kcal[k] is None]
    if unminimized:
        raise ConfigurationError(
            f"selectivity needs minimized MM3* structures (a geometry kind with a weight); none for {unminimized}"
        )
    # both checked above: every member has a QM energy and a minimized MM3* energy
    qm = {k: cast(float, molecules[k].energy) * HARTREE_IN_KJ_PER_MOL for k in members}
    mm = {k: cast(float, mm_kcal[k]) * KCAL_IN_KJ for k in members}
    rows = [_pair_row(a, b, groups, molecules, qm, mm, spec) for a, b in spec.compared]
    compared = [r for r in rows if r["comparable"]]
    ref, calc = np.array([r["qm_kj"] for r in compared]), np.array([r["mm_kj"] for r in compared])
    return {
        "temperature": spec.temperature,
        "qm_energy": sorted({qm_energy_label(molecules[k]) for k in members}),
        "groups": {name: [molecules[k].title for k in ks] for name, ks in groups.items()},
        "pairs": rows,
        "n_compared": len(compared),
        "mue_kj": float(np.mean(np.abs(calc - ref))) if compared else float("nan"),
        "r2": stats.r_squared(ref, calc) if compared else float("nan"),
    }


def _pair_row(
    a: str,
    b: str,
    groups: dict[str, list[int]],
    molecules: Sequence[Any],
    qm: dict[int, float],
    mm: dict[int, float],
    spec: SelectivitySpec,
) -> dict[str, Any]:
    """One pair's row: the differences, or None where the structures' energies do not compare."""
    structures = [molecules[k] for k in groups[a] + groups[b]]
    reason = incomparable(structures)
    same_atoms = len({formula(m.elements) for m in structures}) == 1
    d_qm = _group(qm, groups[b], spec) - _group(qm, groups[a], spec) if same_atoms else None
    d_mm = _group(mm, groups[b], spec) - _group(mm, groups[a], spec) if reason is None else None
    error = None if d_mm is None or d_qm is None else d_mm - d_qm
    return {
        "a": a,
        "b": b,
        "qm_kj": d_qm,
        "mm_kj": d_mm,
        "error_kj": error,
        "comparable": reason is None,
        "note": reason or "",
    }


def _group(energies: dict[int, float], members: Sequence[int], spec: SelectivitySpec) -> float:
    return boltzmann_energy([energies[k] for k in members], spec.temperature)
