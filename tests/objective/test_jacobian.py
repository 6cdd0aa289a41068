"""JaxLoss residuals and Jacobian against the reference objective's residuals (central differences)."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.objective.jaxloss import JaxLoss
from q2mm.objective.objective import ObjectiveFunction
from q2mm.reference.observations import ObservationSettings

ALL_KINDS = ("eig_diag", "eig_offdiag", "bond_length", "bond_angle", "torsion", "frequency", "energy")
pytestmark = pytest.mark.slow  # compiles the Jacobian stage (tens of seconds cold)


def _moved(p0):
    return p0 * (1.0 + 0.02 * np.sin(np.arange(p0.size) + 1.0))


def _central_jacobian(residuals, p, rel_step=1e-5, min_step=1e-6):
    cols = []
    for i in range(p.size):
        h = max(rel_step * abs(p[i]), min_step)
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        cols.append((residuals(up) - residuals(down)) / (2 * h))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_matches_central_differences_of_reference_residuals(mode, sn2_model, sn2_pair):
    settings = ObservationSettings(kinds=ALL_KINDS)
    loss = JaxLoss(sn2_model, sn2_pair, settings, jacobian_mode=mode)
    obj = ObjectiveFunction(sn2_model, sn2_pair, settings)
    p = _moved(sn2_model.p0)
    r, jac = loss.residuals_and_jacobian(p)
    ev = obj(p)
    assert list(loss.residual_kinds) == list(ev.residual_kinds)
    np.testing.assert_allclose(r, ev.residuals, rtol=1e-6, atol=1e-9)
    assert float(r @ r) == pytest.approx(loss.value(p), rel=1e-12)
    assert jac.shape == (r.size, p.size)
    fd = _central_jacobian(lambda q: obj(q).residuals, p)
    scale = np.max(np.abs(fd))
    bad = np.abs(jac - fd) > 1e-4 * np.maximum(np.abs(fd), 1e-3 * scale)
    assert not bad.any(), [(loss.residual_kinds[i], j, jac[i, j], fd[i, j]) for i, j in zip(*np.nonzero(bad))][:5]
    # the gradient of |r|^2 is 2 J^T r
    np.testing.assert_allclose(2 * jac.T @ r, loss.value_and_grad(p)[1], rtol=1e-8, atol=1e-10 * scale)


def test_jacobian_of_active_subset(sn2_model, sn2_pair):
    settings = ObservationSettings(kinds=("eig_diag", "bond_length", "bond_angle"))
    active = np.arange(0, sn2_model.p0.size, 2)
    full = JaxLoss(sn2_model, sn2_pair, settings)
    part = JaxLoss(sn2_model, sn2_pair, settings, active=active)
    r_full, j_full = full.residuals_and_jacobian(sn2_model.p0)
    r_part, j_part = part.residuals_and_jacobian(sn2_model.p0[active])
    np.testing.assert_allclose(r_part, r_full, rtol=1e-12)
    np.testing.assert_allclose(j_part, j_full[:, active], rtol=1e-9, atol=1e-12)


def test_mm3_forward_and_reverse_jacobians_agree_and_give_the_gradient():
    """On the real MM3* engine (sn2, OPT scope): reverse mode goes through hessian_dot, forward
    mode through the Hessian's tangent; both must equal each other and 2 J^T r = grad |r|^2."""
    from q2mm.mm3.engine import MM3Model
    from q2mm.optimize.scope import ScopeSpec, align_with_model, resolve_scope
    from q2mm.systems import load_system

    ts = load_system("sn2")
    model = MM3Model.build(ts.molecules, ts.forcefield)
    active = np.asarray(align_with_model(resolve_scope(ts.forcefield, ScopeSpec("opt")), model.param_refs)[0])
    p = _moved(model.p0[active])
    out = {}
    for mode in ("forward", "reverse"):
        loss = JaxLoss(model, list(ts.molecules), ts.settings, active, jacobian_mode=mode)
        out[mode] = loss.residuals_and_jacobian(p)
    (r, jf), (r2, jr) = out["forward"], out["reverse"]
    np.testing.assert_allclose(r, r2, rtol=1e-12, atol=1e-12)
    scale = np.max(np.abs(jf))
    np.testing.assert_allclose(jf, jr, rtol=1e-7, atol=1e-9 * scale)
    np.testing.assert_allclose(2 * jf.T @ r, loss.value_and_grad(p)[1], rtol=1e-7, atol=1e-9 * scale * np.abs(r).max())


def test_fixed_geometry_jacobian_matches_central_differences_and_the_full_path():
    """CH3F (MM3*, every parameter, the hydrogen reduction factors included): the Jacobian through
    the engine's fixed-geometry functions (q2mm.mm3.fixed_geometry; eig_diag by its
    per-interaction Jacobian) equals the full Hessian assembly's to rounding and central
    differences of the same loss's residuals."""
    from q2mm.mm3.engine import MM3Model
    from q2mm.systems import load_system

    ts = load_system("ch3f")
    model = MM3Model.build(ts.molecules, ts.forcefield)
    active = np.arange(model.p0.size)
    assert model.reduction_slots().size  # reduced hydrogens: their columns take the full path
    # no eig_offdiag (the diagonal alone goes by quadratic forms), no frequencies (CH3F's
    # degenerate E modes have no derivative for central differences to match)
    settings = ObservationSettings(kinds=("eig_diag", "bond_length", "bond_angle", "torsion", "energy"))
    loss = JaxLoss(model, list(ts.molecules), settings, active, jacobian_mode="forward")
    p = _moved(model.p0[active])
    r, jac = loss.residuals_and_jacobian(p)
    assert {"eig_diag", "bond_length", "bond_angle"} <= set(loss.residual_kinds)
    full = JaxLoss(model, list(ts.molecules), settings, active, jacobian_mode="forward", fixed_geometry_jacobian=False)
    r_full, jac_full = full.residuals_and_jacobian(p)
    np.testing.assert_allclose(r, r_full, rtol=0, atol=1e-13 * np.abs(r_full).max())
    np.testing.assert_allclose(jac, jac_full, rtol=0, atol=1e-13 * np.abs(jac_full).max())
    fd = _central_jacobian(loss.residuals, p)
    scale = np.max(np.abs(fd))
    bad = np.abs(jac - fd) > 1e-4 * np.maximum(np.abs(fd), 1e-3 * scale)
    assert not bad.any(), [(loss.residual_kinds[i], j, jac[i, j], fd[i, j]) for i, j in zip(*np.nonzero(bad))][:5]
    np.testing.assert_allclose(2 * jac.T @ r, loss.value_and_grad(p)[1], rtol=1e-8, atol=1e-10 * scale)
