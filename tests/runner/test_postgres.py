"""Six parallel jobs into one shared store: ``python -m q2mm.tracking.server`` with a
PostgreSQL backend (Debian's postgresql, started here) and a shared artifact root; every run
lands once, in the right parent, with its curve and artifacts.

Six real fits of the default system (``python -m q2mm.run -m``, three iterations each) go
through the joblib launcher (two at a time, one per core) and through SLURM (the single-node
cluster runs as many as it has CPUs), each sweep into the same server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from q2mm.paths import PROJECT_ROOT
from tests.services.postgres import PostgresCluster, unavailable_reason

from .conftest import experiment_runs
from .test_cli import children_of, failure_report, run_cli
from .test_server import free_port, wait_until_healthy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
FRACTIONS = ("0.05", "0.1", "0.15", "0.2", "0.25", "0.3")
SIX_JOBS = ["optimizer.maxiter=3", "tracking.plots=false", f"optimizer.bounds.fc_fraction={','.join(FRACTIONS)}"]


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    """An mlflow server (python -m q2mm.tracking.server) on a fresh PostgreSQL database."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    state = os.environ.get("Q2MM_CI_STATE")
    database = PostgresCluster.start(pid_copy=Path(state) / "postgres.pid" if state else None)
    root = tmp_path_factory.mktemp("pg-server")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "q2mm.tracking.server",
            "--backend-store-uri",
            database.uri,
            "--artifacts-destination",
            str(root / "artifacts"),
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc)
        yield url, root / "artifacts"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        database.stop()


def check_six_landed(url: str, artifacts, experiment: str, done: subprocess.CompletedProcess) -> str:
    runs = experiment_runs(url, experiment)
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert len(parents) == 1, failure_report(done, url, experiment)
    children = children_of(runs, parents[0].info.run_id)
    assert len(runs) == 7 and len(children) == 6, failure_report(done, url, experiment)
    assert sorted(c.data.params["optimizer.bounds.fc_fraction"] for c in children) == sorted(FRACTIONS)
    client = MlflowClient(url)
    for child in children:
        assert child.info.status == "FINISHED", child.data.tags.get("error")
        curve = client.get_metric_history(child.info.run_id, "score")
        assert len(curve) == child.data.metrics["n_iterations"] + 1
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert any(n.endswith("-optimized.fld") for n in names)
        # the server wrote the artifact under the shared root
        assert list(artifacts.rglob(f"{child.info.run_id}/artifacts/*-optimized.fld"))
    assert parents[0].info.status == "FINISHED" and parents[0].data.metrics["n_jobs"] == 6
    return f"{len(children)}/6 runs landed in parent {parents[0].info.run_id}"


def test_six_joblib_jobs_into_postgres(tmp_path, postgres_server, experiment):
    url, artifacts = postgres_server
    start = time.perf_counter()
    done = run_cli(
        [
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",  # one job per core: six JAX processes on 2 cores only thrash
            f"tracking.uri={url}",
            f"tracking.experiment={experiment}",
            *SIX_JOBS,
        ],
        tmp_path,
        timeout=1200,
    )
    assert done.returncode == 0, failure_report(done, url, experiment)
    print(
        f"joblib x6 into PostgreSQL: {check_six_landed(url, artifacts, experiment, done)}, "
        f"{time.perf_counter() - start:.1f} s wall"
    )


@pytest.mark.slurm
def test_six_slurm_jobs_into_postgres(tmp_path, postgres_server, slurm_cluster, experiment):  # noqa: F811
    url, artifacts = postgres_server
    start = time.perf_counter()
    done = run_cli(
        [
            "-m",
            "hydra/launcher=slurm",
            f"hydra.launcher.partition={slurm_cluster.partition}",
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1",
            f"tracking.uri={url}",
            f"tracking.experiment={experiment}",
            *SIX_JOBS,
        ],
        tmp_path,
        timeout=1200,
    )
    assert done.returncode == 0, failure_report(done, url, experiment)
    print(
        f"SLURM x6 into PostgreSQL: {check_six_landed(url, artifacts, experiment, done)}, "
        f"{time.perf_counter() - start:.1f} s wall"
    )
