"""Hydra callback: one MLflow parent run per multirun, created once before any job starts.

Parallel jobs on a fresh sqlite store race in schema migration and in experiment creation,
so the store, the experiment and the sweep's parent run are made here, in the launching
process, and handed to the jobs through ``<sweep dir>/mlflow_parent.json``; each job then
creates its own run with that explicit experiment id and parent run id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig

from q2mm.tracking.crossval import log_cross_validation
from q2mm.tracking.provenance import git_state
from q2mm.tracking.store import ensure_experiment, resolve_uri

log = logging.getLogger(__name__)
HANDOFF_FILE = "mlflow_parent.json"


@dataclass(frozen=True)
class SweepHandoff:
    """What a job needs to attach its run to the sweep."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str

    def write(self, sweep_dir: Path) -> Path:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / HANDOFF_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, sweep_dir: Path) -> "SweepHandoff | None":
        path = Path(sweep_dir) / HANDOFF_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else None


def child_runs(client: MlflowClient, handoff: SweepHandoff) -> list:
    """Every child run of the sweep's parent."""
    return client.search_runs(
        [handoff.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{handoff.parent_run_id}'",
        max_results=10000,
    )


def child_statuses(client: MlflowClient, handoff: SweepHandoff) -> dict[str, str]:
    """run name -> status of every child run of the sweep's parent."""
    return {run.info.run_name or run.info.run_id: run.info.status for run in child_runs(client, handoff)}


class MlflowSweepCallback(Callback):
    """Creates the sweep's parent run on multirun start; closes it on multirun end.

    ``failed_jobs`` (class-level) keeps the names of the last sweep's failed runs so that
    ``python -m q2mm.run -m`` can exit non-zero (Hydra turns callback errors into warnings).
    """

    failed_jobs: list[str] = []

    def __init__(self) -> None:
        self.handoff: SweepHandoff | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.tracking.enabled:
            return
        uri = resolve_uri(config.tracking.uri)
        client = MlflowClient(uri)
        experiment_id = ensure_experiment(client, config.tracking.experiment, uri)
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        name = config.tracking.run_name or f"sweep {sweep_dir.name}"
        tags = {"sweep_dir": str(sweep_dir), "sweep": "true", **git_state()}
        parent = client.create_run(experiment_id, run_name=name, tags=tags)
        overrides = list(config.hydra.overrides.task)
        if overrides:
            client.log_param(parent.info.run_id, "overrides", " ".join(overrides)[:6000])
        self.handoff = SweepHandoff(uri, experiment_id, parent.info.run_id)
        self.handoff.write(sweep_dir)
        log.info("MLflow sweep run %s in experiment %s (%s)", parent.info.run_id, experiment_id, uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.handoff is None:
            return
        client = MlflowClient(self.handoff.tracking_uri)
        statuses = child_statuses(client, self.handoff)
        failed = sorted(name for name, status in statuses.items() if status != "FINISHED")
        run_id = self.handoff.parent_run_id
        client.log_metric(run_id, "n_jobs", len(statuses))
        client.log_metric(run_id, "n_failed", len(failed))
        log_cross_validation(client, run_id, child_runs(client, self.handoff))  # folds with held-out scores
        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        MlflowSweepCallback.failed_jobs = failed
        if failed:
            log.error(
                "%d of %d jobs failed (%s); their errors are in the child runs of MLflow run %s",
                len(failed), len(statuses), ", ".join(failed), run_id,
            )
