"""Cross-validation aggregates on a sweep's parent run.

Each fold is a child run that logged ``holdout_*`` metrics (q2mm.tracking.record.assessment_metrics).
The parent gets, for every such metric, the mean and the sample standard deviation over the
folds (``cv_<metric>_mean``, ``cv_<metric>_std``; std 0 for one fold), ``cv_n_folds``, the
table ``cross_validation/folds.csv`` (one row per fold) and each fold's held-out table
``cross_validation/fold_<k>.csv``.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Run
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
PREFIX = "holdout_"


def fold_runs(runs: Sequence[Run]) -> list[Run]:
    """The finished runs that scored held-out structures, ordered by fold (then name)."""
    folds = [r for r in runs if r.info.status == "FINISHED" and f"{PREFIX}score_final" in r.data.metrics]
    return sorted(folds, key=lambda r: (_fold(r), r.info.run_name or ""))


def _fold(run: Run) -> int:
    value = run.data.params.get("validation.fold", "None")
    return int(value) if value.lstrip("-").isdigit() else -1


def aggregates(runs: Sequence[Run]) -> dict[str, float]:
    """cv_<holdout metric>_mean/_std over the folds (metrics present in every fold only)."""
    keys = set.intersection(*(set(k for k in r.data.metrics if k.startswith(PREFIX)) for r in runs)) if runs else set()
    out: dict[str, float] = {"cv_n_folds": float(len(runs))}
    for key in sorted(keys):
        values = np.array([r.data.metrics[key] for r in runs], float)
        out[f"cv_{key}_mean"] = float(values.mean())
        out[f"cv_{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return out


def log_cross_validation(client: MlflowClient, parent_run_id: str, children: Sequence[Run]) -> dict[str, float]:
    """Log the aggregates and the fold tables on the parent; returns the aggregates ({} without folds)."""
    runs = fold_runs(children)
    if not runs:
        return {}
    values = aggregates(runs)
    client.log_batch(parent_run_id, metrics=[Metric(k, v, 0, 0) for k, v in values.items()])
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "folds.csv"
        _write_folds(table, runs)
        client.log_artifact(parent_run_id, str(table), "cross_validation")
        for run in runs:
            try:
                local = client.download_artifacts(run.info.run_id, "tables/holdout.csv", tmp)
            except Exception as error:  # a fold without its table still counts in the aggregates
                log.warning("fold %s: no held-out table (%s)", run.info.run_name, error)
                continue
            target = Path(tmp) / f"fold_{_fold(run)}.csv"
            Path(local).rename(target)
            client.log_artifact(parent_run_id, str(target), "cross_validation")
    return values


def _write_folds(path: Path, runs: Sequence[Run]) -> None:
    keys = sorted(set.union(*(set(k for k in r.data.metrics if k.startswith(PREFIX)) for r in runs)))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fold", "run_id", "run_name", "score_final", *keys])
        for run in runs:
            metrics = run.data.metrics
            writer.writerow(
                [
                    _fold(run),
                    run.info.run_id,
                    run.info.run_name,
                    metrics.get("score_final", ""),
                    *[metrics.get(k, "") for k in keys],
                ]
            )
