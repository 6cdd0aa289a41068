"""Molecular graph utilities: interaction lists, nonbonded pair sets, bond perception."""

from __future__ import annotations

import pytest

from q2mm.io.mae import read_mae
from q2mm.io.mmo import read_mmo
from q2mm.mm3 import graph as g
from q2mm.mm3.graph import MolecularGraph, perceive_bonds


@pytest.fixture(scope="module")
def structure_1(rh_dir):
    molecule = read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")[0]
    return molecule, MolecularGraph.from_molecule(molecule), read_mmo(rh_dir / "macromodel" / "structure_1.mmo")


def test_angles_are_macromodels_bend_list(structure_1):
    _, graph, mmo = structure_1
    ours = {min(a, a[::-1]) for a in g.angles(graph)}
    assert len(ours) == len(g.angles(graph)) == 78
    assert ours == {min(r.atoms0, r.atoms0[::-1]) for r in mmo.bends}


def test_torsions_are_unique_and_cover_macromodels_list(structure_1):
    _, graph, mmo = structure_1
    torsions = g.torsions(graph)
    keys = {min(t, t[::-1]) for t in torsions}
    assert len(keys) == len(torsions)
    assert {min(r.atoms0, r.atoms0[::-1]) for r in mmo.torsions} <= keys


def test_out_of_plane_centres_skip_zero_order_bonds(structure_1):
    _, graph, mmo = structure_1
    centres = dict(g.out_of_plane_centres(graph))
    # C5 has four neighbours, one of them Rh by a zero-order bond: still a 3-bond centre.
    assert centres[4] == (3, 6, 5)
    assert {r.atoms0[1] for r in mmo.impropers} <= set(centres)


def test_pair_sets_partition_like_macromodels_nonbonded_list(structure_1):
    molecule, graph, mmo = structure_1
    p12, p13, p14 = g.bond_pairs(graph), g.pairs_13(graph), g.pairs_14(graph)
    assert not (p12 & p13) and not (p12 & p14) and not (p13 & p14)
    listed = {tuple(sorted(r.atoms0)) for r in mmo.nonbonded}
    assert not listed & (p12 | p13)  # 1-2 and 1-3 pairs are excluded ...
    assert p14 <= listed  # ... 1-4 pairs are all evaluated
    assert len(p12) == len(molecule.bonds) == 38


def test_bond_perception_finds_the_covalent_skeleton(structure_1):
    """Distances alone recover every .mae bond except the 1.69 A C...H partial bond of the
    hydride transfer, and add Rh-C6 (2.3 A, the eta-2 alkene carbon, drawn without a bond)."""
    molecule, _, _ = structure_1
    perceived = {(b.i, b.j) for b in perceive_bonds(molecule.elements, molecule.coords)}
    drawn = {tuple(sorted((b.i, b.j))) for b in molecule.bonds}
    assert drawn - perceived == {(5, 17)}
    assert perceived - drawn == {(0, 5)}


def test_perceived_bond_orders_match_the_drawn_ones(rh_dir):
    """Valence-driven orders reproduce every .mae order (C=O, C=C, C#N, Rh-P/Rh-H single,
    Rh-O and Rh-C zero), up to the Kekule structure of benzene rings: the per-atom sum of
    orders agrees everywhere away from the two connectivity differences."""
    for molecule in read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ"):
        perceived = {(b.i, b.j): b.order for b in perceive_bonds(molecule.elements, molecule.coords)}
        drawn = {tuple(sorted((b.i, b.j))): int(b.order) for b in molecule.bonds}
        for atom in range(molecule.n_atoms):
            if atom in (0, 5, 17):
                continue
            total_p = sum(o for p, o in perceived.items() if atom in p)
            total_d = sum(o for p, o in drawn.items() if atom in p)
            assert total_p == total_d, (molecule.title, atom + 1)
        assert perceived[(0, 1)] == 0 and perceived[(0, 4)] == 0 and perceived[(6, 7)] == 3


def test_orders_for_a_small_organic_molecule():
    """Acetonitrile-acetaldehyde-like fragments: C#N triple, C=O double, C-H single."""
    symbols = ["C", "C", "N", "H", "H", "H"]
    coords = [[0, 0, 0], [1.46, 0, 0], [2.62, 0, 0], [-0.36, 1.03, 0], [-0.36, -0.51, 0.89], [-0.36, -0.51, -0.89]]
    orders = {(b.i, b.j): b.order for b in perceive_bonds(symbols, coords)}
    assert orders == {(0, 1): 1, (1, 2): 3, (0, 3): 1, (0, 4): 1, (0, 5): 1}


def test_bad_bonds_are_refused():
    with pytest.raises(ValueError, match="not between two"):
        MolecularGraph.from_bonds(3, [(0, 3, 1)])


def test_structures_whose_parts_disagree_are_user_errors():
    import numpy as np

    from q2mm.errors import Q2MMError
    from q2mm.model.molecule import Molecule

    with pytest.raises(Q2MMError, match=r"^water \(w\.xyz\): coords shape \(3, 3\) does not match 2 atoms"):
        Molecule(title="water", elements=("O", "H"), coords=np.zeros((3, 3)), source="w.xyz")
    with pytest.raises(Q2MMError, match="Hessian shape"):
        Molecule(title="oh", elements=("O", "H"), coords=np.zeros((2, 3)), hessian=np.zeros((5, 5)))
    with pytest.raises(Q2MMError, match="not between two"):
        MolecularGraph.from_bonds(3, [(0, 3, 1)])
