"""The same logging against a real ``mlflow server`` on 127.0.0.1 (started here, stopped after)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from q2mm.pipeline import JobContext, run_job
from q2mm.tracking.callback import MlflowSweepCallback, SweepHandoff

from .conftest import experiment_runs
from .linear_problem import linear_fitter
from .test_tracking import check_finished_run

pytestmark = pytest.mark.slow

MLFLOW = Path(sys.executable).with_name("mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} not healthy after {timeout} s")


@pytest.fixture(scope="module")
def server_uri(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    command = [
        str(MLFLOW),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own session: uvicorn and its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_job_logs_everything_to_a_server(tmp_path, make_cfg, server_uri, experiment):
    cfg = make_cfg(f"tracking.uri={server_uri}", f"tracking.experiment={experiment}")
    run_job(cfg, JobContext(tmp_path / "job"), fitter=linear_fitter)
    (run,) = experiment_runs(server_uri, experiment)
    check_finished_run(MlflowClient(server_uri), run)


def test_sweep_against_a_server(tmp_path, make_cfg, server_uri, experiment):
    sweep_dir = tmp_path / "sweep"
    cfg = make_cfg(f"tracking.uri={server_uri}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={sweep_dir}")
    callback = MlflowSweepCallback()
    callback.on_multirun_start(cfg)
    for num in (0, 1):
        run_job(cfg, JobContext(sweep_dir / str(num), sweep_dir, num), fitter=linear_fitter)
    callback.on_multirun_end(cfg)
    handoff = SweepHandoff.read(sweep_dir)
    runs = {r.info.run_id: r for r in experiment_runs(server_uri, experiment)}
    assert runs[handoff.parent_run_id].info.status == "FINISHED"
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == handoff.parent_run_id]
    assert sorted(r.info.run_name for r in children) == ["sn2 #0", "sn2 #1"]  # no overrides: the job number
    assert MlflowSweepCallback.failed_jobs == []
