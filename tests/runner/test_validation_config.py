"""validation.* and system.selectivity: what the schema and check_config accept and refuse."""

from __future__ import annotations

import pytest

from q2mm.config import check_config, optimizer_options
from q2mm.errors import ConfigurationError
from q2mm.evaluate import evaluate_system
from q2mm.optimize import fit
from q2mm.pipeline import JobContext, fit_system, job_fitter, run_name, system_spec


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["validation.folds=1"], "at least 2 folds"),
        (["validation.folds=3", "validation.fold=3"], "expected 0..folds-1"),
        (["validation.fold=0", "validation.holdout=[1]"], "choose one"),
    ],
)
def test_bad_validation_settings_fail_before_work(make_cfg, overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        check_config(make_cfg(*overrides))


def test_rh_enamide_groups_become_a_selectivity_spec(make_cfg):
    cfg = make_cfg("system=rh-enamide")
    check_config(cfg)
    spec = system_spec(cfg.system).selectivity
    assert spec.compared == (("DuPHOS-pro-R", "DuPHOS-pro-S"), ("BPE-pro-R", "BPE-pro-S"))
    assert len(spec.groups["BPE-pro-S"]) == 2 and spec.temperature == 298.15
    assert not system_spec(make_cfg().system).selectivity.groups  # sn2: no groups
    cfg = make_cfg("+system.selectivity.groups.a=[1]", "+system.selectivity.groups.b=[2]")  # groups from the CLI
    check_config(cfg)
    assert system_spec(cfg.system).selectivity.compared == (("a", "b"),)


def test_cross_validation_preset_sweeps_folds(make_cfg):
    cfg = make_cfg("experiment=cross-validation")
    assert cfg.hydra.sweeper.params["validation.fold"] == "range(0,11)"
    assert cfg.tracking.experiment == "cross-validation"


def test_selectivity_without_minimized_structures_fails_naming_the_system_file(make_cfg):
    """Selectivity compares MM3* minima: with no geometry kind weighted nothing is minimized,
    which must fail while the config is read, not after a fit."""
    off = ("system.weights.bond_length=0", "system.weights.bond_angle=0", "system.weights.torsion=0")
    cfg = make_cfg("system=rh-enamide", *off)
    with pytest.raises(ConfigurationError, match=r"rh-enamide\.yaml\).*no observation kind with a weight \(eig_diag\)"):
        system_spec(cfg.system)
    cfg = make_cfg("system=rh-enamide", *off[:2])  # torsions still minimize the structures
    assert system_spec(cfg.system).settings.kinds == ("eig_diag", "torsion")


def test_optimizer_none_scores_the_start_through_the_evaluation(make_cfg, tmp_path):
    cfg = make_cfg("optimizer=none")
    check_config(cfg)
    assert job_fitter(cfg) is evaluate_system and job_fitter(make_cfg()) is fit_system
    assert run_name(cfg, JobContext(tmp_path)) == "sn2 evaluate sn2.fld (published)"
    with pytest.raises(ConfigurationError, match="fits nothing"):
        fit(None, optimizer_options(cfg))  # the optimizer API refuses it before touching the problem
