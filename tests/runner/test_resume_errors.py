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
