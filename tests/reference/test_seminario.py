"""Seminario / QFUERZA starting values on real QM Hessians (sn2 / CH3F, ethane)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objective"))
from objective_fixture_model import ethane_molecules, sn2_molecules  # noqa: E402

from q2mm.errors import ConfigurationError  # noqa: E402
from q2mm.model.forcefield import ParamRef  # noqa: E402
from q2mm.reference.seminario import (  # noqa: E402
    HARTREE_PER_RAD2_TO_MDYN_A,
    SeminarioSettings,
    angle_force_constant,
    bond_force_constant,
    seminario_start,
)


@pytest.fixture(scope="module")
def sn2(sn2_dir):
    return sn2_molecules(sn2_dir)


def _bonds_by_elements(molecules, a, b):
    """Per structure, the bonds between elements a and b (the role an engine assignment plays)."""
    return [[(x.i, x.j) for x in m.bonds if {m.elements[x.i], m.elements[x.j]} == {a, b}] for m in molecules]


def test_single_spring_is_recovered_exactly():
    k = 0.35  # Hartree/Bohr^2
    coords = np.array([[0.0, 0.0, 0.0], [0.6, 0.8, 0.0]])
    u = coords[1] - coords[0]
    u /= np.linalg.norm(u)
    block = k * np.outer(u, u)
    hessian = np.block([[block, -block], [-block, block]])
    assert bond_force_constant(hessian, coords, 0, 1) == pytest.approx(k, rel=1e-12)


def test_ch3f_force_constants_are_physical(sn2):
    ch3f = sn2[1]
    refs = {ParamRef(10, 1): "C-F r0", ParamRef(10, 2): "C-F k", ParamRef(11, 2): "C-H k"}
    assignments = {
        ParamRef(10, 1): _bonds_by_elements([ch3f], "C", "F"),
        ParamRef(10, 2): _bonds_by_elements([ch3f], "C", "F"),
        ParamRef(11, 2): _bonds_by_elements([ch3f], "C", "H"),
    }
    result = seminario_start([ch3f], assignments, {r: 1.0 for r in refs}, active=set(refs))
    values = result.values
    assert values[ParamRef(10, 1)] == pytest.approx(1.3986, abs=1e-3)  # B3LYP C-F length
    assert 3.0 < values[ParamRef(10, 2)] < 6.5  # MM3 C-F about 5-6 mdyn/A; Seminario runs lower
    assert 4.2 < values[ParamRef(11, 2)] < 5.3  # MM3 C-H 4.74 mdyn/A
    assert {c.ref for c in result.changes} == set(refs) and not result.skipped
    assert all(c.old == 1.0 and c.why for c in result.changes)


def test_angles_modified_seminario_and_hydrogen_rule(sn2):
    ch3f = sn2[1]
    nbrs = [[1, 2, 3, 4], [0], [0], [0], [0]]
    plain = angle_force_constant(ch3f.hessian, ch3f.coords, 2, 0, 3) * HARTREE_PER_RAD2_TO_MDYN_A
    modified = (
        angle_force_constant(ch3f.hessian, ch3f.coords, 2, 0, 3, nbrs, modified=True) * HARTREE_PER_RAD2_TO_MDYN_A
    )
    assert 0.3 < modified < plain < 1.2  # MM3 H-C-H bend about 0.55 mdyn A/rad^2
    ref = ParamRef(20, 2)
    result = seminario_start([ch3f], {ref: [[(2, 0, 3), (2, 0, 4), (3, 0, 4)]]}, {ref: 0.1}, active={ref})
    assert result.values[ref] == 0.5 and "terminal H" in result.changes[0].why
    theta = seminario_start([ch3f], {ParamRef(20, 1): [[(2, 0, 3)]]}, {ParamRef(20, 1): 0.0}, active={ParamRef(20, 1)})
    assert theta.values[ParamRef(20, 1)] == pytest.approx(110.2, abs=0.5)


def test_only_active_parameters_change(sn2):
    ts, ch3f = sn2
    active_ref, frozen_ref, torsion = ParamRef(1, 2), ParamRef(2, 2), ParamRef(3, 2)
    assignments = {
        active_ref: _bonds_by_elements(sn2, "C", "H"),
        frozen_ref: _bonds_by_elements(sn2, "C", "F"),
        torsion: [[], [(2, 0, 1, 3)]],
    }
    current = {active_ref: 4.0, frozen_ref: 5.5, torsion: 0.8, ParamRef(9, 9): 3.0}
    result = seminario_start(sn2, assignments, current, active={active_ref, torsion})
    assert result.values[frozen_ref] == 5.5 and result.values[ParamRef(9, 9)] == 3.0
    assert result.values[torsion] == 0.0
    assert {c.ref for c in result.changes} == {active_ref, torsion}
    assert 4.2 < result.values[active_ref] < 6.0  # mean over the TS (short C-H) and CH3F


def test_ts_curvature_is_inverted_first(sn2):
    ts = sn2[0]
    ref = ParamRef(5, 2)
    cf = {ref: _bonds_by_elements([ts], "C", "F")}
    inverted = seminario_start([ts], cf, {ref: 0.0}, {ref}).values[ref]
    raw = seminario_start([ts], cf, {ref: 0.0}, {ref}, SeminarioSettings(invert_ts_curvature=False)).values[ref]
    assert inverted > raw  # the reaction mode (F-C-F antisymmetric stretch) becomes stiff
    linear = seminario_start([ts], {ParamRef(6, 2): [[(1, 0, 2)]]}, {ParamRef(6, 2): 0.0}, {ParamRef(6, 2)})
    assert linear.skipped and "linear" in linear.skipped[0][1]


def test_ethane_and_bad_mapping(ethane_dir):
    gs = ethane_molecules(ethane_dir)[0]
    cc = ParamRef(7, 2)
    result = seminario_start([gs], {cc: _bonds_by_elements([gs], "C", "C")}, {cc: 4.49}, {cc})
    assert 2.5 < result.values[cc] < 5.0
    with pytest.raises(ConfigurationError, match="structures"):
        seminario_start([gs], {cc: [[(0, 1)], [(0, 1)]]}, {cc: 4.49}, {cc})
