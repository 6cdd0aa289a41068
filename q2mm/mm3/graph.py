"""Molecular graph utilities: neighbours, angles, torsions, nonbonded pair sets, bond perception.

Atoms are 0-based. Neighbour lists keep the order in which bonds appear in the input (the
"connection table" order MacroModel prints); interaction lists are therefore deterministic.
Bond order 0 (MacroModel's ``.`` bond: a partial bond of a transition state or a dative
metal bond) is a bond for stretches, angles and torsions, but not for out-of-plane centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from q2mm.errors import StructureError
from q2mm.model import elements as element_data
from q2mm.model.molecule import Bond, Molecule

METALS = frozenset(
    "Li Na K Rb Cs Be Mg Ca Sr Ba Sc Ti V Cr Mn Fe Co Ni Cu Zn Y Zr Nb Mo Tc Ru Rh Pd Ag Cd "
    "La Hf Ta W Re Os Ir Pt Au Hg".split()
)
# Radii for elements missing from q2mm.model.elements (Cordero et al. 2008), Angstrom.
_EXTRA_RADII = {
    "Li": 1.28,
    "Na": 1.66,
    "K": 2.03,
    "Mg": 1.41,
    "Ca": 1.76,
    "Ti": 1.60,
    "V": 1.53,
    "Cr": 1.39,
    "Mn": 1.39,
    "Os": 1.44,
    "Au": 1.36,
    "Hg": 1.32,
    "Cd": 1.44,
    "Se": 1.20,
    "As": 1.19,
    "Ge": 1.20,
    "Sn": 1.39,
    "Al": 1.21,
    "Ga": 1.22,
    "Te": 1.38,
    "Mo": 1.54,
    "W": 1.62,
    "Re": 1.51,
    "Zr": 1.75,
}


@dataclass(frozen=True)
class MolecularGraph:
    """Atoms and bonds of one structure with fast neighbour and bond-order lookup."""

    n_atoms: int
    bonds: tuple[tuple[int, int, int], ...]
    neighbours: tuple[tuple[int, ...], ...]
    _orders: dict

    @classmethod
    def from_bonds(cls, n_atoms: int, bonds) -> MolecularGraph:
        """Build from (i, j, order) triples or :class:`Bond` objects (0-based)."""
        triples = []
        nbrs: list[list[int]] = [[] for _ in range(n_atoms)]
        orders: dict[tuple[int, int], int] = {}
        for bond in bonds:
            i, j, order = (bond.i, bond.j, bond.order) if isinstance(bond, Bond) else bond
            i, j, order = int(i), int(j), int(round(order))
            if i == j or not (0 <= i < n_atoms and 0 <= j < n_atoms):
                raise StructureError(f"bond {i}-{j} is not between two of the {n_atoms} atoms")
            if (i, j) in orders:
                continue
            triples.append((i, j, order))
            nbrs[i].append(j)
            nbrs[j].append(i)
            orders[(i, j)] = orders[(j, i)] = order
        return cls(n_atoms, tuple(triples), tuple(tuple(n) for n in nbrs), orders)

    @classmethod
    def from_molecule(cls, molecule: Molecule) -> MolecularGraph:
        return cls.from_bonds(molecule.n_atoms, molecule.bonds)

    def order(self, i: int, j: int) -> int | None:
        """Bond order between i and j, or None when they are not bonded."""
        return self._orders.get((i, j))

    def bonded(self, i: int, j: int) -> bool:
        return (i, j) in self._orders

    def degree(self, i: int, include_zero_order: bool = True) -> int:
        if include_zero_order:
            return len(self.neighbours[i])
        return sum(1 for j in self.neighbours[i] if self._orders[(i, j)] != 0)


def angles(graph: MolecularGraph) -> list[tuple[int, int, int]]:
    """Every bond angle (i, centre, k), neighbour pairs in connection-table order."""
    out = []
    for centre, nbrs in enumerate(graph.neighbours):
        for a in range(len(nbrs)):
            for b in range(a + 1, len(nbrs)):
                out.append((nbrs[a], centre, nbrs[b]))
    return out


def torsions(graph: MolecularGraph) -> list[tuple[int, int, int, int]]:
    """Every proper torsion (i, j, k, l) over the bond j-k, each listed once (i != l)."""
    out = []
    for j, k, _ in graph.bonds:
        for i in graph.neighbours[j]:
            if i == k:
                continue
            for l in graph.neighbours[k]:
                if l in (j, i):
                    continue
                out.append((i, j, k, l))
    return out


def out_of_plane_centres(graph: MolecularGraph) -> list[tuple[int, tuple[int, int, int]]]:
    """Atoms with exactly three bonds of nonzero order: (centre, its three neighbours)."""
    out = []
    for centre, nbrs in enumerate(graph.neighbours):
        real = tuple(j for j in nbrs if graph.order(centre, j) != 0)
        if len(real) == 3:
            out.append((centre, real))
    return out


def bond_pairs(graph: MolecularGraph) -> set[tuple[int, int]]:
    """1-2 pairs (i < j)."""
    return {(min(i, j), max(i, j)) for i, j, _ in graph.bonds}


def pairs_13(graph: MolecularGraph) -> set[tuple[int, int]]:
    """1-3 pairs (ends of an angle), minus 1-2 pairs (i < j)."""
    pairs = {(min(i, k), max(i, k)) for i, _, k in angles(graph)}
    return pairs - bond_pairs(graph)


def pairs_14(graph: MolecularGraph) -> set[tuple[int, int]]:
    """1-4 pairs (ends of a torsion), minus 1-2 and 1-3 pairs (i < j)."""
    pairs = {(min(i, l), max(i, l)) for i, _, _, l in torsions(graph)}
    return pairs - bond_pairs(graph) - pairs_13(graph)


def covalent_radius(symbol: str) -> float:
    sym = element_data.normalize_symbol(symbol)
    if sym in element_data.COVALENT_RADIUS:
        return element_data.COVALENT_RADIUS[sym]
    if sym in _EXTRA_RADII:
        return _EXTRA_RADII[sym]
    raise StructureError(f"no covalent radius for element {sym}: give the structure's bonds in its file")


def perceive_bonds(
    symbols, coords, tolerance: float = 1.3, metal_tolerance: float = 1.3, full_bond_tolerance: float = 1.15
) -> list[Bond]:
    """Bonds with orders from distances and valences (for files that carry no bonds).

    i-j are bonded when r <= tolerance * (R_i + R_j) (``metal_tolerance`` for metal-ligand
    pairs); transition states stretch forming/breaking bonds, so 1.3 keeps partial bonds.
    H-H pairs count only below 1.0 A (an H2 unit). Orders: pairs beyond
    ``full_bond_tolerance`` * (R_i + R_j) are partial (0, MacroModel's ``.``); the rest start
    single and :func:`assign_bond_orders` raises orders to satisfy valences; metal bonds are 1
    to H, P, S, Si, B and halogens, and to C/N/O only where that atom's valence is still open
    (a sigma-alkyl), else 0 (pi-alkenes, carbonyl O, amines: MacroModel's convention).
    """
    xyz = np.asarray(coords, dtype=np.float64)
    syms = [element_data.normalize_symbol(s) for s in symbols]
    radii = np.array([covalent_radius(s) for s in syms])
    dist = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
    pairs: dict[tuple[int, int], int] = {}
    for i in range(len(syms)):
        for j in range(i + 1, len(syms)):
            metal = syms[i] in METALS or syms[j] in METALS
            limit = (metal_tolerance if metal else tolerance) * (radii[i] + radii[j])
            if syms[i] == syms[j] == "H":
                limit = min(limit, 1.0)
            if dist[i, j] <= limit:
                pairs[(i, j)] = 0 if dist[i, j] > full_bond_tolerance * (radii[i] + radii[j]) else 1
    orders = assign_bond_orders(syms, pairs, dist)
    return [Bond(i, j, orders[(i, j)]) for (i, j) in pairs]


VALENCE = {"H": 1, "C": 4, "N": 3, "O": 2, "S": 2, "P": 3, "B": 3, "Si": 4, "F": 1, "Cl": 1, "Br": 1, "I": 1}
_SINGLE_TO_METAL = {"H", "P", "S", "Si", "B", "F", "Cl", "Br", "I"}


def assign_bond_orders(symbols, pairs: dict[tuple[int, int], int], dist) -> dict[tuple[int, int], int]:
    """Orders for perceived bonds: ``pairs`` maps (i, j) to 0 (partial) or 1 (full).

    Open valences (valence minus full non-metal bonds) are closed greedily: the atom with the
    fewest open neighbours first, paired with its shortest open neighbour bond, one order
    step at a time (gives C=O, C#N, Kekule rings). Metal bonds follow :func:`perceive_bonds`.
    """
    orders = dict(pairs)
    metal_bond = {p: symbols[p[0]] in METALS or symbols[p[1]] in METALS for p in pairs}
    organic = [p for p, o in pairs.items() if o and not metal_bond[p]]
    open_valence = {k: VALENCE.get(s, 0) for k, s in enumerate(symbols) if s in VALENCE}
    for i, j in organic:
        for k in (i, j):
            if k in open_valence:
                open_valence[k] -= 1
    neighbours: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for i, j in organic:
        neighbours.setdefault(i, []).append((j, (i, j)))
        neighbours.setdefault(j, []).append((i, (i, j)))

    def open_partners(k: int) -> list[tuple[int, tuple[int, int]]]:
        return [(n, p) for n, p in neighbours.get(k, []) if open_valence.get(n, 0) > 0 and orders[p] < 3]

    while True:
        candidates = [k for k, u in open_valence.items() if u > 0 and open_partners(k)]
        if not candidates:
            break
        atom = min(candidates, key=lambda k: (len(open_partners(k)), k))
        partner, pair = min(open_partners(atom), key=lambda np_: (len(open_partners(np_[0])), dist[np_[1]]))
        orders[pair] += 1
        open_valence[atom] -= 1
        open_valence[partner] -= 1
    for (i, j), is_metal in metal_bond.items():
        if is_metal and orders[(i, j)]:
            ligand = j if symbols[i] in METALS else i
            single = symbols[ligand] in _SINGLE_TO_METAL or open_valence.get(ligand, 0) > 0
            orders[(i, j)] = 1 if single else 0
    return orders
