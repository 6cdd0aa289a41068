"""One job's MLflow run: what it logs, how it fails, the sweep's parent/child structure."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from q2mm.errors import DataNotFoundError
from q2mm.pipeline import JobContext, run_job
from q2mm.tracking.callback import HANDOFF_FILE, MlflowSweepCallback, SweepHandoff
from q2mm.tracking.provenance import fingerprint, git_state, software_tags

from .conftest import artifact_names, experiment_runs
from .linear_problem import linear_fitter

KINDS = ("eig_diag", "bond_length", "bond_angle")
METRICS = {
    "score_initial",
    "score_final",
    "score_delta_pct",
    "ratio_initial",
    "ratio_final",
    "n_iterations",
    "n_reference_evals",
    "n_loss_evals",
    "n_at_bound",
    "wall_time_s",
    "fit_time_s",
    "compile_time_s",
    *(f"{s}_{k}_{w}" for s in ("r2", "rmsd") for k in KINDS for w in ("initial", "final")),
}
PARAMS = {
    "system.name",
    "scope.name",
    "start.name",
    "optimizer.method",
    "optimizer.maxiter",
    "optimizer.bounds.fc_fraction",
    "optimizer.bounds.eq_fraction",
    "ratio_tol",
    "jac_requested",
    "jac_resolved",
    "n_molecules",
    "n_active_params",
}
TAGS = {"git_sha", "git_dirty", "data_fingerprint", "q2mm_version", "jax_version", "jax_device"}


def check_finished_run(client: MlflowClient, run) -> None:
    """Every metric, param, tag and artifact a successful job promises."""
    assert run.info.status == "FINISHED"
    data = run.data
    assert METRICS <= set(data.metrics), METRICS - set(data.metrics)
    assert PARAMS <= set(data.params), PARAMS - set(data.params)
    assert TAGS <= set(data.tags), TAGS - set(data.tags)
    assert data.metrics["score_final"] < data.metrics["score_initial"]
    assert data.metrics["score_delta_pct"] < 0
    history = client.get_metric_history(run.info.run_id, "score")
    assert len(history) == data.metrics["n_iterations"] + 1
    assert [m.step for m in history] == list(range(len(history)))
    assert history[0].value == pytest.approx(data.metrics["score_initial"])
    names = artifact_names(client, run.info.run_id)
    assert {f"parity_{kind}.png" for kind in KINDS} <= names  # top level: the compare page lists them
    assert any(name.endswith(".json") for name in names)
    assert data.tags["mlflow.note.content"].startswith(f"**{run.info.run_name}**")
    assert data.metrics["wall_time_s"] == pytest.approx((run.info.end_time - run.info.start_time) / 1000, abs=1e-3)
    assert data.metrics["wall_time_s"] >= data.metrics["fit_time_s"]


def test_job_logs_params_metrics_curve_tags_and_artifacts(tmp_path, make_cfg, store_uri, store_dir, experiment):
    cfg = make_cfg(
        f"tracking.uri={store_uri}", f"tracking.experiment={experiment}", "optimizer.jac=jax", "ratio_tol=null"
    )
    summary = run_job(cfg, JobContext(tmp_path / "job"), fitter=linear_fitter)
    (run,) = experiment_runs(store_uri, experiment)
    client = MlflowClient(store_uri)
    check_finished_run(client, run)
    assert run.data.params["ratio_tol"] == "None"
    assert run.data.params["jac_requested"] == "jax" and run.data.params["jac_resolved"] == "jax"
    assert run.data.params["n_active_params"] == "4"
    assert run.data.metrics["score_final"] == pytest.approx(summary["score_final"])
    assert client.get_experiment(run.info.experiment_id).name == experiment
    assert run.info.artifact_uri.startswith((store_dir / "artifacts").as_uri())


def test_least_squares_job_logs_the_identifiability_table_and_plot(tmp_path, make_cfg, store_uri, experiment):
    cfg = make_cfg(
        f"tracking.uri={store_uri}", f"tracking.experiment={experiment}", "optimizer=least-squares", "ratio_tol=null"
    )
    summary = run_job(cfg, JobContext(tmp_path / "job"), fitter=linear_fitter)
    (run,) = experiment_runs(store_uri, experiment)
    client = MlflowClient(store_uri)
    check_finished_run(client, run)
    assert run.data.params["optimizer.method"] == "least-squares"
    assert {"identifiability.csv", "plots/identifiability.png"} <= artifact_names(client, run.info.run_id)
    assert run.data.metrics["n_undetermined"] == len(summary["identifiability"]["undetermined"]) == 0
    assert run.data.metrics["jacobian_condition_number"] == pytest.approx(
        summary["identifiability"]["condition_number"]
    )
    table = (tmp_path / "job" / "identifiability.csv").read_text().splitlines()
    assert table[0].startswith("parameter,value,standard_error") and len(table) == 5


def test_failed_job_is_recorded_failed_and_raises(tmp_path, make_cfg, store_uri, experiment):
    cfg = make_cfg(
        f"tracking.uri={store_uri}",
        f"tracking.experiment={experiment}",
        "system=rh-enamide",
        f"data_root={tmp_path / 'nowhere'}",
    )

    def missing_data(cfg, ctx, progress):
        raise DataNotFoundError(f"{cfg.data_root}/rh-enamide: no such training set")

    with pytest.raises(DataNotFoundError):
        run_job(cfg, JobContext(tmp_path / "job"), fitter=missing_data)
    (run,) = experiment_runs(store_uri, experiment)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("DataNotFoundError: ")
    assert run.data.params["system.name"] == "rh-enamide"
    assert "error.txt" in artifact_names(MlflowClient(store_uri), run.info.run_id)


def test_bad_choice_fails_the_run_before_fitting(tmp_path, make_cfg, store_uri, experiment):
    # (a bad enumerated value such as optimizer.method=bfgs no longer composes: test_config.py)
    cfg = make_cfg(
        f"tracking.uri={store_uri}", f"tracking.experiment={experiment}", "optimizer.bounds.fc_fraction=-0.5"
    )
    calls = []
    with pytest.raises(Exception, match="optimizer.bounds.fc_fraction"):
        run_job(cfg, JobContext(tmp_path / "job"), fitter=lambda *a: calls.append(a))
    assert calls == []
    assert [r.info.status for r in experiment_runs(store_uri, experiment)] == ["FAILED"]


def test_sweep_parent_with_children_one_failing(tmp_path, make_cfg, store_uri, experiment):
    sweep_dir = tmp_path / "sweep"
    cfg = make_cfg(f"tracking.uri={store_uri}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={sweep_dir}")
    callback = MlflowSweepCallback()
    callback.on_multirun_start(cfg)
    handoff = SweepHandoff.read(sweep_dir)
    assert handoff is not None and (sweep_dir / HANDOFF_FILE).is_file()

    def broken(cfg, ctx, progress):
        raise RuntimeError("engine exploded")

    ok = run_job(cfg, JobContext(sweep_dir / "0", sweep_dir, 0), fitter=linear_fitter)
    failed = run_job(cfg, JobContext(sweep_dir / "1", sweep_dir, 1), fitter=broken)
    assert ok is not None and failed is None  # a failed job does not stop the sweep
    callback.on_multirun_end(cfg)

    client = MlflowClient(store_uri)
    runs = {r.info.run_id: r for r in experiment_runs(store_uri, experiment)}
    parent = runs[handoff.parent_run_id]
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.info.status == "FAILED"
    assert parent.data.metrics == {"n_jobs": 2.0, "n_failed": 1.0}
    assert {r.info.experiment_id for r in runs.values()} == {handoff.experiment_id}
    assert client.get_experiment(handoff.experiment_id).name == experiment
    by_status = {r.info.status: r for r in children}
    check_finished_run(client, by_status["FINISHED"])
    assert by_status["FAILED"].data.tags["error"] == "RuntimeError: engine exploded"
    assert MlflowSweepCallback.failed_jobs == [by_status["FAILED"].info.run_name]


def test_fingerprint_follows_content_not_order(tmp_path: Path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one")
    b.write_text("two")
    first = fingerprint([a, b])
    assert first == fingerprint([b, a]) == fingerprint([tmp_path])
    b.write_text("three")
    assert fingerprint([a, b]) != first


def test_provenance_tags():
    state = git_state()
    assert len(state["git_sha"]) == 40 and state["git_dirty"] in ("true", "false")
    tags = software_tags()
    assert tags["q2mm_version"] and tags["jax_version"] and ":" in tags["jax_device"]


def test_sigterm_closes_the_run_as_killed(tmp_path, make_cfg, store_uri, experiment):
    cfg = make_cfg(f"tracking.uri={store_uri}", f"tracking.experiment={experiment}")

    def terminated(cfg, ctx, progress):
        os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler's time limit sends
        time.sleep(5)

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_info:
        run_job(cfg, JobContext(tmp_path / "job"), fitter=terminated)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous
    (run,) = experiment_runs(store_uri, experiment)
    assert run.info.status == "KILLED" and run.data.tags["error"].startswith("SystemExit")


def test_sigterm_that_surfaces_as_another_error_still_closes_the_run_as_killed(
    tmp_path, make_cfg, store_uri, experiment
):
    """A library that catches the signal's SystemExit in a callback and raises its own error:
    the run was killed, not failed, and the process still exits."""
    cfg = make_cfg(f"tracking.uri={store_uri}", f"tracking.experiment={experiment}")

    def terminated_inside_a_library(cfg, ctx, progress):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except BaseException as error:
            raise RuntimeError("INTERNAL: callback failed") from error

    with pytest.raises(SystemExit) as exit_info:
        run_job(cfg, JobContext(tmp_path / "job"), fitter=terminated_inside_a_library)
    assert exit_info.value.code == 128 + signal.SIGTERM
    (run,) = experiment_runs(store_uri, experiment)
    assert run.info.status == "KILLED"
    assert run.data.tags["error"].startswith("SystemExit") and "RuntimeError: INTERNAL" in run.data.tags["error"]


def test_store_uris(tmp_path: Path):
    from q2mm.errors import ConfigurationError
    from q2mm.tracking.store import DEFAULT_STORE_DIR, artifact_location, resolve_uri

    uri = f"sqlite:///{tmp_path / 'deep' / 'mlflow.db'}"
    assert resolve_uri(uri) == uri and (tmp_path / "deep").is_dir()
    assert artifact_location(uri) == (tmp_path / "deep" / "artifacts").as_uri()
    assert resolve_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert artifact_location("http://127.0.0.1:5000") is None
    assert resolve_uri(None) == f"sqlite:///{DEFAULT_STORE_DIR / 'mlflow.db'}"
    assert DEFAULT_STORE_DIR.name == "mlruns" and DEFAULT_STORE_DIR.parent == Path(__file__).parents[2]
    with pytest.raises(ConfigurationError, match="tracking.uri"):
        resolve_uri("mlruns/")
