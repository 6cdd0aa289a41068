"""Config composition: every group combination, the presets, the launchers, and bad input."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from q2mm.config import check_config, register_configs
from q2mm.errors import ConfigurationError
from q2mm.paths import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"
SYSTEMS = sorted(p.stem for p in (CONF / "system").glob("*.yaml"))
SYSTEMS_IN_CONF = SYSTEMS
SCOPES = sorted(p.stem for p in (CONF / "scope").glob("*.yaml"))
STARTS = sorted(p.stem for p in (CONF / "start").glob("*.yaml"))
OPTIMIZERS = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (PROJECT_ROOT / "experiments").glob("*.yaml"))
EXPLICIT = "scope.params=[{line:120,field:2},{line:121,field:1}]"

register_configs()


@pytest.fixture(scope="module")
def hydra_init():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def test_every_issue_option_is_present():
    assert {
        "sn2",
        "ch3f",
        "sn2-shared",
        "rh-enamide",
        "ethane",
        "pd-allyl-xtb",
        "pd-allyl",
        "heck-relay",
        "pd-conjugate",
        "rh-conjugate",
    } <= set(SYSTEMS)
    assert set(SCOPES) == {"opt", "opt_fc", "opt_valence", "explicit", "file"}
    assert set(STARTS) == {"published", "qfuerza"}
    assert set(OPTIMIZERS) == {"lbfgsb", "nelder-mead", "powell", "adam", "least-squares", "none"}
    assert {"convergence", "ratio-gate", "bounds-sweep"} <= set(EXPERIMENTS)


def test_default_is_the_embedded_sn2_system(hydra_init):
    cfg = compose("config")
    assert cfg.system.name == "sn2" and cfg.system.data_dir == "package:sn2"
    assert (cfg.scope.name, cfg.start.name, cfg.optimizer.method) == ("opt", "published", "lbfgsb")
    assert cfg.ratio_tol == 0.15 and cfg.optimizer.jac == "auto"
    assert (cfg.optimizer.bounds.fc_fraction, cfg.optimizer.bounds.eq_fraction) == (0.20, 0.05)
    assert cfg.tracking.uri is None and cfg.tracking.enabled
    check_config(cfg)


def _compose_and_check(system: str, scope: str, start: str, optimizer: str):
    overrides = [f"system={system}", f"scope={scope}", f"start={start}", f"optimizer={optimizer}"]
    if scope == "explicit":
        overrides.append(EXPLICIT)
    if scope == "file":
        overrides.append("scope.path=param_eig.txt")  # read when the job builds its problem
    cfg = compose("config", overrides=overrides)
    check_config(cfg)
    assert cfg.system.name == system
    assert cfg.scope.name == scope and cfg.start.name == start
    assert cfg.optimizer.method == optimizer
    assert OmegaConf.missing_keys(cfg) == set()


def test_every_option_composes_and_checks(hydra_init):
    """Each option of each group at least once (the full product is the slow test below)."""
    for system in SYSTEMS:
        _compose_and_check(system, "opt", "published", "lbfgsb")
    for scope in SCOPES:
        _compose_and_check("rh-enamide", scope, "qfuerza", "adam")
    for optimizer in OPTIMIZERS:
        _compose_and_check("ethane", "opt_fc", "published", optimizer)


@pytest.mark.slow
@pytest.mark.parametrize("system", SYSTEMS)
def test_every_combination_composes_and_checks(hydra_init, system):
    for scope, start, optimizer in itertools.product(SCOPES, STARTS, OPTIMIZERS):
        _compose_and_check(system, scope, start, optimizer)


def test_explicit_scope_params_are_typed(hydra_init):
    cfg = compose("config", overrides=["scope=explicit", EXPLICIT])
    assert [(p.line, p.field) for p in cfg.scope.params] == [(120, 2), (121, 1)]
    with pytest.raises(ConfigCompositionException):
        compose("config", overrides=["scope=explicit", "scope.params=[{line:x,field:2}]"])


def test_explicit_scope_without_params_is_refused(hydra_init):
    with pytest.raises(ConfigurationError, match="scope.params"):
        check_config(compose("config", overrides=["scope=explicit"]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["scope=file"], "scope=file needs scope.path: a Q2MM parameter file"),
        (
            ["scope=opt", "scope.path=param_eig.txt"],
            r"scope.path=param_eig.txt goes with scope=file only \(got scope=opt\)",
        ),
    ],
)
def test_a_parameter_file_goes_with_scope_file_only(hydra_init, overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        check_config(compose("config", overrides=overrides))


@pytest.mark.parametrize(
    "override, choices",
    [
        ("optimizer.method=bfgs", "Method"),
        ("optimizer.jac=magic", "JacMode"),
        ("optimizer.on_ratio_fail=retry", "OnRatioFail"),
        ("scope.name=everything", "ScopeName"),
        ("start.name=random", "StartName"),
    ],
)
def test_enumerations_are_refused_while_composing(hydra_init, override, choices):
    """Enum-typed schema fields: a bad value never reaches check_config or an MLflow run."""
    from q2mm.optimize import choices as enums

    with pytest.raises(ConfigCompositionException) as caught:
        compose("config", overrides=[override])
    text = f"{caught.value} {caught.value.__cause__}"
    assert override.split("=")[0] in text and f"[{', '.join(getattr(enums, choices))}]" in text


def test_optimizer_schema_is_the_domain_options():
    """One source of the optimizer's options and defaults: OptimizerOptions (less ratio_tol)."""
    import dataclasses

    from q2mm.config import OptimizerConfig, optimizer_options
    from q2mm.optimize import OptimizerOptions

    domain = {f.name: f for f in dataclasses.fields(OptimizerOptions)}
    schema = {f.name: f for f in dataclasses.fields(OptimizerConfig)}
    assert set(domain) - set(schema) == {"ratio_tol"} and set(schema) <= set(domain)
    defaults = OptimizerOptions()
    for name in schema:
        if name != "bounds":
            assert getattr(OptimizerConfig(), name) == getattr(defaults, name), name
    assert dataclasses.asdict(OptimizerConfig().bounds) == defaults.bounds.as_dict()
    cfg = OmegaConf.structured({"optimizer": OptimizerConfig(), "ratio_tol": None})
    assert optimizer_options(cfg) == dataclasses.replace(defaults, ratio_tol=None)


