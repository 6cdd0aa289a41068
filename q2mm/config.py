"""Structured-config schemas for the Hydra runner (``python -m q2mm.run``).

The YAML files under ``conf/`` and ``experiments/`` are validated against these
dataclasses: a wrong type (``ratio_tol=abc``), a value outside an enumeration
(``optimizer.method=bfgs``, Enum fields from q2mm.optimize.choices), an unknown key or
an unknown group option fails at composition, before any work or MLflow run. The
``optimizer`` schema is derived from q2mm.optimize.OptimizerOptions (its fields, types
and defaults), so the domain options are built from the config in one call. Checks the
schema cannot express (appended keys, explicit scopes, ranges) live in :func:`check_config`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from q2mm.errors import ConfigurationError
from q2mm.io.params import LINE_FORMAT
from q2mm.optimize.choices import ScopeName, StartName
from q2mm.optimize.driver import OptimizerOptions
from q2mm.paths import EXPERIMENTS_DIR
from q2mm.systems.spec import ObservationWeights, SelectivitySpec, StructureSpec, SystemSpec  # noqa: F401  (re-exported)

SystemConfig = SystemSpec  # the `system` group's schema is the SystemSpec itself: one definition
SelectivityConfig = SelectivitySpec


@dataclass
class ParamRefConfig:
    """One force-field value: 1-based .fld line and value field 1..3."""

    line: int = MISSING
    field: int = MISSING


@dataclass
class ScopeConfig:
    """Which parameters are fitted."""

    name: ScopeName = ScopeName.opt
    params: list[ParamRefConfig] = field(default_factory=list)  # only for explicit
    path: str | None = None  # only for file: a Q2MM parameter file (q2mm.io.params)


@dataclass
class StartConfig:
    """Starting values of the active parameters (QFUERZA options mirror SeminarioSettings)."""

    name: StartName = StartName.published
    modified: bool = True  # modified Seminario (Allen, Payne, Cole 2018) for angles
    frequency_scale: float = 0.963  # DFT frequency scale factor
    hydrogen_angle_k: float = 0.5  # fixed force constant of angles to terminal H (mdyn A/rad^2)
    zero_torsions: bool = True  # active torsions start at 0


def schema_of(domain: type, name: str, exclude: tuple[str, ...] = ()) -> type:
    """A mutable dataclass with the fields, types and defaults of the (frozen) dataclass
    ``domain``, less ``exclude``: the Hydra schema of a domain options class, so that the
    two cannot disagree. Nested dataclass fields get a schema of their own."""
    hints = typing.get_type_hints(domain)
    spec: list[tuple[str, Any, Any]] = []
    for item in dataclasses.fields(domain):
        if item.name in exclude:
            continue
        kind = hints[item.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            kind = schema_of(kind, kind.__name__.removesuffix("Options") + "Config")
            spec.append((item.name, kind, field(default_factory=kind)))
        elif item.default is not dataclasses.MISSING:
            spec.append((item.name, kind, item.default))
        else:
            spec.append((item.name, kind, field(default_factory=item.default_factory)))
    return dataclasses.make_dataclass(name, spec, namespace={"__doc__": domain.__doc__, "__module__": __name__})


# ``ratio_tol`` is a top-level key of the run (``ratio_tol=null`` skips the gate).
OptimizerConfig = schema_of(OptimizerOptions, "OptimizerConfig", exclude=("ratio_tol",))
# A derived nested schema must be a module attribute: a composed config then pickles by
# reference into launcher workers (joblib, submitit), else "BoundsConfig is not a subclass of BoundsConfig".
BoundsConfig = next(f.type for f in dataclasses.fields(OptimizerConfig) if f.name == "bounds")


@dataclass
class TrackingConfig:
    """MLflow store. ``uri: null`` = sqlite under mlruns/ at the project root."""

    enabled: bool = True
    uri: str | None = None
    experiment: str = "q2mm"
    run_name: str | None = None
    plots: bool = True


@dataclass
class ValidationConfig:
    """Structures kept out of the fit and scored with the start and the fitted force field.

    holdout: titles or 1-based indices. folds/fold: cross-validation, fold = 0..folds-1
    holds out one contiguous block of structures (folds null: leave-one-out below
    LOO_LIMIT structures, else DEFAULT_FOLDS; see q2mm.evaluation.select).
    """

    holdout: list[str] = field(default_factory=list)
    folds: int | None = None
    fold: int | None = None


@dataclass
class RunConfig:
    """The primary config of ``python -m q2mm.run``."""

    system: SystemConfig = MISSING
    scope: ScopeConfig = MISSING
    start: StartConfig = MISSING
    optimizer: OptimizerConfig = MISSING  # type: ignore[valid-type]  # (a derived schema)
    tracking: TrackingConfig = MISSING
    ratio_tol: float | None = 0.15  # |JaxLoss(p0)/ObjectiveFunction(p0) - 1| gate; None skips it
    data_root: str | None = None  # None: Q2MM_DATA, else ../shared/data beside the checkout
    seed: int = 0
    progress: bool | None = None  # null: a score line every few seconds; true: every iteration; false: none
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    resume: str | None = None  # a run directory or MLflow run id whose checkpoint the fit continues


def register_configs() -> None:
    """Register the schemas (``<group>/schema``) and the experiments/ presets."""
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for group, node in (
        ("system", SystemConfig),
        ("scope", ScopeConfig),
        ("start", StartConfig),
        ("optimizer", OptimizerConfig),
        ("tracking", TrackingConfig),
    ):
        store.store(group=group, name="schema", node=node)
    _register_experiments(store, EXPERIMENTS_DIR)


def _register_experiments(store: ConfigStore, directory: Path) -> None:
    """Expose each ``experiments/NAME.yaml`` as ``experiment=NAME`` (package _global_)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.yaml")):
        store.store(group="experiment", name=path.stem, node=OmegaConf.load(path), package="_global_")


