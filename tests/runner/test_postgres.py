"""Six parallel jobs into one shared store: ``python -m q2mm.tracking.server`` with a
PostgreSQL backend (Debian's postgresql, started here) and a shared artifact root; every run
lands once, in the right parent, with its curve and artifacts.

The store test runs six job processes at once, each a real ``run_job`` (MLflow life cycle,
record, artifacts) around the small linear fit. The same through the joblib and SLURM
launchers with real sn2 fits (six JAX processes at once) is marked ``heavy``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from q2mm.paths import PROJECT_ROOT
from tests.services.postgres import PostgresCluster, unavailable_reason
from tests.services.slurm import slurm_cluster  # noqa: F401  (fixture)

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
    database = PostgresCluster.start(pid_copy=None if not state else __import__("pathlib").Path(state) / "postgres.pid")
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


JOB = """
import sys
from pathlib import Path
from hydra import compose, initialize_config_dir
from q2mm.config import register_configs
from q2mm.paths import CONF_DIR
from q2mm.pipeline import JobContext, run_job
from tests.runner.linear_problem import linear_fitter

register_configs()
uri, experiment, sweep, num = sys.argv[1:5]
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    cfg = compose("config", overrides=[f"tracking.uri={uri}", f"tracking.experiment={experiment}",
                                       f"hydra.sweep.dir={sweep}"], return_hydra_config=True)
run_job(cfg, JobContext(Path(sweep) / num, Path(sweep), int(num)), fitter=linear_fitter)
"""


def test_six_parallel_jobs_land_once_in_their_parent(tmp_path, make_cfg, postgres_server, experiment):
    from q2mm.tracking.callback import MlflowSweepCallback, SweepHandoff

    url, artifacts = postgres_server
    sweep_dir = tmp_path / "sweep"
    cfg = make_cfg(f"tracking.uri={url}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={sweep_dir}")
    callback = MlflowSweepCallback()
    callback.on_multirun_start(cfg)
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    start = time.perf_counter()
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, url, experiment, str(sweep_dir), str(num)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for num in range(6)
    ]
    outputs = [job.communicate(timeout=600)[0] for job in jobs]
    assert all(job.returncode == 0 for job in jobs), "\n".join(o[-2000:] for o in outputs)
    callback.on_multirun_end(cfg)
    handoff = SweepHandoff.read(sweep_dir)
    client = MlflowClient(url)
    runs = experiment_runs(url, experiment)
    children = children_of(runs, handoff.parent_run_id)
    assert len(runs) == 7 and len(children) == 6
    assert sorted(r.data.tags["hydra_job_num"] for r in children) == [str(n) for n in range(6)]
    for child in children:
        assert child.info.status == "FINISHED"
        assert len(client.get_metric_history(child.info.run_id, "score")) == child.data.metrics["n_iterations"] + 1
        assert list(artifacts.rglob(f"{child.info.run_id}/artifacts/*.json"))  # under the shared root
    parent = client.get_run(handoff.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_jobs"] == 6
    print(
        f"six parallel jobs into PostgreSQL: {len(children)}/6 runs landed in parent {handoff.parent_run_id}, "
        f"{time.perf_counter() - start:.1f} s wall"
    )


@pytest.mark.heavy
def test_six_joblib_jobs_into_postgres(tmp_path, postgres_server, experiment):
    url, artifacts = postgres_server
    start = time.perf_counter()
    done = run_cli(
        [
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=6",
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


@pytest.mark.heavy
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
