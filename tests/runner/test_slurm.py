"""Sweeps on a real single-node SLURM cluster (Debian's slurm-wlm, started by the fixture)
into a real ``mlflow server`` on 127.0.0.1: ``python -m q2mm.run -m hydra/launcher=slurm ...``.

Skips with the reason where SLURM is not installed or the tests do not run as root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from q2mm.paths import PROJECT_ROOT

from .conftest import artifact_names, experiment_runs
from .test_cli import children_of, failure_report, run_cli
from .test_resume import _checkpoint_iteration
from .test_server import server_uri  # noqa: F401  (fixture)
from .test_tracking import check_finished_run

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def slurm_sweep(partition: str, server: str, experiment: str) -> list[str]:
    """The README's SLURM command (small jobs: one CPU, 1 GB) for this cluster and server."""
    return [
        "-m",
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={partition}",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        f"tracking.uri={server}",
        f"tracking.experiment={experiment}",
    ]


def test_two_job_sweep_on_slurm(tmp_path, slurm_cluster, server_uri, experiment):  # noqa: F811
    start = time.perf_counter()
    done = run_cli(
        [
            *slurm_sweep(slurm_cluster.partition, server_uri, experiment),
            "optimizer.maxiter=5",
            "optimizer.bounds.fc_fraction=0.1,0.2",
        ],
        tmp_path,
        timeout=900,
    )
    wall = time.perf_counter() - start
    assert done.returncode == 0, failure_report(done, server_uri, experiment)
    runs = experiment_runs(server_uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = children_of(runs, parent.info.run_id)
    assert parent.info.status == "FINISHED" and len(runs) == 3 and len(children) == 2
    assert parent.data.metrics["n_jobs"] == 2 and parent.data.metrics["n_failed"] == 0
    client = MlflowClient(server_uri)
    for child in children:
        check_finished_run(client, child)
        assert child.data.tags["slurm_job_id"].split("_")[1] == child.data.tags["hydra_job_num"]
        names = artifact_names(client, child.info.run_id)
        assert {"hydra/config.yaml", "hydra/overrides.yaml"} <= names and any(
            n.endswith("-optimized.fld") for n in names
        )
    assert sorted(c.data.params["optimizer.bounds.fc_fraction"] for c in children) == ["0.1", "0.2"]
    print(f"2-job SLURM sweep: {wall:.1f} s wall (python -m q2mm.run -m ... as a subprocess)")


def _job_id(sweep_root: Path, num: int, timeout: float = 300) -> tuple[Path, str]:
    """The sweep directory and the SLURM id (ARRAY_TASK) of job ``num``, once submitted."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = sorted(sweep_root.glob(f"multirun/*/*/.submitit/*_{num}"))
        if found:
            return found[0].parents[1], found[0].name
        time.sleep(0.2)
    raise AssertionError(f"job {num} was not submitted within {timeout} s")


def _signal_at_checkpoints(
    cluster, plan: dict[str, tuple[Path, int, str]], proc: subprocess.Popen, timeout: float = 600
) -> dict[str, int]:
    """Send each job its signal as soon as its checkpoint reaches the given iteration.

    ``plan`` maps a SLURM job id to (job directory, iteration, signal). Both jobs are watched in
    one loop, so neither can finish unseen while the other is awaited. Returns the iteration each
    checkpoint had when its job was signalled.
    """
    at: dict[str, int] = {}
    deadline = time.time() + timeout
    while len(at) < len(plan) and time.time() < deadline and proc.poll() is None:
        for job_id, (job_dir, iteration, signal) in plan.items():
            reached = _checkpoint_iteration(job_dir / "checkpoint.npz")
            if job_id not in at and reached >= iteration:
                cluster.run("scancel", f"--signal={signal}", job_id)
                at[job_id] = reached
        time.sleep(0.1)
    missing = {job: plan[job][:2] for job in plan if job not in at}
    assert not missing, f"no checkpoint at the iteration awaited: {missing} (sweep rc {proc.poll()})"
    return at


def test_preempted_job_requeues_and_resumes_cancelled_job_fails_the_sweep(
    tmp_path,
    slurm_cluster,
    server_uri,  # noqa: F811
    experiment,
):
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), Q2MM_DATA=str(tmp_path))
    command = [
        sys.executable,
        "-m",
        "q2mm.run",
        *slurm_sweep(slurm_cluster.partition, server_uri, experiment),
        "optimizer.maxiter=25",
        "tracking.plots=false",
        "optimizer.bounds.fc_fraction=0.1,0.2",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        sweep_dir, preempted = _job_id(tmp_path, 0)
        _, cancelled = _job_id(tmp_path, 1)
        # USR2 is what SLURM sends before a time limit or a preemption; STOP freezes job 1 part way
        # (a fast machine would otherwise finish it before the scancel), and scancel then sends
        # it SIGCONT + SIGTERM as it does to any running job.
        at = _signal_at_checkpoints(
            slurm_cluster, {preempted: (sweep_dir / "0", 3, "USR2"), cancelled: (sweep_dir / "1", 1, "STOP")}, proc
        )[preempted]
        slurm_cluster.run("scancel", cancelled)
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    wall = time.perf_counter() - start
    assert proc.returncode != 0, out[-4000:]

    runs = experiment_runs(server_uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = {r.data.tags["hydra_job_num"]: r for r in children_of(runs, parent.info.run_id)}
    assert parent.info.status == "FAILED" and len(runs) == 3, out[-4000:]
    resumed, killed = children["0"], children["1"]
    client = MlflowClient(server_uri)
    assert resumed.info.status == "FINISHED", resumed.data.tags.get("error")
    assert int(resumed.data.tags["resumed_at_iteration"]) >= at
    steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "score")]
    assert steps == list(range(len(steps)))
    assert killed.info.status in ("KILLED", "FAILED")
    assert (
        killed.data.tags["slurm_state"] == "CANCELLED"
        and f"SLURM job {cancelled} ended CANCELLED" in killed.data.tags["error"]
    )
    print(
        f"preempt+cancel SLURM sweep: {wall:.1f} s wall; job 0 resumed at iteration "
        f"{resumed.data.tags['resumed_at_iteration']}, job 1 {killed.info.status}: {killed.data.tags['error'][:120]}"
    )
