"""One job's MLflow run: created with an explicit experiment (and parent), logged in batches,
ended FINISHED or FAILED with the error kept as a tag and an artifact.

The run starts when the job starts and its end time is the moment ``wall_time_s`` is
measured, so MLflow's duration column, the ``wall_time_s`` metric and the terminal's closing
line are one number."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

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
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def tracking_uri(self) -> str:
        return self.client.tracking_uri

    @classmethod
    def start(
        cls,
        client: MlflowClient,
        experiment_id: str,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        start_time_s: float | None = None,
    ) -> TrackedRun:
        """Create a RUNNING run in ``experiment_id``, a child of ``parent_run_id`` when given,
        started at ``start_time_s`` (epoch seconds; now when None)."""
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        start_ms = int((time.time() if start_time_s is None else start_time_s) * 1000)
        run = client.create_run(experiment_id, start_time=start_ms, run_name=run_name, tags=all_tags)
        return cls(client, run.info.run_id, experiment_id, start_ms)

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
        """Log ``metrics``; the first key in its own batch, before the others, so MLflow keeps it
        first (its compare page charts the first metric by default)."""
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self._log_metric_list(items[:1])
        self._log_metric_list(items[1:])

    def log_curve(self, key: str, values, steps=None) -> None:
        """A per-iteration curve as one metric with steps, written in batches (one sqlite write each)."""
        now = int(time.time() * 1000)
        steps = range(len(values)) if steps is None else steps
        self._log_metric_list([Metric(key, float(v), now, int(s)) for s, v in zip(steps, values)])

    def describe(self, markdown: str) -> None:
        """The run's description (MLflow shows the ``mlflow.note.content`` tag as Markdown)."""
        self.client.set_tag(self.run_id, "mlflow.note.content", markdown)

    def _log_metric_list(self, items: list[Metric]) -> None:
        for i in range(0, len(items), _BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=items[i : i + _BATCH_METRICS])

    def log_record(self, record: RunRecord) -> None:
        """Params, tags, final metrics, the score curve and the artifacts of ``record``."""
        self.log_metrics(record.metrics)
        self.log_params(record.params)
        self.set_tags(record.tags)
        if len(record.curve):
            self.log_curve("score", list(record.curve), record.curve_steps)
        for path, artifact_dir in record.artifacts:
            self.client.log_artifact(self.run_id, str(path), artifact_dir)
        for artifact_file, text in record.texts.items():
            self.client.log_text(self.run_id, text, artifact_file)
        if record.description:
            self.describe(record.description)

    def finish(self) -> float:
        """End the run FINISHED; log and return its wall time in seconds (start to end)."""
        end_ms = int(time.time() * 1000)
        wall = (end_ms - self.start_ms) / 1000.0
        self.client.log_metric(self.run_id, "wall_time_s", wall, end_ms)
        self.client.set_terminated(self.run_id, "FINISHED", end_time=end_ms)
        return wall

    def fail(self, error: BaseException, status: str = "FAILED") -> None:
        """End the run FAILED (or KILLED), keeping the error as a tag and the traceback as error.txt."""
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        message = f"{type(error).__name__}: {error}"
        try:
            self.client.set_tag(self.run_id, "error", message[:_ERROR_TAG_CHARS])
            self.client.log_text(self.run_id, text, "error.txt")
        finally:
            self.client.set_terminated(self.run_id, status)
