"""The system registry, SystemSpec settings and the errors of a damaged embedded system."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from q2mm.errors import ConfigurationError, DataNotFoundError, InputFormatError
from q2mm.paths import PACKAGE_DATA
from q2mm.reference.observations import default_weights
from q2mm.systems import _require_directory, get_spec, load_system, spec_from_config, system_names
from q2mm.systems.spec import observation_settings


def test_registry_names_every_system_of_the_issue() -> None:
    assert {
        "sn2",
        "ch3f",
        "sn2-shared",
        "rh-enamide",
        "ethane",
        "pd-allyl-xtb",
        "pd-allyl-open",
        "pd-allyl",
        "heck-relay",
        "pd-conjugate",
        "rh-conjugate",
    } == set(system_names())
    assert all(
        get_spec(name).reference for name in ("rh-enamide", "pd-allyl", "heck-relay", "pd-conjugate", "rh-conjugate")
    )
    with pytest.raises(DataNotFoundError, match="unknown system 'nope'"):
        get_spec("nope")


def test_default_weights_and_the_kinds_they_switch_on() -> None:
    assert default_weights() == {
        "eig_diag": 0.1,
        "eig_offdiag": 0.0,
        "bond_length": 10.0,
        "bond_angle": 5.0,
        "torsion": 1.0,
        "frequency": 0.0,
        "energy": 0.0,
        "charge": 0.0,
    }
    settings = observation_settings({"eig_offdiag": 0.05, "torsion": None}, invert_ts_curvature=True)
    assert settings.kinds == ("eig_diag", "eig_offdiag", "bond_length", "bond_angle")
    assert settings.eig_offdiag_weight == 0.05 and settings.invert_ts_curvature
    with pytest.raises(ConfigurationError, match="bond_lenght"):
        observation_settings({"bond_lenght": 1.0}, True)


def test_unknown_system_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="loader"):
        spec_from_config({"name": "x", "loader": "gaussian-magic", "data_dir": "x", "forcefield": "x.fld"})


def test_no_data_root_names_the_override() -> None:
    with pytest.raises(DataNotFoundError, match="no data root is set") as info:
        _require_directory(get_spec("pd-allyl"), None)
    assert "data_root=PATH" in str(info.value)
    with pytest.raises(DataNotFoundError, match="Q2MM_DATA"):
        load_system(replace(get_spec("ethane"), data_dir="ethane"), Path("/nonexistent/root"))


def copy_embedded_sn2(tmp_path: Path) -> Path:
    target = tmp_path / "sn2"
    shutil.copytree(PACKAGE_DATA / "sn2", target)
    return target


def test_embedded_system_without_metadata_says_how_to_regenerate(tmp_path: Path) -> None:
    directory = copy_embedded_sn2(tmp_path)
    (directory / "metadata.json").unlink()
    with pytest.raises(DataNotFoundError, match="metadata.json"):
        load_system(replace(get_spec("sn2"), data_dir=str(directory)))


def test_embedded_metadata_with_wrong_type_count_names_the_file(tmp_path: Path) -> None:
    directory = copy_embedded_sn2(tmp_path)
    meta = json.loads((directory / "metadata.json").read_text())
    meta["structures"]["ch3f"]["atom_types"] = ["C3", "F0"]
    (directory / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InputFormatError, match="metadata.json.*5 atom types for structure 'ch3f'"):
        load_system(replace(get_spec("sn2"), data_dir=str(directory)))


def test_embedded_hessian_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    import numpy as np

    directory = copy_embedded_sn2(tmp_path)
    np.save(directory / "ch3f-hessian.npy", np.eye(12))
    with pytest.raises(InputFormatError, match=r"ch3f-hessian.npy.*\(15, 15\)"):
        load_system(replace(get_spec("ch3f"), data_dir=str(directory)))
