"""A fit killed with SIGTERM part way resumes from its checkpoint into the same MLflow run and
ends where the uninterrupted fit of the same config ends (``python -m q2mm.run ... resume=``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from q2mm.optimize.checkpoint import CHECKPOINT_FILE
from q2mm.paths import PROJECT_ROOT

from .conftest import experiment_runs
from .test_cli import failure_report, run_cli

pytestmark = pytest.mark.slow
FIT = ["optimizer.maxiter=20", "tracking.plots=false"]


def _checkpoint_iteration(path) -> int:
    try:
        with np.load(path) as data:
            return len(json.loads(str(data["meta"]))["history"]) - 1
    except (OSError, ValueError, KeyError):
        return -1  # not written yet (or being replaced)


def test_sigterm_then_resume_matches_the_uninterrupted_fit(tmp_path, store_uri, experiment):
    tracking = [f"tracking.uri={store_uri}", f"tracking.experiment={experiment}"]
    full = run_cli([*FIT, *tracking, "tracking.run_name=uninterrupted", f"hydra.run.dir={tmp_path / 'full'}"], tmp_path)
    assert full.returncode == 0, failure_report(full, store_uri, experiment)

    cut_dir = tmp_path / "cut"
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), Q2MM_DATA=str(tmp_path / "no-data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "q2mm.run", *FIT, *tracking, "tracking.run_name=killed", f"hydra.run.dir={cut_dir}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 600
    while _checkpoint_iteration(cut_dir / CHECKPOINT_FILE) < 4 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    killed_at = _checkpoint_iteration(cut_dir / CHECKPOINT_FILE)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and killed_at >= 4, out[-3000:]

    client = MlflowClient(store_uri)
    (killed,) = [r for r in experiment_runs(store_uri, experiment) if r.info.run_name == "killed"]
    assert killed.info.status == "KILLED" and "SystemExit" in killed.data.tags["error"], killed.data.tags.get("error")
    assert not list(cut_dir.glob("*-fit.json"))

    resumed = run_cli(
        [
            *FIT,
            *tracking,
            "tracking.run_name=killed",
            f"resume={killed.info.run_id}",
            f"hydra.run.dir={tmp_path / 'resume'}",
        ],
        tmp_path,
    )
    assert resumed.returncode == 0, failure_report(resumed, store_uri, experiment)

    runs = {r.info.run_name: r for r in experiment_runs(store_uri, experiment)}
    assert len(runs) == 2  # the resumed fit went on in the killed run, no new run
    run, reference = runs["killed"], runs["uninterrupted"]
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert "error" not in run.data.tags and run.data.tags["resumed_at_iteration"] == str(killed_at)
    assert list(cut_dir.glob("*-fit.json")) and list(cut_dir.glob("*-optimized.fld"))

    steps = [m.step for m in client.get_metric_history(run.info.run_id, "score")]
    assert steps == list(range(len(steps))) and len(steps) > killed_at + 1  # steps continue, none twice
    final, expected = run.data.metrics, reference.data.metrics
    assert final["score_final"] <= expected["score_final"] * (1 + 1e-12)
    r2_keys = [k for k in expected if k.startswith("r2_") and k.endswith("_final")]
    assert r2_keys
    for key in r2_keys:
        assert abs(final[key] - expected[key]) <= 1e-3, key
    print(
        f"resume: killed at iteration {killed_at}; score {final['score_final']:.6e} "
        f"(uninterrupted {expected['score_final']:.6e}); "
        + ", ".join(f"{k} {final[k]:.5f}/{expected[k]:.5f}" for k in r2_keys)
    )
