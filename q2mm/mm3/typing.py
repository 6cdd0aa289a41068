"""MM3* atom typing: MacroModel type names for every atom of a structure.

Three sources, in order of trust:

1. ``molecule.atom_types`` (names, e.g. from a ``.mol2``): used as they are;
2. ``molecule.type_numbers`` (from a ``.mae``): looked up in the standard MacroModel table plus
   a custom ``atom.typ`` (:class:`q2mm.io.atomtyp.AtomTypeTable`);
3. neither (xyz, Gaussian, Jaguar): guessed from element and bonding by :func:`guess_types`,
   which reports every guess with its reason.

Guessing rules (MM3 types): C by its number of nonzero-order neighbours (4 C3, 3 C2, 2 or 1
C1) or a triple bond (C1); H by its heavy neighbour (C or metal H1, O H2, N H3, cationic N H4);
O double-bonded or terminal O2, else O3; N triple-bonded or terminal N1, four neighbours N5,
three neighbours N2 when conjugated (a neighbour C1/C2/N2 or a double bond) else N3, two N2;
P P3; S S1; halogens F0 Cl Br I0; Si; B B2/B3; a metal takes the unique custom type of its
element from ``atom.typ`` that the force field uses (e.g. 250 RH), else Z0.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from q2mm.errors import UnknownAtomTypeError
from q2mm.io.atomtyp import AtomTypeTable, standard_table
from q2mm.mm3.graph import METALS, MolecularGraph
from q2mm.model.elements import normalize_symbol
from q2mm.model.forcefield import ForceField
from q2mm.model.molecule import Molecule

_HALOGENS = {"F": "F0", "Cl": "Cl", "Br": "Br", "I": "I0", "Si": "Si"}


@dataclass(frozen=True)
class TypeGuess:
    """One guessed type: 0-based atom, element, the MM3 name chosen and why."""

    atom: int
    element: str
    type_name: str
    reason: str


@dataclass(frozen=True)
class TypingResult:
    """MM3 type names per atom, where they came from, and the guesses made (if any)."""

    type_names: tuple[str, ...]
    source: str  # 'names', 'numbers' or 'guessed'
    guesses: tuple[TypeGuess, ...] = ()

    def report(self) -> str:
        if not self.guesses:
            return f"{len(self.type_names)} atom types taken from the input ({self.source})"
        lines = [f"{len(self.guesses)} atom types guessed from element and bonding:"]
        lines += [f"  atom {g.atom + 1} {g.element}: {g.type_name} ({g.reason})" for g in self.guesses]
        return "\n".join(lines)


def type_names_from_numbers(numbers, table: AtomTypeTable | None = None, where: str | None = None) -> tuple[str, ...]:
    """MacroModel type numbers -> names (standard table plus custom atom.typ entries)."""
    table = table or standard_table()
    return tuple(table.get(int(n), where=where).name for n in numbers)


def assign_types(
    molecule: Molecule, table: AtomTypeTable | None = None, known_names: Collection[str] | None = None
) -> TypingResult:
    """Type names for a molecule: given names, else looked-up numbers, else guesses."""
    if molecule.atom_types is not None:
        return TypingResult(tuple(molecule.atom_types), "names")
    if molecule.type_numbers is not None:
        return TypingResult(
            type_names_from_numbers(molecule.type_numbers, table, molecule.source or molecule.title), "numbers"
        )
    return guess_types(molecule, table, known_names)


def names_in_forcefield(ff: ForceField) -> frozenset[str]:
    """Every type name a force field's rows, vdW table and substructure patterns mention."""
    names = {str(a).strip() for row in ff.rows for a in row.atoms if isinstance(a, str)}
    for sub in ff.substructures:
        for text in sub.patterns:
            names.update(re.findall(r"[A-Za-z][A-Za-z0-9]", text))
    return frozenset(names)


def guess_types(
    molecule: Molecule, table: AtomTypeTable | None = None, known_names: Collection[str] | None = None
) -> TypingResult:
    """Guess MM3 types from elements and bonds (perceive bonds first for files without any).

    ``known_names`` (e.g. :func:`names_in_forcefield`) picks a metal's custom type when the
    atom.typ table has several for that element.
    """
    graph = MolecularGraph.from_molecule(molecule)
    symbols = tuple(normalize_symbol(e) for e in molecule.elements)
    heavy = [_guess_heavy(k, symbols, graph, table, known_names) for k in range(len(symbols))]
    guesses = []
    for k, sym in enumerate(symbols):
        guess = _guess_hydrogen(k, symbols, graph, heavy) if sym == "H" else heavy[k]
        guesses.append(TypeGuess(k, sym, guess[0], guess[1]))
    return TypingResult(tuple(g.type_name for g in guesses), "guessed", tuple(guesses))