def test_yamls_state_only_what_differs_from_the_schema():
    """No optimizer/start/tracking YAML or preset restates a schema default."""
    from q2mm.config import OptimizerConfig, RunConfig, StartConfig, TrackingConfig

    def restated(node, schema, where):
        found = []
        for key, value in node.items():
            if key in ("defaults", "hydra") or not hasattr(schema, key):
                continue
            default = getattr(schema, key)
            if isinstance(value, dict):
                found += restated(value, default, f"{where}.{key}")
            elif key not in ("name", "method") and value == default:
                found.append(f"{where}.{key}")
        return found

    found = []
    for group, schema in (("optimizer", OptimizerConfig()), ("start", StartConfig()), ("tracking", TrackingConfig())):
        for path in sorted((CONF / group).glob("*.yaml")):
            found += restated(OmegaConf.to_container(OmegaConf.load(path)), schema, str(path.relative_to(CONF)))
    top = RunConfig(optimizer=OptimizerConfig(), tracking=TrackingConfig())
    for path in sorted((PROJECT_ROOT / "experiments").glob("*.yaml")):
        node = OmegaConf.to_container(OmegaConf.load(path))
        if node.get("optimizer", {}).get("jac") == "auto":  # ratio-gate: jac=auto whatever optimizer= says
            del node["optimizer"]["jac"]
        found += restated(node, top, path.name)
    assert found == []


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.bounds.fc_fraction=-0.5", "fc_fraction"),
        ("ratio_tol=-1", "ratio_tol"),
    ],
)
def test_check_config_names_the_bad_key(hydra_init, override, message):
    with pytest.raises(ConfigurationError, match=message):
        check_config(compose("config", overrides=[override]))


def test_ratio_tol_null_is_the_only_none(hydra_init):
    assert compose("config", overrides=["ratio_tol=null"]).ratio_tol is None
    assert compose("config", overrides=["ratio_tol=0.3"]).ratio_tol == 0.3
    for junk in ("abc", "None", "none"):
        with pytest.raises(ConfigCompositionException):
            compose("config", overrides=[f"ratio_tol={junk}"])


def test_unknown_system_and_unknown_key_fail(hydra_init):
    with pytest.raises(MissingConfigException, match="system/nope"):
        compose("config", overrides=["system=nope"])
    for override in ("foo=1", "optimizer.bounds.fc=0.1", "system.weights.color=1"):
        with pytest.raises(ConfigCompositionException):
            compose("config", overrides=[override])


