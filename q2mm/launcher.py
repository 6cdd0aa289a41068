"""``hydra/launcher=slurm``: Hydra's submitit SLURM launcher, made to end when a job dies.

submitit learns that a job is over from ``sacct``; without SLURM accounting ``sacct`` fails and
a job that died without writing its result (``scancel``, a time limit, out of memory, a lost
node) is waited for forever. This launcher submits the sweep as the stock one does (one array,
one task per job, ``checkpoint`` requeues on time-out or preemption) but waits itself: a job is
done when its result file exists, or when ``squeue`` (works with or without accounting) shows
it in a final state or no longer knows it. A job that ended without a result is recorded as a
KILLED (cancelled) or FAILED child of the sweep's MLflow parent with the reason, so the sweep
callback closes the parent as FAILED and ``python -m q2mm.run -m`` exits non-zero.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

# squeue states after which a job will not write its result (a requeued job shows PENDING again)
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)
POLL_S = 2.0
GRACE_S = 15.0  # a final state must persist this long (result files on shared disks, requeues)


def expose_plugin() -> None:
    """Put this checkout's ``hydra_plugins/`` on the namespace path Hydra scans for launchers.

    A wheel installs it beside Hydra's own plugins; an editable install only maps the module,
    which Hydra's plugin scan does not see from outside the checkout.
    """
    import hydra_plugins

    local = Path(__file__).resolve().parent.parent / "hydra_plugins"
    if (local / "q2mm_launcher").is_dir() and str(local) not in list(hydra_plugins.__path__):
        hydra_plugins.__path__.append(str(local))


def squeue_states() -> dict[str, str] | None:
    """job id (``ARRAY_TASK`` for array tasks) -> state, for this user's jobs; None if squeue fails."""
    try:
        out = subprocess.run(
            ["squeue", "--me", "--array", "--states=all", "--noheader", "--format=%i|%T"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("squeue failed (%s); retrying", error)
        return None
    return dict(line.strip().split("|", 1) for line in out.splitlines() if "|" in line)


class SlurmLauncher(SubmititSlurmLauncher):
    """The submitit SLURM launcher that returns once every job has returned or is known lost."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and job_overrides
        executor = self._executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
        numbers = [initial_job_idx + i for i in range(len(job_overrides))]
        for num, overrides in zip(numbers, job_overrides):
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        state = Singleton.get_state()
        jobs = executor.map_array(
            self,
            [list(o) for o in job_overrides],
            ["hydra.sweep.dir"] * len(numbers),
            numbers,
            [f"job_id_for_{n}" for n in numbers],
            [state] * len(numbers),
        )
        return [self._wait(job, num, overrides, sweep_dir) for job, num, overrides in zip(jobs, numbers, job_overrides)]

    def _executor(self) -> Any:
        """A submitit AutoExecutor with this launcher's parameters (generic ones as they are,
        SLURM-specific ones prefixed ``slurm_``)."""
        import submitit

        params = dict(self.params)
        folder = params.pop("submitit_folder")
        init = {"slurm_max_num_timeout": params.pop("max_num_timeout")} if "max_num_timeout" in params else {}
        executor = submitit.AutoExecutor(cluster="slurm", folder=folder, **init)
        generic = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
        return executor

    def _wait(self, job: Any, num: int, overrides: Sequence[str], sweep_dir: Path) -> JobReturn:
        """The job's JobReturn; for a job that ended without a result, one that records it lost."""
        final_since: float | None = None
        while True:
            if job.paths.result_pickle.exists():
                try:
                    return job.results()[0]
                except Exception as error:  # the job wrote an error instead of a result
                    return self._lost(job, num, overrides, sweep_dir, "FAILED", f"{type(error).__name__}: {error}")
            states = squeue_states()
            if states is not None:
                state = states.get(job.job_id)
                if state is None or state in FINAL_STATES:
                    final_since = final_since or time.monotonic()
                    if time.monotonic() - final_since > GRACE_S and not job.paths.result_pickle.exists():
                        reason = f"ended {state}" if state else "is no longer known to squeue"
                        return self._lost(
                            job,
                            num,
                            overrides,
                            sweep_dir,
                            state or "UNKNOWN",
                            f"SLURM job {job.job_id} {reason} without a result",
                        )
                else:
                    final_since = None
            time.sleep(POLL_S)

    def _lost(
        self, job: Any, num: int, overrides: Sequence[str], sweep_dir: Path, state: str, reason: str
    ) -> JobReturn:
        from q2mm.tracking.callback import SweepHandoff  # imported here: Hydra imports this module at every start

        log.error("job #%d (SLURM %s): %s", num, job.job_id, reason)
        handoff = SweepHandoff.read(sweep_dir.resolve())
        if handoff is not None:
            record_lost_job(handoff, num, job.job_id, state, reason, _tail(job.paths.stderr))
        # the failure is in MLflow; the sweep goes on and the sweep callback reports it
        return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def record_lost_job(
    handoff: Any, job_num: int, slurm_job_id: str, state: str, reason: str, stderr_tail: str = ""
) -> str:
    """Close (or create) job ``job_num``'s child run as KILLED (cancelled) or FAILED with ``reason``.

    A job killed by SIGTERM has already closed its own run as KILLED with the error it saw;
    that run only gains the SLURM state and reason. Returns the run id.
    """
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = MlflowClient(handoff.tracking_uri)
    runs = client.search_runs(
        [handoff.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{handoff.parent_run_id}' and tags.hydra_job_num = '{job_num}'",
    )
    status = "KILLED" if state == "CANCELLED" else "FAILED"
    tags = {"slurm_state": state, "slurm_job_id": slurm_job_id, "lost_reason": reason}
    if runs:
        run_id = runs[0].info.run_id
        open_run = runs[0].info.status in ("RUNNING", "SCHEDULED")
        seen = runs[0].data.tags.get("error")
        tags["error"] = f"{reason}; the job reported: {seen}" if seen else reason
    else:  # died before it could open its run (cancelled while starting, node failure)
        run_id = client.create_run(
            handoff.experiment_id,
            run_name=f"job {job_num} (lost)",
            tags={MLFLOW_PARENT_RUN_ID: handoff.parent_run_id, "hydra_job_num": str(job_num)},
        ).info.run_id
        open_run, tags["error"] = True, reason
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    if stderr_tail:
        client.log_text(run_id, stderr_tail, "slurm_stderr_tail.txt")
    if open_run:
        client.set_terminated(run_id, status)
    return run_id
