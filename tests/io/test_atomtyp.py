"""MacroModel atom types: standard table and the shared custom atom.typ."""

from __future__ import annotations

from pathlib import Path

import pytest

from q2mm.errors import InputFormatError, UnknownAtomTypeError
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


STOCK_ATOMTYP = """\
# MacroModel atom type file, version: 6.51 (stock layout: blank-separated, '!' = unspecified)
#&sp3 carbon
  3    6   12.0110     C3     4     1.90      T      F      !  3.0       T       !     !         !      !    0  C3        3   !
#&hydrogen on carbon
 41    1    1.0080     H1     1     1.20      T      F      !  1.5       T       !     !         !      !    0  H1        1   !  # trailing comment
#&PI dummy atom
150    !        !      PI     0     !         F      F      !  !         F       !     !         !      !    !  PI        0   !
#&generalized types
151    !        !      GA     !     !         F      F      !  !         F       !     !         !      !    !  GA        0   !
152    !        !      GB     !     !         F      F      !  !         F       !     !         !      !    !  GB        0   !
#&Palladium, named as a user's file may name it
201   46  106.42       PD    20     1.70      T      F      !  2.2       T       !     !         !      !   +1  NCA       2   !
"""


def test_stock_atomtyp_with_placeholder_rows_reads(tmp_path: Path):
    """A stock-layout file: '!' atomic number and mass (PI 150, GA/GB 151+), trailing comments."""
    path = tmp_path / "atom.typ"
    path.write_text(STOCK_ATOMTYP)
    table = read_atomtyp(path)
    assert (table.get(150).name, table.get(150).element, table.get(150).mass) == ("PI", "X", None)
    assert (table.get(151).name, table.get(152).name) == ("GA", "GB")
    assert table.get(151).element == "X"  # generalized, not gallium
    assert table.get(41).mass == pytest.approx(1.008) and table.get(41).description == "hydrogen on carbon"
    pd = table.get(201)
    assert (pd.name, pd.element, pd.formal_charge) == ("PD", "Pd", 1)
    assert table.by_name("PD").number == 201
    assert table.by_name("Pd").number == 201  # MacroModel compares type names without regard to case
    assert table.by_name("cl").name == "Cl"


def test_atomtyp_row_without_a_name_names_file_and_line(tmp_path: Path):
    path = tmp_path / "atom.typ"
    path.write_text("# header\n201 46\n")
    with pytest.raises(InputFormatError, match=r"atom.typ:2: expected an atom type line with 16\+ columns"):
        read_atomtyp(path)
    path.write_text("201 46 heavy PD" + " !" * 12 + "\n")
    with pytest.raises(InputFormatError, match=r"atom.typ:1: expected the mass in column 3"):
        read_atomtyp(path)
