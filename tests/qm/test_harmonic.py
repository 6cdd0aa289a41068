"""Harmonic frequencies from a Cartesian Hessian (q2mm.qm.harmonic)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from q2mm.model import elements
from q2mm.model.units import HARTREE_BOHR2_AMU_TO_CM1
from q2mm.qm.harmonic import frequencies_cm1, rigid_body_basis


def diatomic_hessian(k: float) -> np.ndarray:
    """Cartesian Hessian of a spring k (Hartree/Bohr^2) along z between two atoms."""
    block = np.zeros((3, 3))
    block[2, 2] = k
    return np.block([[block, -block], [-block, block]])


def test_diatomic_frequency_matches_the_reduced_mass_formula() -> None:
    k = 0.37  # about a C-H-like stretch
    coords = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.1]])
    freqs = frequencies_cm1(diatomic_hessian(k), coords, ("C", "H"))
    mu = elements.mass("C") * elements.mass("H") / (elements.mass("C") + elements.mass("H"))
    assert freqs.shape == (1,)  # linear: 5 rigid modes removed
    assert np.isclose(freqs[0], np.sqrt(k / mu) * HARTREE_BOHR2_AMU_TO_CM1, rtol=1e-10)


def test_negative_curvature_is_reported_as_a_negative_frequency() -> None:
    coords = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.1]])
    assert frequencies_cm1(diatomic_hessian(-0.2), coords, ("F", "F"))[0] < 0


def test_frequencies_do_not_depend_on_the_frame() -> None:
    rng = np.random.default_rng(7)
    coords = rng.normal(size=(4, 3))
    a = rng.normal(size=(12, 12))
    hessian = a @ a.T
    basis = rigid_body_basis(coords, np.array([elements.mass(e) for e in "CHHO"]))
    assert basis.shape == (12, 6)
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    big = np.kron(np.eye(4), rotation)
    rotated = frequencies_cm1(big @ hessian @ big.T, coords @ rotation.T, "CHHO")
    assert np.allclose(frequencies_cm1(hessian, coords, "CHHO"), rotated, atol=1e-8)
