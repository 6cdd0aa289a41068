"""The ``charge`` observation kind on the real MM3* engine (ethane, QM Mulliken charges of the
Gaussian logs): a residual by hand, JaxLoss = ObjectiveFunction (ratio 1), the analytic
Jacobian rows against central differences, and a clear refusal without QM charges."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.errors import ConfigurationError
from q2mm.io.gaussian import read_gaussian_log
from q2mm.mm3.charges import DEBYE_PER_E_ANGSTROM
from q2mm.objective.checks import ratio
from q2mm.objective.jaxloss import JaxLoss
from q2mm.objective.objective import ObjectiveFunction
from q2mm.reference.observations import KIND_WEIGHTS, ObservationSettings

CHARGE = ObservationSettings(kinds=("charge",))
C_H_DIPOLE = 0.5  # Debye, put on the C-H rows so that MM3* charges are not all zero


@pytest.fixture(scope="module")
def ethane(ethane_dir):
    """Ethane GS/TS (MM3* types from .mol2, Hessians from .fchk) with the logs' Mulliken charges."""
    from q2mm.mm3.engine import MM3Model
    from q2mm.systems import load_system

    ts = load_system("ethane", ethane_dir.parent)
    molecules = []
    for mol in ts.molecules:
        sets = read_gaussian_log(ethane_dir / f"{mol.title}.log").molecule.properties["qm_charge_sets"]
        molecules.append(mol.with_(properties={**mol.properties, "qm_charges": sets["mulliken"][1]}))
    model = MM3Model.build(molecules, ts.forcefield)
    return model, molecules


def _charged_parameters(model) -> np.ndarray:
    """p0 with the C-H bond dipoles set (every C-H row; their r0 is 1.1120 A)."""
    p = np.array(model.p0)
    for k, ref in enumerate(model.param_refs):
        kind = model.ff.kind(ref)[0]
        row = model.ff.row(ref.line)
        if kind == "bond_dipole" and "H1" in row.atoms:
            p[k] = C_H_DIPOLE
    return p


def test_charge_residual_by_hand(ethane):
    """Each H of ethane gets -mu/(c r0) from its C-H row, each C three times +mu/(c r0):
    mu 0.5 D, r0 1.1120 A, c 4.8030 D/(e A) give q_H = -0.093617 e, q_C = +0.280850 e; the
    residual is 10 (q_QM - q_MM) per atom, the score its sum of squares."""
    model, molecules = ethane
    p = _charged_parameters(model)
    ev = ObjectiveFunction(model, molecules, CHARGE)(p)
    dq = C_H_DIPOLE / (DEBYE_PER_E_ANGSTROM * 1.1120)
    assert dq == pytest.approx(0.0936165, abs=1e-7)
    gs = molecules[0]
    expected_mm = np.array([3 * dq if e == "C" else -dq for e in gs.elements])
    expected = KIND_WEIGHTS["charge"] * (gs.properties["qm_charges"] - expected_mm)
    assert KIND_WEIGHTS["charge"] == 10.0
    result = ev.by_kind["charge"]
    np.testing.assert_allclose(result.calc[: gs.n_atoms], expected_mm, atol=1e-12)
    np.testing.assert_allclose(ev.residuals[: gs.n_atoms], expected, atol=1e-12)
    assert ev.residuals.size == sum(m.n_atoms for m in molecules)
    assert set(ev.residual_kinds) == {"charge"}
    assert ev.score == pytest.approx(float(ev.residuals @ ev.residuals), rel=1e-14)
    assert 0.0 < result.rmsd and np.isfinite(result.r2)


