"""Continuing a killed fit: find its run directory and checkpoint, reopen its MLflow run.

``resume=<run dir>`` or ``resume=<MLflow run id>`` (its ``output_dir`` tag names the run
directory) continues that fit; a multirun job whose own directory already holds a checkpoint
is a requeued attempt of the same job (SLURM time-out or preemption) and continues by itself.
The resumed fit writes its outputs into the original run directory and logs into the same
MLflow run: status RUNNING again, then FINISHED, the score curve continuing its steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from q2mm.errors import CheckpointError, OutputExistsError
from q2mm.optimize.checkpoint import CHECKPOINT_FILE, CheckpointState, load_checkpoint
from q2mm.optimize.result import EVALUATION_SUFFIX, FLD_SUFFIX, SUMMARY_SUFFIX
from q2mm.tracking.record import flatten_config
from q2mm.tracking.store import resolve_uri
from q2mm.tracking.tracker import TrackedRun

log = logging.getLogger(__name__)
# Keys that may differ between the killed run and the command that resumes it.
VOLATILE_KEYS = ("resume", "progress")


@dataclass(frozen=True)
class ResumePoint:
    """A killed fit to continue: its run directory and loaded checkpoint."""

    run_dir: Path
    state: CheckpointState

    @property
    def run_id(self) -> str | None:
        return self.state.extra.get("mlflow_run_id")

    @property
    def tracking_uri(self) -> str | None:
        return self.state.extra.get("tracking_uri")


def find_resume(cfg: DictConfig, output_dir: Path, multirun: bool) -> ResumePoint | None:
    """The fit this job continues, or None for a fresh fit."""
    if cfg.resume:
        run_dir = _run_dir(str(cfg.resume), cfg)
    elif multirun and (output_dir / CHECKPOINT_FILE).is_file():
        run_dir = output_dir  # a requeued attempt of this very job
        log.warning("resuming the fit checkpointed in %s (requeued job)", run_dir)
    else:
        return None
    state = load_checkpoint(run_dir)
    finished = sorted(run_dir.glob("*" + SUMMARY_SUFFIX))
    if finished:
        raise CheckpointError(f"{run_dir}: this fit already finished ({finished[0].name}); nothing to resume")
    _check_same_config(cfg, run_dir)
    return ResumePoint(run_dir.resolve(), state)


# what a run leaves in its directory: a fresh run refuses to start where one of these is
RUN_OUTPUTS = (CHECKPOINT_FILE, "*" + FLD_SUFFIX, "*" + SUMMARY_SUFFIX, "*" + EVALUATION_SUFFIX)


def earlier_run_outputs(output_dir: Path) -> list[str]:
    """The names of an earlier run's outputs (``RUN_OUTPUTS``) in ``output_dir``, sorted."""
    return sorted({path.name for pattern in RUN_OUTPUTS for path in Path(output_dir).glob(pattern)})


def refuse_earlier_run(output_dir: Path) -> None:
    """OutputExistsError, before any work, when ``output_dir`` holds an earlier run's outputs
    (a run never writes over them; an unfinished fit there continues with ``resume=``)."""
    found = earlier_run_outputs(output_dir)
    if found:
        raise OutputExistsError(
            f"{output_dir} holds an earlier run ({', '.join(found)}): a run never writes over it; "
            f"give another hydra.run.dir, or resume={output_dir} to continue an unfinished fit"
        )


def _run_dir(target: str, cfg: DictConfig) -> Path:
    path = Path(target).expanduser()
    if path.is_dir():
        return path
    uri = resolve_uri(cfg.tracking.uri)
    try:
        run = MlflowClient(uri).get_run(target)
    except MlflowException as error:
        raise CheckpointError(
            f"resume={target}: neither a run directory nor an MLflow run id in {uri} ({error.message.splitlines()[0]})"
        ) from error
    output_dir = run.data.tags.get("output_dir")
    if not output_dir:
        raise CheckpointError(f"resume={target}: MLflow run has no output_dir tag naming its run directory")
    return Path(output_dir)


def _check_same_config(cfg: DictConfig, run_dir: Path) -> None:
    """CheckpointError listing the keys where ``cfg`` differs from the run's own config."""
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        return  # not a Hydra run directory: the checkpoint's identity check still guards the fit
    saved_cfg = OmegaConf.load(saved)
    assert isinstance(saved_cfg, DictConfig)  # Hydra saves a job's config as a mapping
    old = {k: v for k, v in flatten_config(saved_cfg).items() if k.split(".")[0] not in VOLATILE_KEYS}
    new = {k: v for k, v in flatten_config(cfg).items() if k.split(".")[0] not in VOLATILE_KEYS}
    differ = [f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if differ:
        overrides = run_dir / ".hydra" / "overrides.yaml"
        original = " ".join(map(str, OmegaConf.load(overrides))) if overrides.is_file() else "?"
        raise CheckpointError(
            f"{saved}: resume with the original run's config; differs in {'; '.join(differ)} "
            f"(the original overrides: {original or '(none)'})"
        )


def reopen_run(point: ResumePoint) -> TrackedRun | None:
    """The killed fit's MLflow run, RUNNING again; None when the fit was not tracked."""
    if point.run_id is None or point.tracking_uri is None:
        return None
    client = MlflowClient(point.tracking_uri)
    run = client.get_run(point.run_id)
    if "error" in run.data.tags:
        client.delete_tag(point.run_id, "error")
    client.update_run(point.run_id, status="RUNNING")
    client.set_tag(point.run_id, "resumed_at_iteration", str(point.state.iteration))
    return TrackedRun(client, point.run_id, run.info.experiment_id, run.info.start_time)  # wall time = run's duration


def logged_params(tracked: TrackedRun) -> dict[str, Any]:
    """Params already on the run (MLflow refuses to change one)."""
    return dict(tracked.client.get_run(tracked.run_id).data.params)
