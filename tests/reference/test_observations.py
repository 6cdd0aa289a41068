"""Observations, eigenmatrix, internal coordinates and statistics on real QM data (sn2, ethane)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "objective"))
from objective_fixture_model import ethane_molecules, sn2_molecules  # noqa: E402

from q2mm.errors import ConfigurationError  # noqa: E402
from q2mm.model.units import KCAL_PER_MOL_A2_TO_HARTREE_BOHR2  # noqa: E402
from q2mm.reference import stats  # noqa: E402
from q2mm.reference.eigenmatrix import eigenmatrix, invert_ts_curvature, qm_eigen_reference  # noqa: E402
from q2mm.reference.geometry import angle_values, bond_values, internal_coordinates, torsion_values, wrap_degrees  # noqa: E402
from q2mm.reference.observations import ObservationSettings, build_observations  # noqa: E402
from q2mm.reference.vibrations import eigenvalues_to_wavenumbers  # noqa: E402


@pytest.fixture(scope="module")
def sn2(sn2_dir):
    return sn2_molecules(sn2_dir)


@pytest.fixture(scope="module")
def ethane(ethane_dir):
    return ethane_molecules(ethane_dir)


# -- statistics --------------------------------------------------------------------------
def test_r2_and_rmsd_known_values():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    calc = np.array([1.1, 1.9, 3.2, 3.8])
    assert stats.rmsd(ref, calc) == pytest.approx(np.sqrt(np.mean([0.01, 0.01, 0.04, 0.04])))
    assert stats.r_squared(ref, calc) == pytest.approx(1 - 0.10 / 5.0)
    assert stats.r_squared(ref, ref) == 1.0


def test_stats_skip_zero_weight_and_wrap_torsions():
    ref = np.array([179.0, -170.0, 60.0, 0.0])
    calc = np.array([-179.0, 170.0, 61.0, 500.0])
    weight = np.array([1.0, 1.0, 1.0, 0.0])
    # 179 vs -179 is 2 degrees apart, -170 vs 170 is 20
    assert stats.rmsd(ref, calc, weight, periodic=True) == pytest.approx(np.sqrt((4 + 400 + 1) / 3))
    assert stats.r_squared(ref, calc, weight, periodic=True) < 1.0
    assert wrap_degrees(np.array([180.0, -180.0, 190.0])) == pytest.approx([-180.0, -180.0, -170.0])


# -- internal coordinates ------------------------------------------------------------------
def test_internal_coordinates_of_ethane(ethane):
    gs = ethane[0]
    ic = internal_coordinates(gs)
    assert (len(ic.bonds), len(ic.angles), len(ic.torsions)) == (7, 12, 9)
    lengths = bond_values(gs.coords, ic.bonds)
    cc = lengths[[i for i, (a, b) in enumerate(ic.bonds) if {gs.elements[a], gs.elements[b]} == {"C"}]]
    assert cc == pytest.approx([1.53], abs=0.02)
    torsions = torsion_values(gs.coords, ic.torsions)
    staggered = np.sort(np.abs(torsions))
    assert staggered[:6] == pytest.approx([60.0] * 6, abs=0.5)  # staggered: 6 gauche, 3 anti
    assert staggered[6:] == pytest.approx([180.0] * 3, abs=0.5)
    eclipsed = np.abs(torsion_values(ethane[1].coords, internal_coordinates(ethane[1]).torsions))
    assert np.all(np.minimum(np.abs(eclipsed), np.abs(eclipsed - 120.0)) < 0.5)


def test_linear_angle_has_finite_gradient_and_skips_torsions(sn2):
    import jax
    import jax.numpy as jnp

    import q2mm.jaxconfig  # noqa: F401

    ts = sn2[0]
    ic = internal_coordinates(ts)
    angles = angle_values(ts.coords, ic.angles)
    assert np.max(angles) == pytest.approx(180.0, abs=1e-3)  # F-C-F
    assert len(ic.torsions) == 0
    exact = np.array(ts.coords)
    exact[0] = 0.5 * (exact[1] + exact[2])  # C exactly between the two F: 180 degrees
    for x in (ts.coords, exact):
        grad = jax.grad(lambda x: jnp.sum(angle_values(x, ic.angles, xp=jnp)))(jnp.asarray(x))
        assert np.all(np.isfinite(np.asarray(grad)))


def test_torsion_sign_convention():
    x = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    assert torsion_values(x, np.array([[0, 1, 2, 3]]))[0] == pytest.approx(90.0)
    x[3, 1] = -1.0
    assert torsion_values(x, np.array([[0, 1, 2, 3]]))[0] == pytest.approx(-90.0)


# -- eigenmatrix ---------------------------------------------------------------------------
def test_eigenmatrix_of_the_qm_hessian_is_its_spectrum(sn2):
    """With H_MM = H_QM (in kcal/mol/A^2) the eigenmatrix is diagonal with the QM eigenvalues."""
    for mol in sn2:
        ref = qm_eigen_reference(mol.hessian, mol.masses, mol.coords)
        h_kcal = mol.hessian / KCAL_PER_MOL_A2_TO_HARTREE_BOHR2
        calc = eigenmatrix(h_kcal, mol.masses, ref.basis)
        n = ref.n_rigid
        assert np.diag(calc)[n:] == pytest.approx(ref.raw_eigenvalues[n:], abs=1e-10)
        assert np.max(np.abs(calc[n:, n:] - np.diag(np.diag(calc)[n:]))) < 1e-10
        assert ref.basis.T @ ref.basis == pytest.approx(np.eye(3 * mol.n_atoms), abs=1e-10)


def test_ts_mode_and_weights(sn2, sn2_dir):
    obs = build_observations(sn2, ObservationSettings(kinds=("eig_diag", "eig_offdiag")))
    ts, gs = obs
    assert ts.eigen.ts_mode == 6 and gs.eigen.ts_mode is None
    printed = float(np.loadtxt(sn2_dir / "sn2-ts-frequencies.txt")[0])
    imag = eigenvalues_to_wavenumbers(ts.eigen.raw_eigenvalues[ts.eigen.ts_mode])
    assert imag == pytest.approx(printed, abs=0.5)  # -461.7 cm^-1
    assert np.all(ts.eig_diag_weight[:7] == 0.0) and np.all(ts.eig_diag_weight[7:] == 0.1)
    assert np.all(gs.eig_diag_weight[:6] == 0.0) and np.all(gs.eig_diag_weight[6:] == 0.1)
    assert np.all(ts.eig_offdiag_weight[6, :] == 0) and ts.eig_offdiag_weight[7, 8] == 0.05
    assert np.all(np.tril(ts.eig_offdiag_weight) == 0)


def test_invert_ts_curvature(sn2):
    ts = sn2[0]
    settings = ObservationSettings(invert_ts_curvature=True, ts_eigenvalue=0.7, ts_mode_weight=0.1)
    obs = build_observations([ts], settings)[0]
    assert obs.eigen.eigenvalues[obs.eigen.ts_mode] == 0.7
    assert obs.eigen.raw_eigenvalues[obs.eigen.ts_mode] < 0
    assert obs.eig_diag_weight[obs.eigen.ts_mode] == 0.1
    cart = invert_ts_curvature(ts.hessian, 1.0)
    values = np.linalg.eigvalsh(cart)
    assert values.min() > -1e-4 and np.any(np.isclose(values, 1.0))
    untouched = invert_ts_curvature(sn2[1].hessian)
    assert untouched == pytest.approx(sn2[1].hessian, abs=1e-12)


# -- observations --------------------------------------------------------------------------
def test_geometry_and_energy_observations(ethane):
    settings = ObservationSettings(kinds=("bond_length", "bond_angle", "torsion", "energy", "frequency"))
    gs, ts = build_observations(ethane, settings)
    assert gs.energy_anchor == 0 and ts.energy_anchor == 0
    assert ts.energy_ref == pytest.approx(2.9, abs=0.4)  # ethane rotation barrier, kcal/mol
    assert gs.geometry_ref["bond_length"].size == 7
    assert gs.frequency_ref.size == 18 and gs.frequency_drop == 0
    assert ts.frequency_ref.size == 17 and ts.frequency_drop == 1  # the torsion mode is imaginary
    assert gs.frequency_ref[-1] == pytest.approx(3000, abs=200)


def test_settings_reject_unknown_kinds():
    with pytest.raises(ConfigurationError, match="unknown observation kinds"):
        ObservationSettings(kinds=("bond_length", "bondz"))
    assert ObservationSettings().weight("bond_angle") == 5.0
    assert not ObservationSettings(kinds=("eig_diag",)).needs_minimum
