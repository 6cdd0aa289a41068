"""Training sets: the registry of named systems and ``load_system``.

    from q2mm.systems import load_system
    training_set = load_system("sn2")              # embedded, no data root needed
    training_set = load_system("rh-enamide", root)  # shared data under the data root
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from q2mm.errors import DataNotFoundError
from q2mm.io.fld import read_fld
from q2mm.paths import PACKAGE_DATA, data_root as default_data_root
from q2mm.systems.spec import DEFAULT_WEIGHTS, SystemSpec, TrainingSet
from q2mm.systems.supporting_info import check_layout, composed_forcefield, load_supporting_info

__all__ = ["DEFAULT_WEIGHTS", "SYSTEMS", "SystemSpec", "TrainingSet", "get_spec", "load_system", "system_directory"]


def _external(name: str, reference: str) -> SystemSpec:
    return SystemSpec(name, "supporting-info", name, f"{name}.fld", reference=reference, base_forcefield="mm3.fld")


SYSTEMS: dict[str, SystemSpec] = {spec.name: spec for spec in (
    SystemSpec("sn2", "embedded", "sn2", "sn2.fld", ("sn2-ts", "ch3f")),
    SystemSpec("ch3f", "embedded", "sn2", "ch3f.fld", ("ch3f",), invert_ts_curvature=False),
    SystemSpec("sn2-shared", "shared-sn2", "sn2", "sn2.fld", ("sn2-ts-optimized.xyz", "ch3f-optimized.xyz")),
    SystemSpec("rh-enamide", "rh-enamide", "rh-enamide", "mm3.fld", ("rh_enamide_training_set.mae",),
               reference="Donoghue et al., J. Chem. Theory Comput. 2008, 4, 1313",
               alternative_forcefields={"start": "rh_hyd_enamide_start.fld"}),
    SystemSpec("ethane", "ethane", "ethane", "ethane.fld", ("GS", "TS")),
    SystemSpec("pd-allyl-xtb", "embedded", "pd-allyl-xtb", "pd-allyl.fld"),
    _external("pd-allyl", "Wahlers et al., Nat. Commun. 2021, 12, 6508"),
    _external("heck-relay", "Rosales et al., J. Am. Chem. Soc. 2020, 142, 9700"),
    _external("pd-conjugate", "Wahlers et al., J. Org. Chem. 2021, 86, 5660"),
    _external("rh-conjugate", "Wahlers, dissertation 2022, doi:10.7274/k930bv76q4n"),
)}


def get_spec(name: str) -> SystemSpec:
    """The registered SystemSpec of a system name."""
    if name not in SYSTEMS:
        raise DataNotFoundError(f"unknown system {name!r}; known: {sorted(SYSTEMS)}")
    return SYSTEMS[name]


def system_directory(spec: SystemSpec, root: Path | None) -> Path | None:
    """Where a system's files are: absolute data_dir, package data (embedded), or under the root."""
    path = Path(spec.data_dir).expanduser()
    if path.is_absolute():
        return path
    if spec.embedded:
        return PACKAGE_DATA / path
    return None if root is None else Path(root) / path


def _require_directory(spec: SystemSpec, directory: Path | None) -> Path:
    if spec.loader == "supporting-info":
        check_layout(spec, directory)
        return directory
    if directory is None:
        raise DataNotFoundError(f"system {spec.name!r} reads {spec.data_dir}/ under the data root, and none is set: "
                                "pass data_root=PATH or set Q2MM_DATA")
    if not directory.is_dir():
        raise DataNotFoundError(f"system {spec.name!r}: {directory} does not exist; point data_root=PATH "
                                "(or Q2MM_DATA) at the directory that holds it")
    return directory


def _package_file(spec: SystemSpec, directory: Path, name: str) -> Path:
    """A force-field file: in the system directory, else shipped in q2mm/data (data_dir or name)."""
    for candidate in (directory / name, PACKAGE_DATA / spec.data_dir / name, PACKAGE_DATA / spec.name / name):
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(f"system {spec.name!r}: force field {name} is neither in {directory} nor in {PACKAGE_DATA}")


def _loaders() -> dict[str, Callable]:
    from q2mm.systems import loaders

    return {
        "embedded": loaders.load_embedded,
        "shared-sn2": loaders.load_shared_sn2,
        "rh-enamide": loaders.load_rh_enamide,
        "ethane": loaders.load_ethane,
        "supporting-info": load_supporting_info,
    }


def load_system(spec: SystemSpec | str, data_root: str | os.PathLike[str] | None = None) -> TrainingSet:
    """Load a training set: structures (types, bonds, QM Hessians), force field, settings.

    ``data_root`` defaults to :func:`q2mm.paths.data_root` (Q2MM_DATA, else ../shared/data);
    embedded systems never need it. Missing data fails before any work with DataNotFoundError.
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    root = Path(data_root) if data_root is not None else (None if spec.embedded else default_data_root())
    directory = _require_directory(spec, system_directory(spec, root))
    molecules = _loaders()[spec.loader](spec, directory)
    if spec.loader == "supporting-info":
        ff_path = composed_forcefield(spec, directory)
    else:
        ff_path = _package_file(spec, directory, spec.forcefield)
    alternatives = {name: _package_file(spec, directory, file) for name, file in spec.alternative_forcefields.items()}
    return TrainingSet(spec.name, tuple(molecules), ff_path, read_fld(ff_path), spec.settings, alternatives, spec)