def test_appended_keys_are_refused_before_work(hydra_init):
    for override in ("+foo=1", "+optimizer.bounds.fc=0.1", "+system.weights.color=1"):
        with pytest.raises(ConfigurationError, match="unknown key"):
            check_config(compose("config", overrides=[override]))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(hydra_init, experiment):
    cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    check_config(cfg)
    assert cfg.tracking.experiment == experiment
    start = "qfuerza" if experiment == "qfuerza-fit" else "published"
    assert (cfg.scope.name, cfg.start.name, cfg.optimizer.method, cfg.ratio_tol) == ("opt", start, "lbfgsb", 0.15)


def test_poor_start_presets_widen_the_bounds(hydra_init):
    """The presets of docs/runner.md, "Fitting from a poor start", as measured on rh-enamide."""
    qfuerza = compose("config", overrides=["experiment=qfuerza-fit", "system=rh-enamide"])
    assert (qfuerza.optimizer.bounds.fc_fraction, qfuerza.optimizer.bounds.eq_fraction) == (1.0, 0.01)
    assert qfuerza.optimizer.memory == 30
    poor = compose(
        "config", overrides=["experiment=poor-start", "system=rh-enamide", "system.forcefield=rh_hyd_enamide_start.fld"]
    )
    assert (poor.optimizer.bounds.fc_fraction, poor.optimizer.bounds.eq_fraction) == (50.0, 0.05)
    assert poor.system.forcefield == "rh_hyd_enamide_start.fld" and poor.optimizer.memory == 10
    for cfg in (qfuerza, poor):
        assert cfg.optimizer.maxiter == 400 and cfg.optimizer.line_search_steps == 5
        check_config(cfg)


def test_sweep_presets_define_their_grids(hydra_init):
    gate = compose("config", overrides=["experiment=ratio-gate"], return_hydra_config=True)
    assert set(gate.hydra.sweeper.params.system.split(",")) == set(SYSTEMS)
    bounds = compose("config", overrides=["experiment=bounds-sweep"], return_hydra_config=True)
    assert len(bounds.hydra.sweeper.params["optimizer.bounds.fc_fraction"].split(",")) >= 2
    assert len(bounds.hydra.sweeper.params["optimizer.bounds.eq_fraction"].split(",")) >= 2


def test_experiment_leaves_later_overrides_in_charge(hydra_init):
    cfg = compose("config", overrides=["experiment=convergence", "system=rh-enamide", "ratio_tol=null"])
    assert cfg.system.name == "rh-enamide" and cfg.ratio_tol is None


@pytest.mark.parametrize(
    "launcher, target",
    [
        ("basic", "BasicLauncher"),
        ("joblib", "JoblibLauncher"),
        ("submitit_local", "LocalLauncher"),
        ("submitit_slurm", "SlurmLauncher"),
        ("slurm", "SlurmLauncher"),
    ],
)
def test_launchers_compose(hydra_init, launcher, target):
    cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)


def test_slurm_preset_sets_resources(hydra_init):
    cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher.timeout_min > 0 and cfg.hydra.launcher.cpus_per_task >= 1


def test_sweep_callback_is_registered(hydra_init):
    cfg = compose("config", return_hydra_config=True)
    assert cfg.hydra.callbacks.mlflow_sweep._target_ == "q2mm.tracking.callback.MlflowSweepCallback"


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, message",
    [
        ("ratio_tol=abc", "could not be converted to Float"),
        ("system=nope", "Could not find 'system/nope'"),
        ("colour=red", "Could not override 'colour'"),
        ("optimizer.method=bfgs", "Invalid value 'bfgs', expected one of [lbfgsb, nelder-mead, powell, adam"),
    ],
)
def test_cli_rejects_bad_input_before_any_work(tmp_path: Path, override, message):
    store = tmp_path / "store" / "mlflow.db"
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "q2mm.run", override, f"tracking.uri=sqlite:///{store}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert not (tmp_path / "outputs").exists() and not store.exists()


def test_system_files_are_the_systems_registry(hydra_init):
    """conf/system/*.yaml is the registry: Hydra's composed system and q2mm.systems.get_spec agree."""
    from q2mm.pipeline import system_spec
    from q2mm.systems import get_spec, system_names

    assert set(system_names()) == set(SYSTEMS_IN_CONF)
    for name in SYSTEMS_IN_CONF:
        assert system_spec(compose("config", overrides=[f"system={name}"]).system) == get_spec(name), name
