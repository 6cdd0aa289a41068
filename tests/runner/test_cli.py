"""``python -m q2mm.run`` end to end in a subprocess, into a temporary sqlite store."""

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
from .test_tracking import check_finished_run

pytestmark = pytest.mark.slow


def run_cli(args: list[str], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run the runner in ``cwd`` as a user would, with no data root (Q2MM_DATA -> an empty dir).

    The timeout is generous because a cold JAX compile of the loss dominates on a busy
    2-core machine; on expiry the runner gets SIGTERM, so its runs are closed as KILLED.
    """
    empty = cwd / "no-data"
    empty.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), Q2MM_DATA=str(empty))
    command = [sys.executable, "-m", "q2mm.run", *args]
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=120)
        pytest.fail(f"python -m q2mm.run {' '.join(args)} ran past {timeout} s:\n{(out + err)[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def failure_report(done: subprocess.CompletedProcess, uri: str, experiment: str) -> str:
    """The end of the command's output and every run's error, for an assertion message."""
    errors = [f"{r.info.run_name}: {r.data.tags.get('error')}" for r in experiment_runs(uri, experiment)]
    return f"{(done.stdout + done.stderr)[-4000:]}\nrun errors: {errors}"


def children_of(runs: list, parent_id: str) -> list:
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def test_default_job_end_to_end(tmp_path, store_uri, experiment):
    start = time.perf_counter()
    done = run_cli([f"tracking.uri={store_uri}", f"tracking.experiment={experiment}"], tmp_path)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, failure_report(done, store_uri, experiment)
    (run,) = experiment_runs(store_uri, experiment)
    client = MlflowClient(store_uri)
    check_finished_run(client, run)
    assert run.info.run_name == "sn2 published lbfgsb"
    assert run.data.params["system.name"] == "sn2" and run.data.params["n_molecules"] == "2"
    names = artifact_names(client, run.info.run_id)
    assert {"hydra/config.yaml", "hydra/overrides.yaml", "hydra/hydra.yaml", "sn2-optimized.fld.txt"} <= names
    assert any(name.endswith("-optimized.fld") for name in names)
    (job_dir,) = (tmp_path / "outputs").glob("*/*")
    assert list(job_dir.glob("*-optimized.fld")) and list(job_dir.glob("*-fit.json"))
    # the terminal's account is short, and the same lines are in the job's run.log
    log_text = (job_dir / "run.log").read_text()
    assert "loading sn2: done in" in log_text and "start: score" in log_text
    wall = run.data.metrics["wall_time_s"]
    assert f"wall {wall:.1f} s" in log_text and "optimizer: " in log_text
    assert f"wrote {(job_dir / 'sn2-optimized.fld').resolve()}" in log_text
    assert f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}?workflowType=machine_learning" in log_text
    assert sum(" iter " in line for line in log_text.splitlines()) <= wall / 5 + 2
    assert "done: score" in done.stdout
    print(f"default job: {elapsed:.1f} s wall (subprocess), fit {run.data.metrics['wall_time_s']:.1f} s")


def test_joblib_multirun_parent_and_children(tmp_path, store_uri, experiment):
    done = run_cli(
        [
            "-m",
            "optimizer.bounds.fc_fraction=0.1,0.2",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            f"tracking.uri={store_uri}",
            f"tracking.experiment={experiment}",
        ],
        tmp_path,
    )
    assert done.returncode == 0, failure_report(done, store_uri, experiment)
    runs = experiment_runs(store_uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = children_of(runs, parent.info.run_id)
    assert parent.info.status == "FINISHED" and len(runs) == 3
    assert sorted(r.data.params["optimizer.bounds.fc_fraction"] for r in children) == ["0.1", "0.2"]
    assert parent.info.run_name == f"{experiment} sweep fc_fraction=0.1,0.2"
    assert sorted(r.info.run_name for r in children) == ["sn2 fc_fraction=0.1", "sn2 fc_fraction=0.2"]
    out = done.stdout + done.stderr
    table = out[out.index("job  overrides") :].splitlines()
    assert [line.split()[:3] for line in table[2:4]] == [
        ["0", "fc_fraction=0.1", "FINISHED"],
        ["1", "fc_fraction=0.2", "FINISHED"],
    ]
    client = MlflowClient(store_uri)
    for child in children:
        check_finished_run(client, child)


def test_failing_jobs_are_recorded_and_the_sweep_goes_on(tmp_path, store_uri, experiment):
    done = run_cli(
        [
            "-m",
            "system=pd-allyl,heck-relay",
            f"data_root={tmp_path / 'no-data'}",
            f"tracking.uri={store_uri}",
            f"tracking.experiment={experiment}",
        ],
        tmp_path,
    )
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "2 of 2 jobs failed" in out
    table = out[out.index("job  overrides") :].splitlines()
    assert [line.split()[:3] for line in table[2:4]] == [
        ["0", "system=pd-allyl", "FAILED"],
        ["1", "system=heck-relay", "FAILED"],
    ]
    runs = experiment_runs(store_uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = children_of(runs, parent.info.run_id)
    assert parent.info.status == "FAILED" and parent.data.metrics["n_failed"] == 2
    assert sorted(r.data.params["system.name"] for r in children) == ["heck-relay", "pd-allyl"]
    for child in children:
        assert child.info.status == "FAILED"
        assert child.data.tags["error"].startswith("DataNotFoundError")
        assert "error.txt" in artifact_names(MlflowClient(store_uri), child.info.run_id)


def test_a_run_refused_in_an_earlier_runs_directory_leaves_its_config_alone(tmp_path, store_uri, experiment):
    """Hydra writes a job's .hydra/ before the job runs; pointed at an earlier run's directory,
    the refused run must not replace the earlier run's config (what resume= compares against)."""
    earlier = tmp_path / "earlier"
    (earlier / ".hydra").mkdir(parents=True)
    (earlier / ".hydra" / "config.yaml").write_text("the earlier run's config\n")
    (earlier / "sn2-fit.json").write_text("{}")
    done = run_cli(
        [f"tracking.uri={store_uri}", f"tracking.experiment={experiment}", f"hydra.run.dir={earlier}"], tmp_path
    )
    assert done.returncode != 0 and f"{earlier} holds an earlier run (sn2-fit.json)" in done.stderr
    assert "Traceback" not in done.stderr
    assert (earlier / ".hydra" / "config.yaml").read_text() == "the earlier run's config\n"
    assert sorted(p.name for p in (earlier / ".hydra").iterdir()) == ["config.yaml"]
    (run,) = experiment_runs(store_uri, experiment)
    assert run.info.status == "FAILED" and artifact_names(MlflowClient(store_uri), run.info.run_id) == {"error.txt"}


def test_a_sweep_into_an_earlier_sweeps_directory_is_refused_before_writing(tmp_path):
    """A fixed hydra.sweep.dir reused: one line, exit 1, nothing written there (no multirun.yaml,
    no job's .hydra/, the earlier job's files as they were)."""
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "sn2-fit.json").write_text("{}")
    done = run_cli(["-m", f"hydra.sweep.dir={sweep}", "tracking.enabled=false", "optimizer.maxiter=1,2"], tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"error: {sweep} holds an earlier sweep (outputs in job directories 0)" in done.stderr
    assert sorted(p.relative_to(sweep).as_posix() for p in sweep.rglob("*")) == ["0", "0/sn2-fit.json"]
