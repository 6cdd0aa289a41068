"""Pieces of the GFN2-xTB Pd-allyl generator that run in seconds (tblite needed)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tblite's OpenMP spins on the 2 shared cores otherwise
pytest.importorskip("tblite")

from q2mm.model.elements import mass  # noqa: E402
from q2mm.model.units import BOHR_IN_ANGSTROM  # noqa: E402
from q2mm.qm import generate_pd_allyl as gen  # noqa: E402
from q2mm.reference.vibrations import frequencies  # noqa: E402

WATER = ("O", "H", "H")
WATER_XYZ = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])


def test_fd_hessian_is_the_derivative_of_the_xtb_gradient() -> None:
    potential = gen.XtbPotential(WATER, charge=0)
    hessian = gen.fd_hessian(potential, WATER_XYZ)
    assert potential.evaluations == 2 * 9
    assert np.allclose(hessian, hessian.T)
    step = np.zeros(9)
    step[2] = 1e-3  # Bohr along z of O
    x0 = WATER_XYZ.ravel() / BOHR_IN_ANGSTROM
    g_plus, g_minus = potential(x0 + step)[1], potential(x0 - step)[1]
    assert np.allclose(hessian[:, 2], (g_plus - g_minus) / 2e-3, atol=1e-4)
    freqs = frequencies(hessian, np.array([mass(e) for e in WATER]), WATER_XYZ)
    assert freqs.shape == (3,) and 1300 < freqs[0] < 1800 and 3300 < freqs[1] < 4000


def test_ground_state_guess_and_attack_guess_geometry() -> None:
    symbols, coords = gen.ground_state_guess()
    assert symbols.count("Pd") == 1 and symbols.count("P") == 2 and symbols.count("C") == 3 and len(symbols) == 17
    attack_symbols, attack = gen.attack_guess(symbols, coords, 2.5)
    assert attack_symbols[-4:] == ("N", "H", "H", "H")
    nitrogen = len(symbols)
    assert np.isclose(np.linalg.norm(attack[nitrogen] - attack[gen.ATTACKED_C]), 2.5)
    assert np.linalg.norm(attack[nitrogen] - attack[0]) > np.linalg.norm(attack[gen.ATTACKED_C] - attack[0])


def test_metal_and_forming_bonds_are_zero_order_and_allyl_carbons_sp2() -> None:
    symbols, coords = gen.ground_state_guess()
    attack_symbols, attack = gen.attack_guess(symbols, coords, 2.0)
    nitrogen = len(symbols)
    bonds = gen.structure_bonds(attack_symbols, attack, (gen.ATTACKED_C, nitrogen))
    orders = {(b.i, b.j): b.order for b in bonds}
    assert orders[(gen.ATTACKED_C, nitrogen)] == 0.0
    assert all(order == 0.0 for (i, j), order in orders.items() if 0 in (i, j))
    types = gen.mm3_types(attack_symbols, attack, bonds)
    assert types[0] == "Pd" and types[1:3] == ("P3", "P3") and types[3:6] == ("C2", "C2", "C2")
    assert types[nitrogen] == "N3" and set(types[nitrogen + 1 :]) == {"H3"}
