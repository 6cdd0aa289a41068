"""Maestro .mae reader on the shared rh-enamide structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from q2mm.io.mae import parse_mae, read_mae
from q2mm.io.mmo import read_mmo


@pytest.fixture(scope="module")
def training(rh_dir: Path):
    return read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")


def test_training_set_has_nine_structures(training):
    assert len(training) == 9
    assert [m.n_atoms for m in training] == [36, 38, 38, 62, 62, 58, 58, 58, 58]
    assert training[0].title == "1 ZDMP from JCTC SI"


def test_first_structure_atoms(training):
    m = training[0]
    assert m.elements[:4] == ("Rh", "O", "C", "N")
    assert m.type_numbers[:4] == (250, 15, 2, 25)
    assert m.atom_types[:4] == ("RH", "O2", "C2", "N2")
    np.testing.assert_allclose(m.coords[1], [0.0, 0.0, 2.2155])
    assert m.formal_charges[0] == 1 and sum(m.formal_charges) == 1 and m.charge == 1
    assert m.coords.dtype == np.float64


def test_bonds_are_zero_based_with_orders(training):
    m = training[0]
    assert len(m.bonds) == 38
    first = {(b.i, b.j): b.order for b in m.bonds}
    assert first[(0, 12)] == 1.0
    assert first[(0, 1)] == 0.0  # zero-order Rh-O bond
    assert first[(1, 2)] == 2.0


def test_bonds_match_macromodel_connection_table(training, rh_dir: Path):
    symbol_order = {"-": 1.0, "=": 2.0, "%": 3.0, "": 0.0}
    for k in (1, 4):
        mmo = read_mmo(rh_dir / "macromodel" / f"structure_{k}.mmo")
        printed = {
            (min(a.index, j - 1), max(a.index, j - 1), symbol_order[s]) for a in mmo.atoms for j, s in a.attached
        }
        assert {(b.i, b.j, b.order) for b in training[k - 1].bonds} == printed
        np.testing.assert_allclose(training[k - 1].coords, mmo.coords, atol=5e-5)


def test_single_structure_files_match_training_set(rh_dir: Path, training):
    files = sorted((rh_dir / "mae").glob("*.mae"))
    assert len(files) == 9
    for f in files:
        (m,) = read_mae(f, rh_dir / "atom.typ")
        same = [t for t in training if t.title == m.title]
        assert len(same) == 1
        np.testing.assert_allclose(m.coords, same[0].coords)


def test_grammar_quotes_empty_values_and_comments():
    text = """{
 s_m_m2io_version
 :::
 2.0.0
}
f_m_ct {
 s_m_title
 r_m_energy
 :::
 "a \\"quoted\\" title"
 <>
 m_atom[2] {
  # index first #
  i_m_mmod_type
  r_m_x_coord
  r_m_y_coord
  r_m_z_coord
  s_m_atom_name
  :::
  1 3 0.0 0.0 0.0 "C 1"
  2 41 1.09 0.0 0.0 <>
  :::
 }
}
"""
    blocks = parse_mae(text)
    assert blocks[0].name == "" and blocks[0].properties["s_m_m2io_version"] == "2.0.0"
    ct = blocks[1]
    assert ct.properties == {"s_m_title": 'a "quoted" title', "r_m_energy": None}
    assert ct.tables["m_atom"].column("s_m_atom_name") == ["C 1", None]


def test_jaguar_esp_charges_column(tmp_path):
    """r_j_ESP_Charges and r_j_Mulliken_Charges in m_atom become the structure's QM charge sets."""
    from q2mm.io.mae import read_mae

    path = tmp_path / "hf.mae"
    path.write_text("""{ s_m_m2io_version ::: 2.0.0 }
f_m_ct {
 s_m_title
 :::
 "HF"
 m_atom[2] {
  i_m_mmod_type
  r_m_x_coord
  r_m_y_coord
  r_m_z_coord
  i_m_atomic_number
  r_j_ESP_Charges
  r_j_Mulliken_Charges
  :::
  1 45 0.0 0.0 0.0 1 0.41 0.3
  2 56 0.92 0.0 0.0 9 -0.41 -0.3
  :::
 }
}
""")
    molecule = read_mae(path)[0]
    source, charges = molecule.properties["qm_charge_sets"]["esp"]
    assert list(charges) == [0.41, -0.41] and source == "Jaguar ESP (.mae)"
    assert list(molecule.properties["qm_charge_sets"]["mulliken"][1]) == [0.3, -0.3]
