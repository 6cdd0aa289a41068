"""MM3* atom typing: names, type numbers, and guesses from element and bonding."""

from __future__ import annotations

import pytest

from q2mm.io.atomtyp import read_atomtyp
from q2mm.io.fld import read_fld
from q2mm.io.mae import read_mae
from q2mm.io.mol2 import read_mol2
from q2mm.mm3.graph import perceive_bonds
from q2mm.mm3.typing import assign_types, guess_types, names_in_forcefield, type_names_from_numbers
from q2mm.model.molecule import Bond, Molecule


@pytest.fixture(scope="module")
def rh_molecules(rh_dir):
    return read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")


def test_numbers_map_to_macromodel_names(rh_dir):
    table = read_atomtyp(rh_dir / "atom.typ")
    assert type_names_from_numbers([250, 15, 2, 25, 1, 24, 41, 43, 53, 3], table) == (
        "RH",
        "O2",
        "C2",
        "N2",
        "C1",
        "N1",
        "H1",
        "H3",
        "P3",
        "C3",
    )


def test_given_names_win_over_numbers(rh_molecules):
    molecule = rh_molecules[0]
    result = assign_types(molecule.with_(atom_types=("Z0",) + molecule.atom_types[1:]))
    assert result.source == "names" and result.type_names[0] == "Z0"


def test_guessing_reproduces_every_mae_type_of_the_training_set(rh_dir, rh_molecules):
    """With the .mae bonds, the custom atom.typ and the names mm3.fld uses (Rh -> RH, not the
    Heck 'Rh' type), the element/bonding rules
    give MacroModel's types for all 9 structures (C1/C2/C3, N1/N2, O2, H1/H3, P3, RH)."""
    table = read_atomtyp(rh_dir / "atom.typ")
    known = names_in_forcefield(read_fld(rh_dir / "mm3.fld"))
    for molecule in rh_molecules:
        bare = molecule.with_(atom_types=None, type_numbers=None)
        result = guess_types(bare, table, known)
        differences = [
            (i + 1, want, got)
            for i, (want, got) in enumerate(zip(molecule.atom_types, result.type_names))
            if want != got
        ]
        assert differences == [], molecule.title
        assert result.source == "guessed" and len(result.guesses) == molecule.n_atoms


def test_metal_without_custom_type_is_reported_as_z0(rh_molecules):
    bare = rh_molecules[0].with_(atom_types=None, type_numbers=None)
    result = guess_types(bare)
    assert result.type_names[0] == "Z0"
    assert "atom 1 Rh: Z0" in result.report()


def test_ethane_types_from_perceived_bonds(ethane_dir):
    """Ethane's mol2 names its carbons C3 (its hydrogens 'HC', not an MM3* name): guessed
    from perceived bonds, carbons are C3 and hydrogens H1."""
    molecule = read_mol2(ethane_dir / "GS.mol2")
    bonds = tuple(perceive_bonds(molecule.elements, molecule.coords))
    assert len(bonds) == 7
    result = guess_types(molecule.with_(bonds=bonds, atom_types=None, type_numbers=None))
    expected = tuple("C3" if e == "C" else "H1" for e in molecule.elements)
    assert result.type_names == expected
    assert [t for t, e in zip(molecule.atom_types, molecule.elements) if e == "C"] == ["C3", "C3"]


def test_small_organic_rules():
    """H-C(=O)-N(H)-CH3 (amide: N2), H-C#N, and water weakly bonded (order 0) to an H."""
    elements = ("C", "O", "N", "H", "H", "C", "H", "H", "H", "C", "N", "H", "O", "H", "H")
    bonds = [
        (0, 1, 2),
        (0, 2, 1),
        (0, 3, 1),
        (2, 4, 1),
        (2, 5, 1),
        (5, 6, 1),
        (5, 7, 1),
        (5, 8, 1),
        (9, 10, 3),
        (9, 11, 1),
        (12, 13, 1),
        (12, 14, 1),
        (12, 4, 0),
    ]
    molecule = Molecule("test", elements, [[0.0, 0.0, float(i)] for i in range(15)], tuple(Bond(*b) for b in bonds))
    types = guess_types(molecule).type_names
    assert types == ("C2", "O2", "N2", "H1", "H3", "C3", "H1", "H1", "H1", "C1", "N1", "H1", "O3", "H2", "H2")


def test_plain_hydrogen_names_take_the_type_of_their_neighbour():
    """A mol2's plain 'H' after its heavy atom's given name: H1 on C and on a metal, H2 on O, H3 on
    N, H4 on a cationic N (N4/N5 as given), the given names of other atoms unchanged."""
    from q2mm.mm3.typing import resolve_generic_hydrogens

    elements = ("C", "H", "O", "H", "N", "H", "N", "H", "Rh", "H")
    bonds = [(0, 1, 1), (0, 2, 1), (2, 3, 1), (0, 4, 1), (4, 5, 1), (0, 6, 1), (6, 7, 1), (0, 8, 0), (8, 9, 1)]
    molecule = Molecule("test", elements, [[0.0, 0.0, float(i)] for i in range(10)], tuple(Bond(*b) for b in bonds))
    given = ("C3", "H", "O3", "H", "N3", "H", "N5", "H", "RH", "H")
    assert resolve_generic_hydrogens(molecule, given) == ("C3", "H1", "O3", "H2", "N3", "H3", "N5", "H4", "RH", "H1")
    assert resolve_generic_hydrogens(molecule, ("C3",) + ("H1",) * 9) == ("C3",) + ("H1",) * 9
