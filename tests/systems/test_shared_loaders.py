"""The shared training sets through the format-based mechanism: rh-enamide (Jaguar + Maestro) and ethane (Gaussian + mol2)."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.io.jaguar import read_jaguar_out
from q2mm.model.forcefield import ForceField
from q2mm.reference.vibrations import frequencies
from q2mm.systems import load_system
from q2mm.systems.pairing import pair


def assert_structure_basics(molecule) -> None:
    n = molecule.n_atoms
    assert molecule.coords.shape == (n, 3)
    assert molecule.hessian.shape == (3 * n, 3 * n)
    assert np.allclose(molecule.hessian, molecule.hessian.T, atol=1e-8)
    assert len(molecule.atom_types) == n
    assert molecule.bonds and all(0 <= b.i < n and 0 <= b.j < n for b in molecule.bonds)


@pytest.fixture(scope="module")
def rh(rh_dir):
    return load_system("rh-enamide", rh_dir.parent)


def test_rh_enamide_structures_types_and_forcefields(rh) -> None:
    assert len(rh.molecules) == 9
    assert [int(m.title.split()[0]) for m in rh.molecules] == list(range(1, 10))
    assert isinstance(rh.forcefield, ForceField) and rh.forcefield_path.name == "mm3.fld"
    assert rh.forcefield.active_refs()  # the published OPT substructure
    assert rh.alternative_forcefields["start"].name == "rh_hyd_enamide_start.fld"
    for molecule in rh.molecules:
        assert_structure_basics(molecule)
        assert molecule.elements[0] == "Rh" and molecule.atom_types[0] == "RH"
        assert molecule.charge == 1
        assert {"P", "N", "O", "C", "H"} <= set(molecule.elements)


def test_rh_enamide_jaguar_and_mae_share_one_frame(rh) -> None:
    for molecule in rh.molecules:
        pairing = molecule.properties["pairing"]
        assert not pairing["rotated"] and pairing["rmsd"] < 1e-4  # mae rounds to 4 decimals


def test_rh_enamide_hessian_reproduces_jaguar_frequencies(rh, rh_dir) -> None:
    molecule = rh.molecules[0]
    printed = read_jaguar_out(rh_dir / "jaguar" / "1ZDMPfromJCTCSI_loner1.out").frequencies
    ours = frequencies(molecule.hessian, molecule.masses, molecule.coords)
    high = printed > 100.0
    assert np.abs(ours[-len(printed) :][high] - printed[high]).max() < 0.1
    assert (ours < -100).sum() == 1 and molecule.properties["transition_state"]


def test_rh_enamide_hessian_units_are_hartree_per_bohr2(rh) -> None:
    # A C-H stretch force constant is ~0.3-0.4 Hartree/Bohr^2 (~5 mdyn/A); in kcal/mol/A^2 it would be ~700.
    diagonal = np.diag(rh.molecules[0].hessian)
    assert 0.1 < diagonal.max() < 2.0


def test_ethane_gs_and_ts_from_fchk_with_mol2_types(ethane_dir) -> None:
    ethane = load_system("ethane", ethane_dir.parent)
    gs, ts = ethane.molecules
    for molecule in (gs, ts):
        assert_structure_basics(molecule)
        assert set(molecule.atom_types) == {"C3", "H1"}
        assert len(molecule.bonds) == 7
    assert not gs.properties["transition_state"] and ts.properties["transition_state"]
    freq = frequencies(ts.hessian, ts.masses, ts.coords)
    assert -320 < freq[0] < -290 and freq[1] > 300  # the methyl rotation barrier mode
    assert ethane.forcefield_path.parent.name == "ethane"
    assert len(ethane.forcefield.active_refs()) == 17


def test_ethane_c_c_bond_length_plausible(ethane_dir) -> None:
    gs = load_system("ethane", ethane_dir.parent).molecules[0]
    carbons = [k for k, e in enumerate(gs.elements) if e == "C"]
    assert 1.50 < np.linalg.norm(gs.coords[carbons[0]] - gs.coords[carbons[1]]) < 1.56


def test_pairing_refuses_a_different_structure(ethane_dir) -> None:
    from q2mm.errors import PairingError
    from q2mm.io.gaussian import read_fchk
    from q2mm.io.mol2 import read_mol2

    qm = read_fchk(ethane_dir / "GS.fchk")
    eclipsed = read_mol2(ethane_dir / "TS.mol2")  # the other conformer
    with pytest.raises(PairingError, match=r"TS.mol2.*GS.fchk.*RMSD"):
        pair(qm, eclipsed)


def test_pairing_keeps_the_charge_sets_of_both_files(ethane_dir) -> None:
    """A geometry file's charges (Jaguar ESP in a .mae) join the QM file's; the QM file's own win."""
    from q2mm.io.gaussian import read_gaussian_log
    from q2mm.io.mol2 import read_mol2

    qm = read_gaussian_log(ethane_dir / "GS.log").molecule
    geometry = read_mol2(ethane_dir / "GS.mol2")
    esp = ("Jaguar ESP (.mae)", np.linspace(-0.3, 0.3, geometry.n_atoms))
    stale = ("an older Mulliken table", np.zeros(geometry.n_atoms))
    tagged = geometry.with_(properties={**geometry.properties, "qm_charge_sets": {"esp": esp, "mulliken": stale}})
    sets = pair(qm, tagged).properties["qm_charge_sets"]
    assert sets["esp"] is esp and sets["mulliken"] is qm.properties["qm_charge_sets"]["mulliken"]
