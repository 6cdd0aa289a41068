"""Score a force field on structures without fitting, and say where the score comes from.

The score is the reference objective's (``ObjectiveFunction``): every structure minimized
from its QM geometry, eigenmatrix at the QM geometry. It depends on the parameter values
only, so scoring ``ff`` here equals a fit's initial score when the fit starts from ``ff``.
Contributions split that score by structure and observation kind; ``worst`` lists the
single observations with the largest weighted squared residuals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from q2mm.reference.observations import StructureObservations

GEOMETRY_LABELS = {
    "bond_length": ("bond", "bonds"),
    "bond_angle": ("angle", "angles"),
    "torsion": ("torsion", "torsions"),
}


@dataclass(frozen=True)
class Scored:
    """One reference evaluation of a force field on some structures, with what it scored."""

    evaluation: Any  # q2mm.objective.objective.Evaluation
    titles: tuple[str, ...]
    observations: tuple[StructureObservations, ...]

    @property
    def score(self) -> float:
        return float(self.evaluation.score)

    def stats(self) -> dict[str, dict[str, float]]:
        """kind -> {'r2', 'rmsd'} over the scored entries."""
        return {kind: {"r2": float(res.r2), "rmsd": float(res.rmsd)} for kind, res in self.evaluation.by_kind.items()}

    def energies_kcal(self) -> list[float | None]:
        """MM3* energy (kcal/mol) of each structure's minimum (None where not minimized)."""
        energies = list(getattr(self.evaluation, "energies", []) or [])
        return energies if len(energies) == len(self.titles) else [None] * len(self.titles)


def score_forcefield(molecules: Sequence[Any], forcefield: Any, settings: Any) -> Scored:
    """The reference evaluation of ``forcefield`` (every value as in the file) on ``molecules``."""
    from q2mm.mm3.engine import MM3Model
    from q2mm.objective.objective import ObjectiveFunction

    molecules = list(molecules)
    model = MM3Model.build(molecules, forcefield)
    objective = ObjectiveFunction(model, molecules, settings)
    return scored(objective, objective(np.asarray(model.p0, float)))


def scored(objective: Any, evaluation: Any) -> Scored:
    """A Scored from an ObjectiveFunction and one of its evaluations."""
    return Scored(evaluation, tuple(m.title for m in objective.molecules), tuple(objective.observations))


def entry_scores(result: Any) -> np.ndarray:
    """(w (ref - calc))^2 per entry of one kind (periodic calc is stored unwrapped next to ref)."""
    return (np.asarray(result.weight, float) * (np.asarray(result.ref, float) - np.asarray(result.calc, float))) ** 2


def contributions(scored_: Scored) -> dict[str, Any]:
    """The score split by kind and by structure (1-based index, title, score, score per kind)."""
    by_kind = {kind: float(np.sum(entry_scores(res))) for kind, res in scored_.evaluation.by_kind.items()}
    rows = []
    for s, title in enumerate(scored_.titles):
        parts = {
            kind: float(np.sum(entry_scores(res)[np.asarray(res.structure) == s]))
            for kind, res in scored_.evaluation.by_kind.items()
        }
        rows.append({"index": s + 1, "title": title, "score": float(sum(parts.values())), "by_kind": parts})
    return {"score": scored_.score, "by_kind": by_kind, "by_structure": rows}


def worst(scored_: Scored, n: int = 25) -> list[dict[str, Any]]:
    """The ``n`` observations with the largest contributions: kind, structure, what, ref, calc, score."""
    rows = []
    for kind, res in scored_.evaluation.by_kind.items():
        scores, structure = entry_scores(res), np.asarray(res.structure)
        for s in np.unique(structure):
            positions = np.flatnonzero(structure == s)
            for j, k in enumerate(positions):
                if res.weight[k] == 0:
                    continue
                rows.append(
                    {
                        "kind": kind,
                        "index": int(s) + 1,
                        "title": scored_.titles[s],
                        "what": _label(kind, scored_.observations[s], j),
                        "ref": float(res.ref[k]),
                        "calc": float(res.calc[k]),
                        "score": float(scores[k]),
                    }
                )
    rows.sort(key=lambda row: -row["score"])
    return rows[:n]


def _label(kind: str, obs: StructureObservations, j: int) -> str:
    """What entry j of ``kind`` in one structure measures, with 1-based atoms or modes."""
    if kind in GEOMETRY_LABELS:
        name, attribute = GEOMETRY_LABELS[kind]
        atoms = getattr(obs.internal, attribute)
        if j < len(atoms):
            return f"{name} " + "-".join(str(int(a) + 1) for a in atoms[j])
    if kind == "eig_diag":
        return f"eigenmatrix diagonal {j + 1}"
    return f"{kind} {j + 1}"


def stats_table(before: Scored, after: Scored) -> dict[str, dict[str, float | None]]:
    """kind -> {initial, final, rmsd_initial, rmsd_final} like a fit summary's ``r2`` table."""
    first, second = before.stats(), after.stats()
    return {
        kind: {
            "initial": first.get(kind, {}).get("r2"),
            "final": second.get(kind, {}).get("r2"),
            "rmsd_initial": first.get(kind, {}).get("rmsd"),
            "rmsd_final": second.get(kind, {}).get("rmsd"),
        }
        for kind in sorted(set(first) | set(second))
    }