@pytest.mark.slow  # compiles the ethane eigenmatrix stage (12 s warm, ~100 s cold on the shared 2 cores)
def test_jaxloss_equals_reference_with_charges_on(ethane):
    """Charges beside another kind: the same rows in the same order (layout by kind) and ratio 1."""
    model, molecules = ethane
    settings = ObservationSettings(kinds=("eig_diag", "charge"))
    loss = JaxLoss(model, molecules, settings)
    objective = ObjectiveFunction(model, molecules, settings)
    p = _charged_parameters(model)
    check = ratio(loss, objective, p)
    assert abs(check.ratio - 1.0) <= 1e-9, (check.loss, check.reference)
    ev = objective(p)
    assert list(loss.residual_kinds) == list(ev.residual_kinds)
    np.testing.assert_allclose(loss.residuals(p), ev.residuals, rtol=1e-9, atol=1e-12)
    assert loss.last_info.kind_scores["charge"] == pytest.approx(ev.by_kind["charge"].score, rel=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_charge_jacobian_rows_match_central_differences(mode, ethane):
    """dq/dmu = +-1/(c r0), dq/dr0 = -+mu/(c r0^2); every other parameter leaves charges alone."""
    model, molecules = ethane
    loss = JaxLoss(model, molecules, CHARGE, jacobian_mode=mode)
    objective = ObjectiveFunction(model, molecules, CHARGE)
    p = _charged_parameters(model)
    r, jac = loss.residuals_and_jacobian(p)
    ev = objective(p)
    assert list(loss.residual_kinds) == list(ev.residual_kinds) == ["charge"] * r.size
    np.testing.assert_allclose(r, ev.residuals, rtol=1e-12, atol=1e-14)
    assert loss.value(p) == pytest.approx(ev.score, rel=1e-12)
    fd = np.empty_like(jac)
    for i in range(p.size):
        h = max(1e-6 * abs(p[i]), 1e-7)
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        fd[:, i] = (objective(up).residuals - objective(down).residuals) / (2 * h)
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-8)
    kinds = [model.ff.kind(ref)[0] for ref in model.param_refs]
    moving = {kinds[i] for i in np.flatnonzero(np.abs(jac).max(axis=0) > 0)}
    assert moving == {"bond_dipole", "bond_r0"}
    np.testing.assert_allclose(2 * jac.T @ r, loss.value_and_grad(p)[1], rtol=1e-10, atol=1e-12)


def test_charge_kind_without_qm_charges_is_refused(ethane):
    model, molecules = ethane
    bare = [m.with_(properties={k: v for k, v in m.properties.items() if k != "qm_charges"}) for m in molecules]
    with pytest.raises(ConfigurationError, match=r"charge observations need QM charges; missing for \['GS', 'TS'\]"):
        ObjectiveFunction(model, bare, CHARGE)


def test_a_charges_only_fit_finds_the_c_h_dipole_by_hand(ethane_dir, tmp_path):
    """End to end (system YAML, charges option, scope with dipoles, bounds, JaxLoss Jacobian,
    least squares): ethane's MM3* charges are q_H = -mu/(c r0) and q_C = -3 q_H, and the QM
    Mulliken charges are neutral and symmetric (q_C = -3 q_H), so the best C-H dipole makes q_H
    the mean QM hydrogen charge of GS and TS: mu = -(0.144274 + 0.147617)/2 * 4.8030 * 1.1120 D."""
    import shutil

    from q2mm.compose import fit_problem
    from q2mm.optimize import OptimizerOptions, fit
    from q2mm.paths import PACKAGE_DATA
    from q2mm.systems import get_spec, load_system

    data = tmp_path / "data"
    data.mkdir()
    for name in ("GS.log", "TS.log", "GS.mol2", "TS.mol2"):
        shutil.copy(ethane_dir / name, data / name)
    shutil.copy(PACKAGE_DATA / "ethane" / "ethane.fld", data / "ethane.fld")
    (tmp_path / "system").mkdir()
    (tmp_path / "system" / "q.yaml").write_text(
        f"name: q\ndata_dir: {data}\nforcefield: ethane.fld\n"
        'structures:\n  - {geometry: "*.mol2", qm: "{stem}.log"}\n'
        "weights: {eig_diag: 0, bond_length: 0, bond_angle: 0, torsion: 0, charge: 10}\ncharges: mulliken\n"
    )
    problem = fit_problem(load_system(get_spec("q", tmp_path)))
    result = fit(problem, OptimizerOptions(method="least-squares", maxiter=20))
    assert result.jac_resolved == "jax" and abs(result.ratio_initial - 1.0) < 1e-9
    expected = -(0.144274 + 0.147617) / 2 * DEBYE_PER_E_ANGSTROM * 1.1120
    dipoles = {
        problem.forcefield.row(ref.line).atoms: result.p_final[k]
        for k, ref in enumerate(problem.refs)
        if problem.kinds[k] == "bond_dipole"
    }
    assert dipoles[(1, "H1")] == pytest.approx(expected, abs=2e-3)
    assert dipoles[(2, "H1")] == pytest.approx(expected, abs=2e-3)
    assert result.final.score < 0.02 and result.final.by_kind["charge"].r2 > 0.999
