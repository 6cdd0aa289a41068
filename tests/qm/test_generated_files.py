"""The embedded data files are exactly what their generator recorded in metadata.json."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from q2mm.io.xyz import read_xyz
from q2mm.paths import PACKAGE_DATA, PROJECT_ROOT
from q2mm.reference.vibrations import frequencies

SYSTEMS = {
    "sn2": "q2mm.qm.generate_sn2",
    "pd-allyl-xtb": "q2mm.qm.generate_pd_allyl",
    "pd-allyl-open": "q2mm.qm.generate_pd_allyl_open",
}


def metadata(system: str) -> dict:
    return json.loads((PACKAGE_DATA / system / "metadata.json").read_text())


@pytest.mark.parametrize("system", SYSTEMS)
def test_metadata_records_method_programs_and_generator(system: str) -> None:
    meta = metadata(system)
    assert meta["generator"] == f"python -m {SYSTEMS[system]}"
    assert meta["level_of_theory"]["method"] and meta["units"]["hessian"].startswith("Hartree/Bohr^2")
    assert all(re.match(r"\d+\.\d+", version) for version in meta["programs"].values())
    for record in meta["structures"].values():
        assert {"energy_hartree", "frequencies_cm1", "atom_types", "bonds", "elements", "files"} <= set(record)


@pytest.mark.parametrize("system", SYSTEMS)
def test_shipped_files_match_their_recorded_hashes(system: str) -> None:
    for record in metadata(system)["structures"].values():
        for name, digest in record["files"].items():
            assert hashlib.sha256((PACKAGE_DATA / system / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("system", SYSTEMS)
def test_xyz_energy_frequencies_and_hessian_agree_with_metadata(system: str) -> None:
    directory = PACKAGE_DATA / system
    for stem, record in metadata(system)["structures"].items():
        molecule = read_xyz(directory / f"{stem}.xyz")
        assert list(molecule.elements) == record["elements"]
        comment_energy = float(re.search(r"E = (-?\d+\.\d+) Hartree", molecule.title).group(1))
        assert comment_energy == pytest.approx(record["energy_hartree"], abs=1e-9)
        listed = np.loadtxt(directory / f"{stem}-frequencies.txt")
        assert np.allclose(listed, record["frequencies_cm1"], atol=1e-3)
        hessian = np.load(directory / f"{stem}-hessian.npy")
        ours = frequencies(hessian, molecule.masses, molecule.coords)
        assert np.abs(ours - np.array(record["frequencies_cm1"])).max() < 0.5
        assert (ours < -30.0).sum() == (1 if record["transition_state"] else 0) == record["n_imaginary"]


@pytest.mark.slow
@pytest.mark.heavy
def test_regenerating_ch3f_reproduces_the_shipped_files(tmp_path: Path) -> None:
    """Runs PySCF B3LYP/6-31+G(d) (a few minutes on one core; needs the `qm` extra)."""
    pytest.importorskip("pyscf")
    pytest.importorskip("geometric")
    subprocess.run(
        [sys.executable, "-m", "q2mm.qm.generate_sn2", "--only", "ch3f", "--out", str(tmp_path)],
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    new = json.loads((tmp_path / "metadata.json").read_text())["structures"]["ch3f"]
    old = metadata("sn2")["structures"]["ch3f"]
    assert new["energy_hartree"] == pytest.approx(old["energy_hartree"], abs=1e-8)
    assert np.allclose(new["frequencies_cm1"], old["frequencies_cm1"], atol=0.5)
    assert np.allclose(
        np.load(tmp_path / "ch3f-hessian.npy"), np.load(PACKAGE_DATA / "sn2" / "ch3f-hessian.npy"), atol=1e-5
    )


@pytest.mark.slow
@pytest.mark.heavy
def test_regenerating_pd_allyl_xtb_reproduces_the_shipped_structures(tmp_path: Path) -> None:
    """Runs the GFN2-xTB scan, TS search and finite-difference Hessians (minutes; needs the `qm` extra)."""
    pytest.importorskip("tblite")
    pytest.importorskip("geometric")
    subprocess.run(
        [sys.executable, "-m", "q2mm.qm.generate_pd_allyl", "--out", str(tmp_path)],
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    old = metadata("pd-allyl-xtb")["structures"]
    new = json.loads((tmp_path / "metadata.json").read_text())["structures"]
    for stem in old:
        assert new[stem]["energy_hartree"] == pytest.approx(old[stem]["energy_hartree"], abs=1e-7)
        assert new[stem]["atom_types"] == old[stem]["atom_types"] and new[stem]["bonds"] == old[stem]["bonds"]
        shipped = read_xyz(PACKAGE_DATA / "pd-allyl-xtb" / f"{stem}.xyz").coords
        assert np.abs(read_xyz(tmp_path / f"{stem}.xyz").coords - shipped).max() < 1e-3


@pytest.mark.slow
@pytest.mark.heavy
def test_regenerating_one_pd_allyl_open_structure_reproduces_its_files(tmp_path: Path) -> None:
    """One ground state of pd-allyl-open with --only (about a minute on one core; needs the `qm` extra)."""
    pytest.importorskip("tblite")
    pytest.importorskip("geometric")
    stem = "gs-ph3-allyl"
    subprocess.run(
        [sys.executable, "-m", "q2mm.qm.generate_pd_allyl_open", "--only", stem, "--out", str(tmp_path)],
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    old = metadata("pd-allyl-open")["structures"][stem]
    new = json.loads((tmp_path / "metadata.json").read_text())["structures"][stem]
    assert list(json.loads((tmp_path / "metadata.json").read_text())["structures"]) == [stem]
    assert new["energy_hartree"] == pytest.approx(old["energy_hartree"], abs=1e-8)
    assert new["atom_types"] == old["atom_types"] and new["bonds"] == old["bonds"]
    assert np.allclose(new["frequencies_cm1"], old["frequencies_cm1"], atol=0.5)
    shipped = np.load(PACKAGE_DATA / "pd-allyl-open" / f"{stem}-hessian.npy")
    assert np.abs(np.load(tmp_path / f"{stem}-hessian.npy") - shipped).max() < 1e-5
