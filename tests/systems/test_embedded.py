"""Embedded systems (sn2, ch3f, pd-allyl-xtb) and the shared sn2 cross-check."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.reference.vibrations import frequencies
from q2mm.systems import load_system


def angle(coords: np.ndarray, i: int, j: int, k: int) -> float:
    a, b = coords[i] - coords[j], coords[k] - coords[j]
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), np.dot(a, b))))


def distance(coords: np.ndarray, i: int, j: int) -> float:
    return float(np.linalg.norm(coords[i] - coords[j]))


@pytest.fixture(scope="module")
def sn2():
    return load_system("sn2")


def test_sn2_loads_without_any_data_root(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("Q2MM_DATA", str(tmp_path / "nowhere"))
    training = load_system("sn2")
    assert [m.title for m in training.molecules] == ["sn2-ts", "ch3f"]
    assert training.forcefield_path.name == "sn2.fld"


def test_sn2_structures_types_bonds_and_units(sn2) -> None:
    ts, ch3f = sn2.molecules
    assert ts.elements == ("C", "F", "F", "H", "H", "H") and ts.charge == -1
    assert ts.atom_types == ("C3", "F0", "F0", "H1", "H1", "H1")
    assert ch3f.elements == ("C", "F", "H", "H", "H") and ch3f.charge == 0
    assert ch3f.atom_types == ("C3", "F0", "H1", "H1", "H1")
    assert sorted((b.i, b.j) for b in ts.bonds) == [(0, k) for k in range(1, 6)]
    for molecule in (ts, ch3f):
        assert np.allclose(molecule.hessian, molecule.hessian.T, atol=1e-10)
        assert -240.0 < molecule.energy < -139.0  # Hartree
        assert 0.1 < np.diag(molecule.hessian).max() < 2.0  # Hartree/Bohr^2, not kcal/mol/A^2


def test_sn2_transition_state_is_d3h_with_one_imaginary_mode(sn2) -> None:
    ts, ch3f = sn2.molecules
    x = ts.coords
    assert ts.properties["transition_state"] and not ch3f.properties["transition_state"]
    assert abs(distance(x, 0, 1) - distance(x, 0, 2)) < 2e-3 and 1.80 < distance(x, 0, 1) < 1.90
    assert angle(x, 1, 0, 2) > 179.5
    assert all(abs(angle(x, 3 + a, 0, 3 + (a + 1) % 3) - 120.0) < 0.1 for a in range(3))
    freq = frequencies(ts.hessian, ts.masses, ts.coords)
    assert (freq < 0).sum() == 1 and -480.0 < freq[0] < -440.0  # ~460i published at this level
    assert (frequencies(ch3f.hessian, ch3f.masses, ch3f.coords) > 900.0).all()
    assert 1.37 < distance(ch3f.coords, 0, 1) < 1.42


def test_sn2_forcefield_fits_the_ts_substructure(sn2) -> None:
    ff = sn2.forcefield
    rows = ff.active_rows()
    assert [s.name for s in ff.substructures if s.opt] == [
        "SN2 transition state F...C...F (pentacoordinate carbon) OPT"
    ]
    assert all(row.substructure is not None and row.substructure.opt for row in rows)
    assert len(ff.active_refs()) == 14  # 3 bonds + 4 angles, (r0 or theta0, k) each
    assert sn2.settings.kinds == ("eig_diag", "bond_length", "bond_angle", "torsion")
    assert sn2.settings.invert_ts_curvature and sn2.settings.bond_length_weight == 10.0


def test_ch3f_alone_does_not_invert_curvature() -> None:
    training = load_system("ch3f")
    assert [m.title for m in training.molecules] == ["ch3f"]
    assert not training.settings.invert_ts_curvature


def test_shared_sn2_matches_its_files_and_the_embedded_set(sn2_dir, sn2) -> None:
    shared = load_system("sn2-shared", sn2_dir.parent)
    for mine, theirs, stem in zip(sn2.molecules, shared.molecules, ("sn2-ts", "ch3f")):
        assert theirs.atom_types == mine.atom_types
        assert theirs.energy == pytest.approx(float(np.loadtxt(sn2_dir / f"{stem}-energy.txt")), abs=1e-10)
        assert theirs.energy == pytest.approx(mine.energy, abs=1e-4)
        printed = np.loadtxt(sn2_dir / f"{stem}-frequencies.txt").ravel()
        ours = frequencies(theirs.hessian, theirs.masses, theirs.coords)
        assert np.abs(np.sort(printed)[-len(ours) :] - ours).max() < 1.0
        embedded = frequencies(mine.hessian, mine.masses, mine.coords)
        assert np.abs(embedded - ours).max() < 0.02 * np.abs(ours).max()
    assert shared.forcefield_path == sn2.forcefield_path


def test_pd_allyl_xtb_ground_state_and_attack_ts() -> None:
    training = load_system("pd-allyl-xtb")
    gs, ts = training.molecules
    assert not gs.properties["transition_state"] and ts.properties["transition_state"]
    for molecule in (gs, ts):
        assert molecule.charge == 1 and molecule.atom_types[0] == "Pd"
        assert np.allclose(molecule.hessian, molecule.hessian.T)
        pd_neighbours = sorted(molecule.elements[b.j if b.i == 0 else b.i] for b in molecule.bonds if 0 in (b.i, b.j))
        assert pd_neighbours.count("P") == 2 and pd_neighbours.count("C") >= 2
    freq = frequencies(ts.hessian, ts.masses, ts.coords)
    assert (freq < -30.0).sum() == 1
    assert "N" in ts.elements and "N" not in gs.elements
    assert training.forcefield.active_refs()
