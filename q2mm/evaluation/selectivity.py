"""Selectivity from the training set: QM vs MM3* energy differences of TS groups.

Each group holds the TSs (conformers) that lead to one stereochemical outcome. A group's
energy is the Boltzmann combination of its members, G = E_min - RT ln sum exp(-(E_i - E_min)/RT),
at the spec's temperature; a pair (a, b) reports G(b) - G(a) in kJ/mol, from the QM energies
the files hold (electronic SCF energies, no thermal corrections) and from the MM3* energies
of the minimized structures. Limits: the MM energies are those of the training geometries
minimized, not of a conformational search; electronic, not free, energies on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    """group -> 0-based structure indices; the groups of a pair must hold the same atoms."""
    titles = [m.title for m in molecules]
    groups = {
        name: resolve_structures(members, titles, f"selectivity group {name!r}")
        for name, members in spec.groups.items()
    }
    for a, b in spec.compared:
        formulas = {tuple(sorted(molecules[k].elements)) for k in groups[a] + groups[b]}
        if len(formulas) > 1:
            raise ConfigurationError(
                f"selectivity pair {a!r}/{b!r}: its structures do not hold the same atoms, "
                "so their energies cannot be compared"
            )
    return groups


def qm_energy_label(molecule: Any) -> str:
    """Which QM energy a structure carries (its loader's label, else from the file suffix)."""
    label = molecule.properties.get("energy_source") if molecule.properties else None
    return label or ENERGY_LABELS.get(Path(str(molecule.source)).suffix, f"energy read from {molecule.source}")


def selectivity_table(
    spec: SelectivitySpec, molecules: Sequence[Any], mm_kcal: Sequence[float | None]
) -> dict[str, Any]:
    """Per compared pair: QM and MM3* G(b) - G(a) (kJ/mol) and their error; MUE and R2 over pairs.

    ``mm_kcal`` is the MM3* energy (kcal/mol) of each structure's minimum.
    """
    groups = resolve_groups(spec, molecules)
    members = sorted({k for ks in groups.values() for k in ks})
    missing = [molecules[k].title for k in members if molecules[k].energy is None]
    if missing:
        raise ConfigurationError(f"selectivity needs QM energies; none read for {missing}")
    unminimized = [molecules[k].title for k in members if mm_kcal[k] is None]
    if unminimized:
        raise ConfigurationError(
            f"selectivity needs minimized MM3* structures (a geometry kind with a weight); none for {unminimized}"
        )
    qm = {k: molecules[k].energy * HARTREE_IN_KJ_PER_MOL for k in members}
    mm = {k: mm_kcal[k] * KCAL_IN_KJ for k in members}
    rows = []
    for a, b in spec.compared:
        d_qm = _group(qm, groups[b], spec) - _group(qm, groups[a], spec)
        d_mm = _group(mm, groups[b], spec) - _group(mm, groups[a], spec)
        rows.append({"a": a, "b": b, "qm_kj": d_qm, "mm_kj": d_mm, "error_kj": d_mm - d_qm})
    ref, calc = np.array([r["qm_kj"] for r in rows]), np.array([r["mm_kj"] for r in rows])
    return {
        "temperature": spec.temperature,
        "qm_energy": sorted({qm_energy_label(molecules[k]) for k in members}),
        "groups": {name: [molecules[k].title for k in ks] for name, ks in groups.items()},
        "pairs": rows,
        "mue_kj": float(np.mean(np.abs(calc - ref))) if rows else float("nan"),
        "r2": stats.r_squared(ref, calc),
    }


def _group(energies: dict[int, float], members: Sequence[int], spec: SelectivitySpec) -> float:
    return boltzmann_energy([energies[k] for k in members], spec.temperature)
