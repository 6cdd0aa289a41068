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
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from q2mm.errors import OutputExistsError, exit_with_message
from q2mm.tracking.crossval import log_cross_validation
from q2mm.tracking.naming import sweep_name, swept_overrides
from q2mm.tracking.provenance import git_state
from q2mm.tracking.resume import earlier_run_outputs
from q2mm.tracking.store import ensure_experiment, resolve_uri, runs_page_url, ui_command
from q2mm.tracking.table import format_table

log = logging.getLogger(__name__)
HANDOFF_FILE = "mlflow_parent.json"


@dataclass(frozen=True)
class SweepHandoff:
    """What a job needs to attach its run to the sweep."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    swept: tuple[str, ...] = ()  # the sweep's swept overrides, e.g. ("optimizer.bounds.fc_fraction=0.1,0.2",)

    def write(self, sweep_dir: Path) -> Path:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / HANDOFF_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, sweep_dir: Path) -> SweepHandoff | None:
        path = Path(sweep_dir) / HANDOFF_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(**{**data, "swept": tuple(data.get("swept", ()))})


JOB_TAG = "q2mm.job"  # a sweep child's job number
SWEPT_TAG = "q2mm.swept"  # a child's swept values ("fc_fraction=0.1"); on the parent, the swept overrides
SWEEP_HEADER = ["job", "overrides", "status", "score", "R2 min", "wall_s", "run id"]


def sweep_children(client: MlflowClient, handoff: SweepHandoff) -> list[Run]:
    """Every child run of the sweep's parent, by job number."""
    runs = client.search_runs(
        [handoff.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{handoff.parent_run_id}'",
        max_results=10000,
    )
    return sorted(runs, key=lambda r: (int(r.data.tags.get(JOB_TAG, 10**9)), r.info.start_time or 0))


def _metric(run: Run, key: str, fmt: str) -> str:
    value = run.data.metrics.get(key)
    return "-" if value is None else format(value, fmt)


def sweep_row(run: Run) -> list[str]:
    """job, overrides, status, final score, lowest final R2 over kinds, wall time, run id."""
    r2 = [v for k, v in run.data.metrics.items() if k.startswith("r2_") and k.endswith("_final")]
    return [
        run.data.tags.get(JOB_TAG, "?"),
        run.data.tags.get(SWEPT_TAG, run.info.run_name or ""),
        run.info.status,
        _metric(run, "score_final", ".4e"),
        f"{min(r2):.4f}" if r2 else "-",
        _metric(run, "wall_time_s", ".1f"),
        run.info.run_id,
    ]


def sweep_table(children: list[Run]) -> str:
    """The closing table of a sweep (one row per child run)."""
    return format_table([sweep_row(run) for run in children], SWEEP_HEADER)


def child_statuses(client: MlflowClient, handoff: SweepHandoff) -> dict[str, str]:
    """run name -> status of every child run of the sweep's parent."""
    return {run.info.run_name or run.info.run_id: run.info.status for run in sweep_children(client, handoff)}


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
        overrides = list(config.hydra.overrides.task)
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
        swept = swept_overrides(overrides, {str(k): str(v) for k, v in (params or {}).items()})
        name = sweep_name(config.tracking.experiment, swept, config.tracking.run_name)
        tags = {
            "sweep_dir": str(sweep_dir),
            "sweep": "true",
            SWEPT_TAG: " ".join(swept)[:5000],
            **git_state(),
            "mlflow.note.content": _sweep_description(name, swept, overrides, sweep_dir),
        }
        parent = client.create_run(experiment_id, run_name=name, tags=tags)
        if overrides:
            client.log_param(parent.info.run_id, "overrides", " ".join(overrides)[:6000])
        self.handoff = SweepHandoff(uri, experiment_id, parent.info.run_id, tuple(swept))
        self.handoff.write(sweep_dir)
        log.info("MLflow sweep run %s (%s) in experiment %s (%s)", parent.info.run_id, name, experiment_id, uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.handoff is None:
            return
        client = MlflowClient(self.handoff.tracking_uri)
        children = sweep_children(client, self.handoff)
        statuses = {run.info.run_name or run.info.run_id: run.info.status for run in children}
        failed = sorted(name for name, status in statuses.items() if status != "FINISHED")
        run_id = self.handoff.parent_run_id
        client.log_metric(run_id, "n_jobs", len(statuses))
        client.log_metric(run_id, "n_failed", len(failed))
        log_cross_validation(client, run_id, children)  # folds with held-out scores
        table = sweep_table(children)
        note = client.get_run(run_id).data.tags.get("mlflow.note.content", "")
        client.set_tag(run_id, "mlflow.note.content", note + "\n" + _markdown_table(children))
        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        MlflowSweepCallback.failed_jobs = failed
        url = runs_page_url(self.handoff.tracking_uri, self.handoff.experiment_id)
        serve = ui_command(self.handoff.tracking_uri)
        log.info(
            "sweep %s: %d jobs, %d failed\n%s\nruns: %s%s",
            run_id,
            len(statuses),
            len(failed),
            table,
            url,
            f"  (serve it: {serve})" if serve else "",
        )
        if failed:
            log.error(
                "%d of %d jobs failed (%s); their errors are in the child runs of MLflow run %s",
                len(failed),
                len(statuses),
                ", ".join(failed),
                run_id,
            )


def _sweep_description(name: str, swept: list[str], overrides: list[str], sweep_dir: Path) -> str:
    lines = [f"**{name}**: a sweep; each child run is one job."]
    if swept:
        lines.append("Swept: " + ", ".join(f"`{s}`" for s in swept) + ".")
    if overrides:
        lines.append("Command-line overrides: `" + " ".join(overrides)[:2000] + "`.")
    lines.append(f"Job directories: `{sweep_dir}`.")
    return "\n\n".join(lines) + "\n"


def _markdown_table(children: list[Run]) -> str:
    rows = ["| " + " | ".join(SWEEP_HEADER) + " |", "|" + "---|" * len(SWEEP_HEADER)]
    rows += ["| " + " | ".join(cell.replace("|", "/") for cell in sweep_row(run)) + " |" for run in children]
    return "\n".join(rows) + "\n"


class KeepEarlierRunCallback(Callback):
    """Keeps an earlier run's ``.hydra/`` (its config, which ``resume=`` compares against) when a
    fresh single run is pointed at its directory: Hydra writes a job's ``.hydra/`` before the job
    starts, and the job then refuses to run there (``resume.refuse_earlier_run``), so here,
    before Hydra writes anything, its config copy is switched off for that one refused job."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume"):
            return  # resuming writes into the same run on purpose
        try:
            run_dir = Path(str(config.hydra.run.dir))
        except Exception:  # a run dir that needs Hydra's runtime to resolve: nothing to keep yet
            return
        if earlier_run_outputs(run_dir):
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.output_subdir = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep into a directory where an earlier sweep's jobs left outputs is refused before
        anything is written (Hydra's multirun.yaml, the MLflow parent, any job's .hydra/)."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        found = sweep_dir.iterdir() if sweep_dir.is_dir() else ()
        jobs = sorted((d.name for d in found if d.is_dir() and earlier_run_outputs(d)), key=_natural)
        if jobs:
            shown = ", ".join(jobs[:8]) + (", ..." if len(jobs) > 8 else "")
            exit_with_message(
                OutputExistsError(
                    f"{sweep_dir} holds an earlier sweep (outputs in job directories {shown}): a sweep never "
                    "writes over another; give another hydra.sweep.dir"
                ),
                code=1,
            )


def _natural(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)
