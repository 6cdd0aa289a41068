"""The bench's view of a run: the runner's Hydra config and the fit problem built from it.

Composition uses the runner's own ``conf/`` and schemas (q2mm.config), and the problem is
built by the runner's glue (q2mm.pipeline), so a bench measures exactly what
``python -m q2mm.run`` with the same overrides would fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from q2mm.errors import ConfigurationError
from q2mm.paths import CONF_DIR, data_root


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The runner's config with Hydra overrides (``system=rh-enamide``, ``scope=opt_fc``...), checked."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from q2mm.config import check_config, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    check_config(cfg)
    return cfg


def searchpath_override(config_dir: Path) -> str:
    """The Hydra override that adds a user's config directory (``--config-dir``) to the search
    path, so its ``system/NAME.yaml`` composes like the shipped ones."""
    if not config_dir.is_dir():
        raise ConfigurationError(f"--config-dir {config_dir}: expected a directory holding system/NAME.yaml")
    return f"hydra.searchpath=[file://{config_dir.resolve()}]"


def load_training_set(cfg: DictConfig) -> Any:
    """The configured system's TrainingSet (embedded systems need no data root)."""
    from q2mm.pipeline import system_spec
    from q2mm.systems import load_system

    spec = system_spec(cfg.system)
    return load_system(spec, None if spec.embedded else data_root(cfg.data_root))


def first_structures(training_set: Any, count: int) -> Any:
    """The training set cut to its first ``count`` structures."""
    if not 1 <= count <= len(training_set.molecules):
        raise ConfigurationError(f"{count} structures requested; {training_set.name} has {len(training_set.molecules)}")
    return dataclasses.replace(training_set, molecules=tuple(training_set.molecules[:count]))


def one_structure(training_set: Any, index: int) -> Any:
    """The training set cut to structure ``index`` (0-based) alone."""
    return dataclasses.replace(training_set, molecules=(training_set.molecules[index],))


def largest_structure(training_set: Any) -> int:
    """0-based index of the structure with the most atoms (the first of equals)."""
    sizes = [m.n_atoms for m in training_set.molecules]
    return sizes.index(max(sizes))


def repeated_structures(training_set: Any, count: int) -> Any:
    """A training set of ``count`` structures made by repeating the set's own in order (e.g. 27
    from nine): the same shapes, so cost against structures is measured without new data."""
    molecules = tuple(training_set.molecules)
    return dataclasses.replace(training_set, molecules=tuple(molecules[i % len(molecules)] for i in range(count)))


def every_parameter_scope(training_set: Any) -> list[tuple[int, int]]:
    """(line, field) of every force-field value the structures use: an explicit scope. Values
    outside their kind's sanity bounds (no fit may start there, ``q2mm.optimize.bounds``; e.g.
    MM3's -0.077 in the H1 vdW row's reduction field) are left out."""
    from q2mm.mm3.engine import MM3Model
    from q2mm.optimize.bounds import param_class

    ff = training_set.forcefield
    model = MM3Model.build(list(training_set.molecules), ff)
    scope = []
    for ref in model.param_refs:
        low, high = param_class(ff.kind(ref)[0]).sanity
        if low <= ff.value(ref) <= high:
            scope.append((int(ref.line), int(ref.field)))
    return scope
