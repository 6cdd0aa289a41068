"""One job's MLflow run: created with an explicit experiment (and parent), logged in batches,
ended FINISHED or FAILED with the error kept as a tag and an artifact."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from q2mm.tracking.record import RunRecord

_BATCH_METRICS = 1000
_BATCH_PARAMS = 100
_ERROR_TAG_CHARS = 4000


@dataclass
class TrackedRun:
    """An open MLflow run of one job."""

    client: MlflowClient
    run_id: str
    experiment_id: str

    @classmethod
    def start(
        cls,
        client: MlflowClient,
        experiment_id: str,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> "TrackedRun":
        """Create a RUNNING run in ``experiment_id``, a child of ``parent_run_id`` when given."""
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        return cls(client, run.info.run_id, experiment_id)

    def log_params(self, params: dict[str, str]) -> None:
        """Log params in batches of at most 100 (MLflow's limit)."""
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), _BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH_PARAMS])

    def set_tags(self, tags: dict[str, str]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        for i in range(0, len(items), _BATCH_PARAMS):
            self.client.log_batch(self.run_id, tags=items[i : i + _BATCH_PARAMS])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self._log_metric_list([Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_curve(self, key: str, values, steps=None) -> None:
        """A per-iteration curve as one metric with steps, written in batches (one sqlite write each)."""
        now = int(time.time() * 1000)
        steps = range(len(values)) if steps is None else steps
        self._log_metric_list([Metric(key, float(v), now, int(s)) for s, v in zip(steps, values)])

    def _log_metric_list(self, items: list[Metric]) -> None:
        for i in range(0, len(items), _BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=items[i : i + _BATCH_METRICS])

    def log_record(self, record: RunRecord) -> None:
        """Params, tags, final metrics, the score curve and the artifacts of ``record``."""
        self.log_params(record.params)
        self.set_tags(record.tags)
        self.log_metrics(record.metrics)
        if len(record.curve):
            self.log_curve("score", list(record.curve), record.curve_steps)
        for path, artifact_dir in record.artifacts:
            self.client.log_artifact(self.run_id, str(path), artifact_dir)

    def finish(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, error: BaseException, status: str = "FAILED") -> None:
        """End the run FAILED (or KILLED), keeping the error as a tag and the traceback as error.txt."""
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        message = f"{type(error).__name__}: {error}"
        try:
            self.client.set_tag(self.run_id, "error", message[:_ERROR_TAG_CHARS])
            self.client.log_text(self.run_id, text, "error.txt")
        finally:
            self.client.set_terminated(self.run_id, status)