def _require_choice(value: str, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise ConfigurationError(f"{key}={value!r}: expected one of {', '.join(allowed)}")


def optimizer_options(cfg: DictConfig) -> OptimizerOptions:
    """q2mm.optimize.OptimizerOptions from the ``optimizer`` group and the top-level ``ratio_tol``."""
    settings = typing.cast(dict[str, Any], OmegaConf.to_container(cfg.optimizer))
    return OptimizerOptions.from_mapping(settings, ratio_tol=cfg.ratio_tol)


def unknown_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Dotted keys present in ``node`` but not in its schema dataclass (added with ``+key=``)."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return []
    known = {f.name for f in dataclasses.fields(schema)}
    found: list[str] = []
    for key in map(str, node.keys()):
        if key == "hydra":
            continue
        if key not in known:
            found.append(prefix + key)
        elif isinstance(node._get_node(key), DictConfig):
            found += unknown_keys(node[key], prefix=f"{prefix}{key}.")
    return found


def check_config(cfg: DictConfig) -> None:
    """Reject what the schema types cannot: appended keys, enumerations, explicit scopes."""
    extra = unknown_keys(cfg)
    if extra:
        raise ConfigurationError(f"unknown key(s) {', '.join(extra)}: not in the q2mm config schema")
    if cfg.scope.name == "explicit" and not cfg.scope.params:
        raise ConfigurationError("scope=explicit needs scope.params: a list of {line, field}")
    if cfg.scope.name == "file" and cfg.scope.path is None:
        raise ConfigurationError(f"scope=file needs scope.path: a Q2MM parameter file, '{LINE_FORMAT}' per line")
    if cfg.scope.name != "file" and cfg.scope.path is not None:
        raise ConfigurationError(f"scope.path={cfg.scope.path} goes with scope=file only (got scope={cfg.scope.name})")
    for ref in cfg.scope.params:
        if ref.line < 1 or ref.field not in (1, 2, 3):
            raise ConfigurationError(f"scope.params entry {dict(ref)}: line >= 1 and field in 1..3")
    for name in ("fc_fraction", "eq_fraction"):
        value = cfg.optimizer.bounds[name]
        if not value >= 0.0:  # above 1 widens the interval past the start value itself (a poor start)
            raise ConfigurationError(f"optimizer.bounds.{name}={value}: expected a relative half-width >= 0")
    folds, fold = cfg.validation.folds, cfg.validation.fold
    if folds is not None and folds < 2:
        raise ConfigurationError(f"validation.folds={folds}: expected at least 2 folds (or null)")
    if fold is not None and (fold < 0 or (folds is not None and fold >= folds)):
        raise ConfigurationError(f"validation.fold={fold}: expected 0..folds-1")
    if fold is not None and cfg.validation.holdout:
        raise ConfigurationError("validation.holdout and validation.fold both given: choose one")
    if cfg.ratio_tol is not None and cfg.ratio_tol < 0:
        raise ConfigurationError(f"ratio_tol={cfg.ratio_tol}: expected >= 0, or null to skip the gate")
