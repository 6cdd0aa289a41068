"""Evaluate without fitting and held-out structures on rh-enamide; cross-validation on sn2.

The fits here are deliberately short (two explicit parameters, a few Nelder-Mead iterations):
what is checked is what is scored and logged, not how good the fit gets.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from q2mm.evaluate import evaluate_system
from q2mm.pipeline import JobContext, run_job

from .conftest import artifact_names, experiment_runs
from .test_cli import children_of, failure_report, run_cli

pytestmark = pytest.mark.slow

KINDS = ("eig_diag", "bond_length", "bond_angle", "torsion")
PUBLISHED_R2 = {"bond_length": 0.9939, "bond_angle": 0.9746, "eig_diag": 0.9933, "torsion": 0.9958}  # README
SHORT_FIT = (
    "scope=explicit",
    "scope.params=[{line:1860,field:2},{line:1863,field:2}]",
    "optimizer=nelder-mead",
    "optimizer.maxiter=2",
    "ratio_tol=null",
)


def rh_cfg(make_cfg, data_root, store_uri, experiment, *overrides):
    return make_cfg(
        "system=rh-enamide",
        f"data_root={data_root}",
        f"tracking.uri={store_uri}",
        f"tracking.experiment={experiment}",
        "ratio_tol=null",
        *overrides,
    )


def test_evaluate_published_rh_enamide_is_the_fits_initial_score(tmp_path, make_cfg, data_root, store_uri, experiment):
    cfg = rh_cfg(make_cfg, data_root, store_uri, experiment, "optimizer=none")  # the runner's q2mm.evaluate
    summary = run_job(cfg, JobContext(tmp_path / "job"))
    assert summary["score_initial"] == pytest.approx(3.763712e5, rel=1e-6)
    (run,) = experiment_runs(store_uri, experiment)
    metrics = run.data.metrics
    assert run.info.status == "FINISHED" and run.info.run_name == "rh-enamide evaluate mm3.fld (published)"
    assert metrics["score_final"] == metrics["score_initial"] == pytest.approx(summary["score_initial"])
    assert metrics["n_iterations"] == 0 and run.data.params["jac_resolved"] == "none"
    assert run.data.params["optimizer.method"] == "none"
    for kind, r2 in PUBLISHED_R2.items():
        assert metrics[f"r2_{kind}_final"] == pytest.approx(r2, abs=5e-5)
    # contributions add up to the score, by kind and by structure
    assert sum(metrics[f"contribution_{k}_final"] for k in KINDS) == pytest.approx(metrics["score_final"])
    assert sum(metrics[f"contribution_structure_{i}_final"] for i in range(1, 10)) == pytest.approx(
        metrics["score_final"]
    )
    # selectivity of the published force field from the Jaguar SCF energies
    table = summary["selectivity"]["final"]
    assert [(r["a"], r["b"]) for r in table["pairs"]] == [("DuPHOS-pro-R", "DuPHOS-pro-S"), ("BPE-pro-R", "BPE-pro-S")]
    assert all(r["comparable"] for r in table["pairs"]) and table["n_compared"] == 2  # diastereomeric TSs
    # DuPHOS: (-1835.63365865972 + 1835.63691985291) Eh * 2625.4996 kJ/mol/Eh = 8.5623 kJ/mol
    assert table["pairs"][0]["qm_kj"] == pytest.approx(8.5623, abs=1e-4)
    assert table["qm_energy"] == ["Jaguar SCF energy (SCFE)"]
    assert metrics["selectivity_mue_kj_final"] == pytest.approx(table["mue_kj"])
    assert metrics["selectivity_DuPHOS-pro-S_vs_DuPHOS-pro-R_qm_kj"] == pytest.approx(8.5623, abs=1e-4)
    names = artifact_names(MlflowClient(store_uri), run.info.run_id)
    assert {f"parity_{k}.png" for k in KINDS} <= names  # top level, where the compare page lists them
    assert {"tables/contributions.csv", "tables/worst.csv", "tables/selectivity.csv", "mm3-evaluation.json"} <= names


def test_holdout_metrics_equal_an_evaluation_of_the_fitted_fld(tmp_path, make_cfg, data_root, store_uri, experiment):
    held = "5 (R,R)-Me-DuPHOS pro-S from JCTC SI"
    fit_cfg = rh_cfg(make_cfg, data_root, store_uri, experiment, f"validation.holdout=['{held}']", *SHORT_FIT)
    fitted = run_job(fit_cfg, JobContext(tmp_path / "fit"), fitter=None)
    (fld,) = (tmp_path / "fit").glob("*-optimized.fld")
    assert fitted["holdout"]["structures"] == [{"index": 5, "title": held}]
    assert fitted["score_final"] < fitted["score_initial"]
    assert "5" not in {str(r["index"]) for r in fitted["contributions"]["final"]["by_structure"]}

    eval_cfg = rh_cfg(make_cfg, data_root, store_uri, experiment, "validation.holdout=[5]", f"system.forcefield={fld}")
    evaluated = run_job(eval_cfg, JobContext(tmp_path / "evaluate"), fitter=evaluate_system)
    runs = {r.data.params["jac_resolved"]: r.data.metrics for r in experiment_runs(store_uri, experiment)}
    fit_metrics, eval_metrics = runs["fd"], runs["none"]
    holdout_keys = [k for k in fit_metrics if k.startswith("holdout_") and k.endswith("_final")]
    assert {"holdout_score_final", *(f"holdout_r2_{k}_final" for k in KINDS)} <= set(holdout_keys)
    for key in holdout_keys:
        assert eval_metrics[key] == pytest.approx(fit_metrics[key], rel=1e-12, abs=1e-12), key
    # the fitted force field scores the training structures as the fit's final point, to .fld precision
    assert evaluated["score_final"] == pytest.approx(fitted["score_final"], rel=1e-3)
    assert fit_metrics["holdout_score_initial"] != fit_metrics["holdout_score_final"]
    assert fit_metrics["n_holdout"] == 1
    summary = json.loads(next((tmp_path / "fit").glob("*-fit.json")).read_text())
    assert summary["holdout"]["score_final"] == fitted["holdout"]["score_final"]


def test_cross_validation_parent_aggregates_its_folds(tmp_path, store_uri, experiment):
    """Leave-one-out on the embedded sn2 system (two structures, two folds): the parent run
    carries the mean and spread of its children's held-out metrics. Folds 2..3 of the sweep's
    range end without a run (the preset's range is 0..10; four jobs keep the test short)."""
    done = run_cli(
        [
            "-m",
            "experiment=cross-validation",
            "validation.fold=range(0,4)",
            "scope=explicit",  # one force constant each structure uses: C-F (CH3F) and C...F (the TS)
            "scope.params=[{line:34,field:2},{line:66,field:2}]",
            "optimizer=nelder-mead",
            "optimizer.maxiter=1",
            "ratio_tol=null",
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
    assert len(runs) == 3 and len(children) == 2
    assert sorted(r.data.params["validation.fold"] for r in children) == ["0", "1"]
    assert sorted(r.data.metrics["n_holdout"] for r in children) == [1, 1]
    metrics = parent.data.metrics
    assert metrics["cv_n_folds"] == 2
    kinds = ("eig_diag", "bond_length", "bond_angle")
    keys = [f"holdout_score_{w}" for w in ("initial", "final")] + [f"holdout_r2_{k}_final" for k in kinds]
    for key in keys:
        values = np.array([r.data.metrics[key] for r in children])
        assert metrics[f"cv_{key}_mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert metrics[f"cv_{key}_std"] == pytest.approx(values.std(ddof=1), rel=1e-9)
    names = artifact_names(MlflowClient(store_uri), parent.info.run_id)
    assert {"cross_validation/folds.csv", *(f"cross_validation/fold_{k}.csv" for k in range(2))} <= names
