"""Training sets: a system is one YAML file (schema: :class:`q2mm.systems.spec.SystemSpec`);
the registry of names is what ``conf/system/`` holds (or the ``--config-dir`` a user adds).

    from q2mm.systems import load_system
    training_set = load_system("sn2")              # shipped in q2mm/data, no data root needed
    training_set = load_system("rh-enamide", root)  # files under the data root
    training_set = load_system(get_spec("mine", config_dir=Path("my-conf")))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from q2mm.errors import ConfigurationError, DataNotFoundError
from q2mm.io.atomtyp import AtomTypeTable, read_atomtyp
from q2mm.io.fld import read_fld
from q2mm.paths import CONF_DIR, PACKAGE_DATA
from q2mm.paths import data_root as default_data_root
from q2mm.systems.forcefields import composed_forcefield
from q2mm.systems.spec import PACKAGE_PREFIX, StructureSpec, SystemSpec, TrainingSet, observation_settings
from q2mm.systems.structures import expand, load_structures, locate, select_charges

__all__ = [
    "StructureSpec",
    "SystemSpec",
    "TrainingSet",
    "get_spec",
    "load_system",
    "observation_settings",
    "system_directory",
    "system_names",
    "spec_from_config",
]

SYSTEM_CONFIG_DIR = CONF_DIR / "system"
OWN_SYSTEM_DOC = "docs/own-system.md"


def system_names(config_dir: Path | None = None) -> list[str]:
    """The registered system names: the YAML files of ``conf/system`` (and of ``config_dir/system``)."""
    dirs = [SYSTEM_CONFIG_DIR] + ([Path(config_dir) / "system"] if config_dir else [])
    return sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})


def spec_from_config(node: object, where: str = "system config") -> SystemSpec:
    """A SystemSpec from a ``system`` config node or mapping, validated against the schema;
    an error names ``where`` (the system file)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(SystemSpec), node)
        return cast(SystemSpec, OmegaConf.to_object(merged))
    except (OmegaConfBaseException, ConfigurationError) as exc:
        raise ConfigurationError(f"{where}: {exc}".splitlines()[0]) from None


def get_spec(name: str, config_dir: Path | None = None) -> SystemSpec:
    """The SystemSpec of a system name: ``config_dir/system/NAME.yaml``, else ``conf/system/NAME.yaml``."""
    for directory in ([Path(config_dir) / "system"] if config_dir else []) + [SYSTEM_CONFIG_DIR]:
        path = directory / f"{name}.yaml"
        if path.is_file():
            node = OmegaConf.load(path)
            if not isinstance(node, DictConfig):
                raise ConfigurationError(f"{path}: expected a mapping of system keys (name, data_dir, ...)")
            node.pop("defaults", None)
            return spec_from_config(node, str(path))
    raise DataNotFoundError(
        f"unknown system {name!r}; known: {system_names(config_dir)} "
        f"(a system is a YAML file in conf/system or in --config-dir DIR/system; see {OWN_SYSTEM_DOC})"
    )


def system_directory(spec: SystemSpec, root: Path | None) -> Path | None:
    """Where a system's files are: package data (``package:NAME``), an absolute path, or under the root."""
    if spec.embedded:
        return PACKAGE_DATA / spec.data_dir[len(PACKAGE_PREFIX) :]
    path = Path(spec.data_dir).expanduser()
    if path.is_absolute():
        return path
    return None if root is None else Path(root) / path


def missing_data_message(spec: SystemSpec, directory: Path | None, problem: str) -> str:
    """What to do when a system's files are not where its YAML says."""
    lines = [f"system {spec.name!r}: {problem}."]
    if spec.reference:
        lines.append(
            f"Its data are not shipped with q2mm: download the supporting information of {spec.reference} "
            f"and unpack it as {directory or '<data_root>/' + spec.data_dir}, laid out as "
            f"conf/system/{spec.name}.yaml describes."
        )
    lines.append(
        "Point q2mm at the data with data_root=PATH (or Q2MM_DATA=PATH), or set system.data_dir to an "
        f"absolute directory; to describe your own files, see {OWN_SYSTEM_DOC}."
    )
    if spec.stand_in:
        lines.append(f"To try the tool without these data: system={spec.stand_in} (shipped with q2mm).")
    return "\n".join(lines)


def _require_directory(spec: SystemSpec, directory: Path | None) -> Path:
    if directory is None:
        raise DataNotFoundError(
            missing_data_message(spec, None, f"it reads {spec.data_dir}/ under the data root, and no data root is set")
        )
    if not directory.is_dir():
        raise DataNotFoundError(missing_data_message(spec, directory, f"{directory} does not exist"))
    return directory


def atom_type_table(spec: SystemSpec, directory: Path) -> AtomTypeTable | None:
    """The system's atom.typ: as named, else ``atom.typ`` in its folder when there is one."""
    if spec.atom_types:
        path = locate(directory, spec.atom_types)
        if not path.is_file():
            raise DataNotFoundError(f"system {spec.name!r}: atom_types {path} is missing")
        return read_atomtyp(path)
    default = directory / "atom.typ"
    return read_atomtyp(default) if default.is_file() else None


def _forcefield_file(spec: SystemSpec, directory: Path, text: str, what: str) -> Path:
    path = locate(directory, text)
    if not path.is_file():
        raise DataNotFoundError(missing_data_message(spec, directory, f"the {what} {path} is missing"))
    return path


def _check_structure_files(spec: SystemSpec, directory: Path) -> None:
    """Each entry's geometry files (or, without geometry, QM files) exist, before any work."""
    for number, entry in enumerate(spec.structures, start=1):
        pattern = entry.geometry or entry.qm
        if pattern and not any(path.is_file() for path in expand(directory, pattern)):
            raise DataNotFoundError(
                missing_data_message(
                    spec, directory, f"structures entry {number}: no file {locate(directory, pattern)}"
                )
            )


def load_system(
    spec: SystemSpec | str, data_root: str | os.PathLike[str] | None = None, config_dir: Path | None = None
) -> TrainingSet:
    """Load a training set: structures (types, bonds, QM Hessians), force field, settings.

    ``data_root`` defaults to :func:`q2mm.paths.data_root` (Q2MM_DATA, else ../shared/data);
    systems shipped in the package never need it. Missing data fail before any work.
    """
    spec = get_spec(spec, config_dir) if isinstance(spec, str) else spec
    root = Path(data_root) if data_root is not None else (None if spec.embedded else default_data_root())
    directory = _require_directory(spec, system_directory(spec, root))
    published = _forcefield_file(spec, directory, spec.forcefield, "force field")
    _check_structure_files(spec, directory)
    base = locate(directory, spec.base_forcefield) if spec.base_forcefield else published
    ff_path = composed_forcefield(spec.name, published, base)
    molecules = load_structures(list(spec.structures), directory, atom_type_table(spec, directory))
    molecules = select_charges(molecules, spec.charges, spec.settings.uses("charge"))
    alternatives = {
        name: _forcefield_file(spec, directory, file, f"{name} force field")
        for name, file in spec.alternative_forcefields.items()
    }
    return TrainingSet(spec.name, molecules, ff_path, read_fld(ff_path), spec.settings, alternatives, spec)
