"""``scope=file``: a run fits the values a Q2MM parameter file selects, within the ranges it gives;
a bad line ends the run in one message naming the file and line, and a FAILED MLflow run."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from .conftest import artifact_names, experiment_runs
from .test_cli import failure_report, run_cli

pytestmark = pytest.mark.slow

# the embedded sn2 force field: line 66 the F-C bond of the TS (k 1.0 mdyn/A), 68 C-H (k 4.74)
PARAM_FILE = "# two bond force constants of sn2.fld\n66 2 0.9 1.05   # C...F\n68 2 pos\n"
SHORT = ("optimizer=nelder-mead", "optimizer.maxiter=3", "ratio_tol=null", "tracking.plots=false")


def test_a_run_fits_what_the_parameter_file_selects_within_its_ranges(tmp_path, store_uri, experiment):
    (tmp_path / "param_eig.txt").write_text(PARAM_FILE)
    args = ["scope=file", "scope.path=param_eig.txt", *SHORT, f"hydra.run.dir={tmp_path / 'run'}"]
    done = run_cli([*args, f"tracking.uri={store_uri}", f"tracking.experiment={experiment}"], tmp_path)
    assert done.returncode == 0, failure_report(done, store_uri, experiment)
    (summary_path,) = (tmp_path / "run").glob("*-fit.json")
    summary = json.loads(summary_path.read_text())
    assert summary["scope"] == "file(param_eig.txt, 2)"
    rows = {(p["line"], p["field"]): p for p in summary["parameters"]}
    assert set(rows) == {(66, 2), (68, 2)}
    assert (rows[66, 2]["lower"], rows[66, 2]["upper"]) == pytest.approx((0.9, 1.05))  # not the +/-20 % box
    assert (rows[68, 2]["lower"], rows[68, 2]["upper"]) == pytest.approx((0.8 * 4.74, 1.2 * 4.74))
    (run,) = experiment_runs(store_uri, experiment)
    assert run.info.status == "FINISHED" and run.data.params["scope.path"] == "param_eig.txt"
    assert "inputs/param_eig.txt" in artifact_names(MlflowClient(store_uri), run.info.run_id)


def test_a_bad_parameter_file_line_is_one_message_and_a_failed_run(tmp_path, store_uri, experiment):
    (tmp_path / "param_eig.txt").write_text("66 2\n66 5\n")
    args = ["scope=file", "scope.path=param_eig.txt", *SHORT, f"hydra.run.dir={tmp_path / 'run'}"]
    done = run_cli([*args, f"tracking.uri={store_uri}", f"tracking.experiment={experiment}"], tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "param_eig.txt:2: expected 'LINE FIELD' with FIELD 1..3" in done.stderr
    (run,) = experiment_runs(store_uri, experiment)
    assert run.info.status == "FAILED"
    assert "param_eig.txt:2" in MlflowClient(store_uri).get_run(run.info.run_id).data.tags.get("error", "")