def resolve_generic_hydrogens(molecule: Molecule, names: Sequence[str], generic: str = "H") -> tuple[str, ...]:
    """``names`` with each ``generic`` hydrogen name (a mol2 writer's plain ``H``) replaced by its
    MM3 type from its heavy neighbour, by the rule of :func:`guess_types` (C or metal H1, O H2,
    N H3, cationic N H4); the given names of the other atoms decide "cationic"."""
    if generic not in names:
        return tuple(names)
    graph = MolecularGraph.from_molecule(molecule)
    symbols = tuple(normalize_symbol(e) for e in molecule.elements)
    given = [(name, "given") for name in names]
    return tuple(
        _guess_hydrogen(k, symbols, graph, given)[0] if name == generic else name for k, name in enumerate(names)
    )


def _real_neighbours(k: int, graph: MolecularGraph) -> list[int]:
    return [j for j in graph.neighbours[k] if graph.order(k, j) != 0]


def _guess_heavy(
    k: int, symbols, graph: MolecularGraph, table: AtomTypeTable | None, known_names: Collection[str] | None
) -> tuple[str, str]:
    sym = symbols[k]
    real = _real_neighbours(k, graph)
    orders = [graph.order(k, j) for j in real]
    n = len(real)
    if sym == "C":
        if 3 in orders or orders.count(2) >= 2:
            return "C1", "triple or cumulated double bond"
        return {4: ("C3", "4 neighbours"), 3: ("C2", "3 neighbours")}.get(n, ("C1", f"{n} neighbours"))
    if sym == "O":
        if 2 in orders or n <= 1:
            return "O2", "double bond or terminal"
        return "O3", f"{n} single bonds"
    if sym == "N":
        return _guess_nitrogen(k, symbols, graph, real, orders)
    if sym == "P":
        return "P3", "phosphorus"
    if sym == "S":
        return "S1", "sulfur"
    if sym in _HALOGENS:
        return _HALOGENS[sym], "element"
    if sym == "B":
        return ("B2", "3 neighbours") if n <= 3 else ("B3", "4 neighbours")
    if sym in METALS:
        return _guess_metal(sym, table, known_names)
    if sym == "H":
        return "H1", "placeholder"
    raise UnknownAtomTypeError(f"no MM3 type rule for element {sym} (atom {k + 1})")


def _guess_nitrogen(k, symbols, graph, real, orders) -> tuple[str, str]:
    n = len(real)
    if 3 in orders or n <= 1:
        return "N1", "triple bond or terminal"
    if n >= 4:
        return "N5", "4 neighbours (cation)"
    if n == 2 or 2 in orders:
        return "N2", "double bond or 2 neighbours"
    conjugated = any(symbols[j] == "C" and len(_real_neighbours(j, graph)) <= 3 for j in real)
    return ("N2", "3 neighbours, conjugated") if conjugated else ("N3", "3 neighbours, saturated")


def _guess_metal(sym: str, table: AtomTypeTable | None, known_names: Collection[str] | None) -> tuple[str, str]:
    if table is not None:
        names = sorted({t.name for t in table.custom.values() if t.element == sym})
        if known_names is not None:
            names = [n for n in names if n in known_names]
        if len(names) == 1:
            known = " used by the force field" if known_names is not None else ""
            return names[0], f"the only custom type of {sym}{known} in {table.source}"
    return "Z0", "metal without a unique custom type"


def _guess_hydrogen(k, symbols, graph, heavy) -> tuple[str, str]:
    nbrs = list(graph.neighbours[k])
    if not nbrs:
        return "H1", "no neighbour"
    real = _real_neighbours(k, graph) or nbrs
    partner = min(real, key=lambda j: (symbols[j] in METALS, j))
    element = symbols[partner]
    if element == "O":
        return "H2", "on oxygen"
    if element == "N":
        return ("H4", "on cationic nitrogen") if heavy[partner][0] in ("N4", "N5") else ("H3", "on nitrogen")
    return "H1", f"on {element}"
