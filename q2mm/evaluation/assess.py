"""What a fit or an evaluation reports beyond its score: contributions, held-out structures,
selectivity; and the tables written beside the summary.

Summary keys added here (all optional): ``contributions`` {initial, final} (see
:func:`q2mm.evaluation.scoring.contributions`), ``worst`` (the final force field's largest
single contributions), ``holdout`` (held-out structures scored with the start and the fitted
force field), ``selectivity`` {initial, final} (:func:`selectivity_table`).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.evaluation.scoring import Scored, contributions, score_forcefield, scored, stats_table, worst
from q2mm.evaluation.select import fold_holdout, n_folds, resolve_structures
from q2mm.evaluation.selectivity import selectivity_table
from q2mm.optimize.result import OutputExistsError


@dataclass(frozen=True)
class Split:
    """A training set cut into the structures fitted and those held out (0-based indices)."""

    full: Any  # TrainingSet
    training: Any  # TrainingSet of the fitted structures
    held: Any | None  # TrainingSet of the held-out structures, None when nothing is held out
    held_indices: tuple[int, ...] = ()
    fold: int | None = None
    folds: int | None = None

    @property
    def training_indices(self) -> tuple[int, ...]:
        return tuple(k for k in range(len(self.full.molecules)) if k not in self.held_indices)


def split_training_set(
    training_set: Any, holdout: Sequence[str], folds: int | None = None, fold: int | None = None
) -> Split:
    """Hold out ``holdout`` (titles or 1-based indices), or cross-validation fold ``fold`` of ``folds``."""
    molecules = training_set.molecules
    if fold is not None:
        k = n_folds(len(molecules), folds)
        held = fold_holdout(len(molecules), k, fold)
    else:
        k, held = None, resolve_structures(holdout, [m.title for m in molecules], "validation.holdout")
    if not held:
        return Split(training_set, training_set, None)
    if len(held) == len(molecules):
        raise ConfigurationError("validation: every structure is held out; nothing is left to fit")
    keep = [m for i, m in enumerate(molecules) if i not in held]
    part = [molecules[i] for i in sorted(held)]
    return Split(
        training_set,
        dataclasses.replace(training_set, molecules=tuple(keep)),
        dataclasses.replace(training_set, molecules=tuple(part)),
        tuple(sorted(held)),
        fold,
        k,
    )


def holdout_report(split: Split, start_ff: Any, final_ff: Any) -> tuple[dict[str, Any], Scored, Scored]:
    """Score the held-out structures with the start and the fitted force field (as written)."""
    held = split.held
    assert held is not None  # a split with held-out structures
    before = score_forcefield(held.molecules, start_ff, held.settings)
    after = before if final_ff is start_ff else score_forcefield(held.molecules, final_ff, held.settings)
    report = {
        "structures": [{"index": i + 1, "title": split.full.molecules[i].title} for i in split.held_indices],
        "fold": split.fold,
        "folds": split.folds,
        "score_initial": before.score,
        "score_final": after.score,
        "r2": stats_table(before, after),
        "contributions": {
            "initial": _renumbered(contributions(before), split.held_indices),
            "final": _renumbered(contributions(after), split.held_indices),
        },
        "messages": [str(m) for m in getattr(after.evaluation, "messages", [])],
    }
    return report, before, after


def _renumbered(table: dict[str, Any], indices: Sequence[int]) -> dict[str, Any]:
    """Contributions of a subset with each structure's index in the full training set."""
    rows = [row | {"index": indices[row["index"] - 1] + 1} for row in table["by_structure"]]
    return table | {"by_structure": rows}


def forcefield_at(problem: Any, values: Any) -> Any:
    """The problem's force field with its active parameters at ``values`` (spliced as the .fld
    writer does), or the input force field itself where the values are the file's."""
    if np.array_equal(np.asarray(values, float), np.asarray(problem.file_values, float)):
        return problem.forcefield
    return problem.forcefield.with_values({ref: float(v) for ref, v in zip(problem.refs, values)})


def fit_assessment(
    split: Split, objective: Any, initial: Any, final: Any, start_ff: Any, final_ff: Any, selectivity: Any | None
) -> dict[str, Any]:
    """Contributions, worst observations, held-out scores and selectivity of a fit (or an evaluation,
    where initial is final and start_ff is final_ff)."""
    first, last = scored(objective, initial), scored(objective, final)
    out: dict[str, Any] = {
        "contributions": {
            "initial": _renumbered(contributions(first), split.training_indices),
            "final": _renumbered(contributions(last), split.training_indices),
        },
        "worst": [row | {"index": split.training_indices[row["index"] - 1] + 1} for row in worst(last)],
    }
    held_before = held_after = None
    if split.held is not None:
        out["holdout"], held_before, held_after = holdout_report(split, start_ff, final_ff)
    if selectivity is not None and selectivity.groups:
        out["selectivity"] = {
            "initial": selectivity_table(selectivity, split.full.molecules, _energies(split, first, held_before)),
            "final": selectivity_table(selectivity, split.full.molecules, _energies(split, last, held_after)),
        }
    return out


def _energies(split: Split, training: Scored, held: Scored | None) -> list[float | None]:
    """MM3* minimum energies (kcal/mol) in the full training set's order."""
    energies: list[float | None] = [None] * len(split.full.molecules)
    for k, e in zip(split.training_indices, training.energies_kcal()):
        energies[k] = e
    if held is not None:
        for k, e in zip(split.held_indices, held.energies_kcal()):
            energies[k] = e
    return energies


# ---------------------------------------------------------------- tables beside the summary


def write_tables(outdir: Path, summary: dict[str, Any]) -> list[Path]:
    """CSV tables of a summary's contributions, worst observations, held-out scores and selectivity."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    if "contributions" in summary:
        written.append(_contribution_csv(outdir / "contributions.csv", summary["contributions"]))
    if summary.get("worst"):
        written.append(_csv(outdir / "worst.csv", summary["worst"]))
    if "holdout" in summary:
        written.append(_contribution_csv(outdir / "holdout.csv", summary["holdout"]["contributions"]))
    if "selectivity" in summary:
        rows = [
            {"forcefield": when, **row, "temperature": table["temperature"]}
            for when, table in summary["selectivity"].items()
            for row in table["pairs"]
        ]
        written.append(_csv(outdir / "selectivity.csv", rows))
    return written


def _contribution_csv(path: Path, tables: dict[str, Any]) -> Path:
    rows = [
        {"forcefield": when, "index": row["index"], "title": row["title"], "score": row["score"], **row["by_kind"]}
        for when, table in tables.items()
        for row in table["by_structure"]
    ]
    return _csv(path, rows)


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.exists():
        raise OutputExistsError(f"{path} exists: a run never writes over an earlier output")
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "x", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path
