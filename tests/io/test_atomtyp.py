"""MacroModel atom types: standard table and the shared custom atom.typ."""

from __future__ import annotations

from pathlib import Path

import pytest

from q2mm.errors import UnknownAtomTypeError
from q2mm.io.atomtyp import STANDARD_TYPES, read_atomtyp, standard_table
from q2mm.io.mae import read_mae
from q2mm.io.mmo import read_mmo


def test_standard_numbers_names_elements():
    expect = {1: "C1", 2: "C2", 3: "C3", 15: "O2", 16: "O3", 24: "N1", 25: "N2", 26: "N3", 41: "H1", 43: "H3"}
    for number, name in expect.items():
        assert STANDARD_TYPES[number].name == name
    assert STANDARD_TYPES[26].element == "N" and STANDARD_TYPES[41].element == "H"
    assert STANDARD_TYPES[22].formal_charge == -1 and STANDARD_TYPES[32].formal_charge == 1
    assert len({t.name for t in STANDARD_TYPES.values()}) == len(STANDARD_TYPES)


def test_custom_atomtyp(rh_dir: Path):
    table = read_atomtyp(rh_dir / "atom.typ")
    rh = table.get(250)
    assert (rh.name, rh.element, rh.formal_charge) == ("RH", "Rh", 1)
    assert rh.mass == pytest.approx(102.9055)
    assert rh.line == 30 and "enamides: Rh" in rh.description
    pd = table.get(201)
    assert (pd.name, pd.element, pd.formal_charge) == ("Pd", "Pd", 1)
    assert table.get(205).element == "X"  # dummy atom, atomic number -2
    assert table.get(62).name == "Z0"
    assert table.get(3).name == "C3"  # standard types still resolve
    assert table.by_name("P1").number == 254


def test_unknown_type_names_the_number():
    with pytest.raises(UnknownAtomTypeError, match="250"):
        standard_table().get(250, where="x.mae", line=7)


@pytest.mark.parametrize("k", [1, 2, 4, 6, 7, 8])
def test_type_names_match_macromodel_connection_tables(rh_dir: Path, k: int):
    """The names our table gives each mae type number are those MacroModel printed."""
    molecules = read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")
    printed = read_mmo(rh_dir / "macromodel" / f"structure_{k}.mmo").type_names
    assert molecules[k - 1].atom_types == printed
