"""resume= mistakes end in one CheckpointError naming what is wrong, before any run is opened."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from q2mm.errors import CheckpointError
from q2mm.optimize.checkpoint import CHECKPOINT_FILE
from q2mm.tracking.resume import find_resume


def test_unknown_run_id_and_missing_checkpoint(tmp_path, make_cfg, store_uri):
    cfg = make_cfg(f"tracking.uri={store_uri}", "resume=0123456789abcdef")
    with pytest.raises(CheckpointError, match="resume=0123456789abcdef: neither a run directory nor an MLflow run id"):
        find_resume(cfg, tmp_path, multirun=False)
    cfg = make_cfg(f"resume={tmp_path}")
    with pytest.raises(CheckpointError, match=f"{tmp_path}/{CHECKPOINT_FILE}: no checkpoint"):
        find_resume(cfg, tmp_path, multirun=False)


def test_other_overrides_are_refused_with_the_original_ones(tmp_path, make_cfg):
    from q2mm.optimize import OptimizerOptions
    from tests.optimize.test_checkpoint import _checkpointed_fit

    _checkpointed_fit(tmp_path, OptimizerOptions(maxiter=2))
    (tmp_path / ".hydra").mkdir()
    original = make_cfg("system=ethane")
    OmegaConf.save({k: v for k, v in original.items() if k != "hydra"}, tmp_path / ".hydra" / "config.yaml")
    OmegaConf.save(["system=ethane"], tmp_path / ".hydra" / "overrides.yaml")
    with pytest.raises(
        CheckpointError, match=r"differs in .*system.name: ethane -> sn2.*original overrides: system=ethane"
    ):
        find_resume(make_cfg(f"resume={tmp_path}"), tmp_path, multirun=False)
    assert (
        find_resume(make_cfg("system=ethane", f"resume={tmp_path}", "progress=true"), tmp_path, False).run_dir
        == tmp_path
    )
    (tmp_path / "ethane-fit.json").write_text("{}")
    with pytest.raises(CheckpointError, match="already finished"):
        find_resume(make_cfg("system=ethane", f"resume={tmp_path}"), tmp_path, multirun=False)


def test_a_multirun_job_resumes_its_own_checkpoint_only(tmp_path, make_cfg):
    from q2mm.optimize import OptimizerOptions
    from tests.optimize.test_checkpoint import _checkpointed_fit

    assert find_resume(make_cfg(), tmp_path, multirun=True) is None
    _checkpointed_fit(tmp_path, OptimizerOptions(maxiter=2))
    assert find_resume(make_cfg(), tmp_path, multirun=False) is None
    assert find_resume(make_cfg(), tmp_path, multirun=True).run_dir == tmp_path.resolve()


@pytest.mark.parametrize("earlier", [CHECKPOINT_FILE, "sn2-optimized.fld", "sn2-fit.json", "sn2-evaluation.json"])
def test_a_fresh_run_refuses_a_directory_with_an_earlier_runs_outputs(
    tmp_path, make_cfg, store_uri, experiment, earlier
):
    """Refused before any work (the fitter never runs), the earlier file untouched, the run FAILED."""
    from mlflow.tracking import MlflowClient

    from q2mm.errors import OutputExistsError
    from q2mm.pipeline import JobContext, run_job

    (tmp_path / earlier).write_bytes(b"an earlier run's")
    (tmp_path / "notes.txt").write_text("not a run output")
    cfg = make_cfg(f"tracking.uri={store_uri}", f"tracking.experiment={experiment}")

    def fitter(*args):
        pytest.fail("the job started fitting")

    with pytest.raises(OutputExistsError, match=rf"{tmp_path} holds an earlier run \({earlier}\).*resume={tmp_path}"):
        run_job(cfg, JobContext(tmp_path), fitter=fitter)
    assert (tmp_path / earlier).read_bytes() == b"an earlier run's"
    client = MlflowClient(store_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FAILED" and "holds an earlier run" in run.data.tags["error"]
    (tmp_path / earlier).unlink()
    with pytest.raises(pytest.fail.Exception, match="started fitting"):  # notes.txt alone is no earlier run
        run_job(cfg, JobContext(tmp_path), fitter=fitter)
