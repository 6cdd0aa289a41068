"""``python -m q2mm.compare`` and the sweep's closing table over a real sqlite store."""

from __future__ import annotations

import logging

import pytest
from mlflow.tracking import MlflowClient

from q2mm.compare import CompareError, build_table, comparison_table, main
from q2mm.errors import ConfigurationError
from q2mm.pipeline import JobContext, run_job
from q2mm.tracking.callback import MlflowSweepCallback, SweepHandoff
from q2mm.tracking.store import EXPERIMENT_KIND_TAG

from .conftest import experiment_runs
from .linear_problem import linear_fitter


def run_sweep(make_cfg, tmp_path, store_uri, experiment, values=("0.1", "0.2"), broken_job=None):
    """A 2-job fc_fraction sweep of the linear problem through the callback and run_job, as
    Hydra drives them (the jobs' overrides as Hydra hands them over)."""
    sweep_dir = tmp_path / "sweep"
    common = [f"tracking.uri={store_uri}", f"tracking.experiment={experiment}", f"hydra.sweep.dir={sweep_dir}"]
    cfg = make_cfg(*common)
    cfg.hydra.overrides.task = [f"optimizer.bounds.fc_fraction={','.join(values)}", *common[:2]]
    callback = MlflowSweepCallback()
    callback.on_multirun_start(cfg)
    for num, value in enumerate(values):
        job_cfg = make_cfg(*common, f"optimizer.bounds.fc_fraction={value}")
        overrides = (f"optimizer.bounds.fc_fraction={value}", *common[:2])
        fitter = linear_fitter
        if num == broken_job:

            def fitter(*args):
                raise RuntimeError("engine exploded")

        run_job(job_cfg, JobContext(sweep_dir / str(num), sweep_dir, num, overrides=overrides), fitter=fitter)
    callback.on_multirun_end(cfg)
    return SweepHandoff.read(sweep_dir)


def test_sweep_names_table_and_compare(tmp_path, make_cfg, store_uri, experiment, caplog):
    caplog.set_level(logging.INFO)
    handoff = run_sweep(make_cfg, tmp_path, store_uri, experiment, broken_job=1)
    runs = {r.info.run_id: r for r in experiment_runs(store_uri, experiment)}
    parent = runs[handoff.parent_run_id]
    assert parent.info.run_name == f"{experiment} sweep fc_fraction=0.1,0.2"
    children = sorted((r for r in runs.values() if r is not parent), key=lambda r: r.data.tags["q2mm.job"])
    assert [r.info.run_name for r in children] == ["sn2 fc_fraction=0.1", "sn2 fc_fraction=0.2"]
    assert [r.data.tags["q2mm.swept"] for r in children] == ["fc_fraction=0.1", "fc_fraction=0.2"]
    client = MlflowClient(store_uri)
    assert client.get_experiment(handoff.experiment_id).tags[EXPERIMENT_KIND_TAG[0]] == EXPERIMENT_KIND_TAG[1]

    # the closing table: one row per job, the failed one included; also in the parent's description
    text = "\n".join(r.getMessage() for r in caplog.records)
    table = text[text.index("job  overrides") :].splitlines()
    assert table[2].split()[:3] == ["0", "fc_fraction=0.1", "FINISHED"]
    assert table[3].split()[:3] == ["1", "fc_fraction=0.2", "FAILED"]
    assert table[2].split()[-1] == children[0].info.run_id
    assert f"#/experiments/{handoff.experiment_id}/runs?workflowType=machine_learning" in text
    assert "| 1 | fc_fraction=0.2 | FAILED |" in client.get_run(parent.info.run_id).data.tags["mlflow.note.content"]
    assert MlflowSweepCallback.failed_jobs == ["sn2 fc_fraction=0.2"]

    # compare: one sweep, with name, id and the swept value; constant columns named below
    out = comparison_table(store_uri, [experiment], sweep=handoff.parent_run_id[:10]).splitlines()
    assert out[0].startswith(f"sweep {experiment} sweep fc_fraction=0.1,0.2 ({handoff.parent_run_id}, FAILED), 2 jobs")
    header = out[1].split()
    assert header[:3] == ["run", "id", "fc_fraction"] and "status" in header
    assert "system" not in header and "optimizer" not in header
    row0 = out[3]
    assert row0.startswith("sn2 fc_fraction=0.1") and children[0].info.run_id[:8] in row0 and " 0.1 " in row0
    print("\n".join(out))
    assert max(len(line) for line in out[1:]) <= 100
    assert comparison_table(store_uri, [experiment], sweep="latest").splitlines()[1:] == out[1:]


def test_compare_fits_the_width_and_drops_constant_columns(tmp_path, make_cfg, store_uri, experiment):
    for method, maxiter in (("lbfgsb", 50), ("adam", 5)):
        cfg = make_cfg(
            f"tracking.uri={store_uri}",
            f"tracking.experiment={experiment}",
            f"optimizer={method}",
            f"optimizer.maxiter={maxiter}",
        )
        run_job(cfg, JobContext(tmp_path / method), fitter=linear_fitter)
    runs = experiment_runs(store_uri, experiment)
    wide = build_table(runs, width=1000).splitlines()
    header = wide[0].split()
    assert header[:2] == ["run", "id"] and "method" in header and "maxiter" in header
    assert "system.name" not in header and "R2 bond" in wide[0]  # the same system in both runs...
    assert wide[-1].startswith("same in every run: system.name sn2, scope.name opt, start.name published")
    narrow = build_table(runs, width=60).splitlines()
    assert max(len(line) for line in narrow) <= 60
    assert any(line.startswith("left out to fit 60 columns: ") for line in narrow)
    # one run: nothing to compare, its main settings stay
    single = build_table(runs[:1]).splitlines()[0].split()
    assert single[:7] == ["run", "id", "system.name", "scope.name", "start.name", "method", "status"]


def test_compare_refuses_stores_and_sweeps_that_do_not_exist(tmp_path, store_uri, experiment, capsys):
    missing = f"sqlite:///{tmp_path / 'typo' / 'mlflow.db'}"
    with pytest.raises(ConfigurationError, match="no such sqlite file"):
        comparison_table(missing)
    assert not (tmp_path / "typo").exists()  # no empty store created
    assert main(["--tracking-uri", missing]) == 2
    assert "q2mm.compare: --tracking-uri" in capsys.readouterr().err
    with pytest.raises(ConfigurationError, match="no MLflow server answers"):
        comparison_table("http://127.0.0.1:9")
    MlflowClient(store_uri).create_experiment(experiment)
    assert comparison_table(store_uri, [experiment]).startswith("no runs")
    with pytest.raises(CompareError, match="no sweep matching --sweep latest"):
        comparison_table(store_uri, [experiment], sweep="latest")
    with pytest.raises(CompareError, match="no MLflow experiment named"):
        comparison_table(store_uri, [f"{experiment}-missing"])
