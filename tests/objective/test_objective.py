"""ObjectiveFunction (the reference score) and the Newton minimizers on real QM structures."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.errors import ConfigurationError
from q2mm.mm3.minimize import MinimizeOptions
from q2mm.objective.objective import ObjectiveFunction
from q2mm.reference.geometry import bond_values
from q2mm.reference.observations import ObservationSettings

ALL_KINDS = ("eig_diag", "eig_offdiag", "bond_length", "bond_angle", "torsion", "frequency", "energy")


@pytest.fixture(scope="module")
def sn2_objective(sn2_model, sn2_pair):
    return ObjectiveFunction(sn2_model, sn2_pair, ObservationSettings(kinds=ALL_KINDS))


def test_score_is_the_sum_of_weighted_squares(sn2_objective, sn2_model):
    ev = sn2_objective(sn2_model.p0)
    assert ev.all_converged and ev.messages == []
    assert set(ev.by_kind) == {"eig_diag", "eig_offdiag", "bond_length", "bond_angle", "frequency"}
    total = sum(float(np.sum((r.weight * (r.ref - r.calc)) ** 2)) for r in ev.by_kind.values())
    assert ev.score == pytest.approx(total, rel=1e-12)
    bonds = ev.by_kind["bond_length"]
    assert bonds.ref.size == 9 and np.all(bonds.weight == 10.0)
    assert 0.0 < bonds.rmsd < 0.3 and bonds.r2 < 1.0
    eig = ev.by_kind["eig_diag"]
    assert eig.ref.size == 18 + 15 and np.count_nonzero(eig.weight) == 18 + 15 - 13


def test_minimum_is_a_stationary_point_reached_from_elsewhere(sn2_objective, sn2_model, sn2_pair):
    ev = sn2_objective(sn2_model.p0)
    ch3f = sn2_pair[1]
    egh = sn2_objective._egh_real(1, np.asarray(sn2_model.p0), ch3f.n_atoms)
    shaken = ch3f.coords + np.random.default_rng(7).normal(scale=0.08, size=ch3f.coords.shape)
    from q2mm.mm3.minimize import newton_minimize

    again = newton_minimize(egh, shaken)
    assert again.converged and again.max_gradient < 1e-8
    assert bond_values(again.x, ch3f.bond_pairs()) == pytest.approx(
        bond_values(ev.minima[1], ch3f.bond_pairs()), abs=1e-8
    )


def test_failures_are_reported(sn2_model, sn2_pair):
    short = ObjectiveFunction(
        sn2_model, sn2_pair, ObservationSettings(), options=MinimizeOptions(max_iter=1, gtol=1e-14)
    )
    ev = short(sn2_model.p0 * 1.05)
    assert not ev.all_converged
    assert any("not converged" in m for m in ev.messages)


def test_bad_inputs_are_refused(sn2_model, sn2_pair, sn2_objective):
    with pytest.raises(ConfigurationError, match="structures"):
        ObjectiveFunction(sn2_model, sn2_pair[:1])
    with pytest.raises(ConfigurationError, match="QM geometry"):
        ObjectiveFunction(sn2_model, [sn2_pair[0], sn2_pair[1].with_(coords=sn2_pair[1].coords + 0.1)])
    no_hessian = [m.with_(hessian=None) for m in sn2_pair]
    with pytest.raises(ConfigurationError, match="Hessians"):
        ObjectiveFunction(sn2_model, no_hessian)
    from q2mm.objective.jaxloss import JaxLoss

    with pytest.raises(ConfigurationError, match="Hessians"):
        JaxLoss(sn2_model, no_hessian)
    with pytest.raises(ValueError, match="active"):
        sn2_objective(sn2_model.p0[:3])


def test_active_subset_changes_only_those_parameters(sn2_model, sn2_pair):
    active = np.array([4, 6])  # C-F and C-H r0
    obj = ObjectiveFunction(sn2_model, sn2_pair, ObservationSettings(kinds=("bond_length",)), active=active)
    base = obj(sn2_model.p0[active]).score
    moved = obj(sn2_model.p0[active] + np.array([-0.01, 0.0])).score
    assert moved != base
    assert obj.full_parameters(np.array([1.0, 2.0]))[[0, 4, 6]] == pytest.approx([sn2_model.p0[0], 1.0, 2.0])
