"""Tripos mol2 with MM3 type names in the type column."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from q2mm.io.gaussian import read_gaussian_log
from q2mm.io.mol2 import read_mol2, read_mol2_all

AMIDE = """\
@<TRIPOS>MOLECULE
formamide fragment
 4 3 0 0 0
SMALL
USER_CHARGES

@<TRIPOS>ATOM
      1 C1     0.0000    0.0000    0.0000 C2      1  UNL1        0.5000
      2 O2     1.2200    0.0000    0.0000 O2      1  UNL1       -0.5000
      3 N3    -0.7000    1.1500    0.0000 N.am    1  UNL1       -0.4000
      4 Rh4   -0.7000   -1.9000    0.0000 RH      1  UNL1        1.4000
@<TRIPOS>BOND
     1     1     2    2
     2     1     3   am
     3     1     4   nc
@<TRIPOS>MOLECULE
benzene bond
 2 1
SMALL
NO_CHARGES
@<TRIPOS>ATOM
 1 C 0.0 0.0 0.0 CA
 2 C 1.39 0.0 0.0 CA
@<TRIPOS>BOND
 1 1 2 ar
"""


def test_bond_types_are_kept_and_mapped(tmp_path: Path) -> None:
    path = tmp_path / "two.mol2"
    path.write_text(AMIDE, encoding="utf-8")
    first, second = read_mol2_all(path)
    assert first.title == "formamide fragment"
    assert first.elements == ("C", "O", "N", "Rh")
    assert first.atom_types == ("C2", "O2", "N.am", "RH")
    assert [(b.i, b.j, b.order) for b in first.bonds] == [(0, 1, 2.0), (0, 2, 1.0), (0, 3, 0.0)]
    assert first.properties["bond_types"] == ("2", "am", "nc")
    assert first.charge == 1
    np.testing.assert_allclose(first.properties["partial_charges"], [0.5, -0.5, -0.4, 1.4])
    assert second.bonds[0].order == 1.5 and second.properties["bond_types"] == ("ar",)
    assert second.charge == 0 and read_mol2(path).title == "formamide fragment"


def test_ethane_gs(ethane_dir: Path) -> None:
    molecule = read_mol2(ethane_dir / "GS.mol2")
    assert molecule.title == "Basic Ethane minimum"
    assert molecule.elements == ("H", "C", "H", "C", "H", "H", "H", "H")
    assert molecule.atom_types == ("HC", "C3", "HC", "C3", "HC", "HC", "HC", "HC")
    assert len(molecule.bonds) == 7 and (molecule.bonds[4].i, molecule.bonds[4].j) == (5, 3)
    assert all(b.order == 1.0 for b in molecule.bonds)
    np.testing.assert_allclose(molecule.coords[1], [-0.0001, -0.0002, 1.0901])


def test_ethane_ts_mol2_is_in_the_standard_orientation(ethane_dir: Path) -> None:
    """TS.mol2 holds Gaussian's standard orientation, not the archive (input) frame of the
    archive Hessian: pairing it with the log's Hessian needs a rotation."""
    molecule = read_mol2(ethane_dir / "TS.mol2")
    log = read_gaussian_log(ethane_dir / "TS.log")
    np.testing.assert_allclose(molecule.coords, log.standard_coords, atol=1e-4)
    assert np.abs(molecule.coords - log.molecule.coords).max() > 0.5
