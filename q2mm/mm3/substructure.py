"""MacroModel substructure patterns (the `` 9`` line of a ``.fld`` substructure) and their matching.

A pattern is SMILES-like: atoms are MacroModel type names, equivalence classes (``PX``), element
wildcards (``C0``) or ``00`` (any atom); bonds are ``-`` (single), ``=`` (double), ``%``
(triple), ``.`` (zero order: a partial or dative bond), ``*`` (any order); ``(...)`` opens a
branch; a bond symbol followed by a number closes a ring to that 1-based pattern position, e.g.
``HX-RH(-PX)-HX.C2*C2(.2)-N2-C2=O2.2``. Matching is subgraph monomorphism on the molecular graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from q2mm.errors import PatternSyntaxError
from q2mm.mm3.graph import MolecularGraph

BOND_SYMBOL_ORDERS: dict[str, frozenset[int]] = {
    "-": frozenset({1}),
    "=": frozenset({2}),
    "%": frozenset({3}),
    ".": frozenset({0}),
    "*": frozenset({1, 2, 3}),
}
# Element wildcards: 'C0' is any carbon, 'H0' any hydrogen, ...
_ELEMENT_WILDCARDS = {"C0": "C", "H0": "H", "N0": "N", "O0": "O", "S0": "S", "B0": "B"}


@dataclass(frozen=True)
class TypeMatcher:
    """Decides whether an atom fits a type spec: a name, an equivalence class, 'X0' or '00'."""

    type_names: tuple[str, ...]
    elements: tuple[str, ...]
    equivalences: Mapping[str, frozenset[str]]

    def matches(self, spec: str, atom: int) -> bool:
        """Type names compare without regard to case, as MacroModel compares them: Q2MM's
        published Heck force field names palladium ``PD`` in its substructures while the
        atom.typ it ships with defines type 201 as ``Pd``."""
        spec = spec.strip()
        name = self.type_names[atom].upper()
        if spec == "00" or spec.upper() == name:
            return True
        members = self.equivalences.get(spec)
        if members is not None:
            return name in {m.upper() for m in members}
        element = _ELEMENT_WILDCARDS.get(spec)
        return element is not None and self.elements[atom].capitalize() == element


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: atom specs (position k+1 is index k) and bonds (a, b, symbol)."""

    text: str
    atoms: tuple[str, ...]
    bonds: tuple[tuple[int, int, str], ...]

    def __len__(self) -> int:
        return len(self.atoms)


def parse_pattern(text: str) -> Pattern:
    """Parse a ``.fld`` substructure pattern such as ``C2*C2*AA*AA*AA*AA*1``."""
    s = text.strip()
    atoms: list[str] = []
    bonds: list[tuple[int, int, str]] = []
    stack: list[int] = []
    current: int | None = None
    pending = "-"
    i = 0
    while i < len(s):
        ch = s[i]
        if ch in BOND_SYMBOL_ORDERS:
            pending = ch
            i += 1
        elif ch == "(":
            if current is None:
                raise PatternSyntaxError(f"branch before any atom in {text!r}")
            stack.append(current)
            i += 1
        elif ch == ")":
            if not stack:
                raise PatternSyntaxError(f"unbalanced ')' in {text!r}")
            current = stack.pop()
            pending = "-"
            i += 1
        elif ch.isdigit() and s[i : i + 2] != "00":
            j = i
            while j < len(s) and s[j].isdigit():
                j += 1
            target = int(s[i:j]) - 1
            if current is None or not 0 <= target < len(atoms):
                raise PatternSyntaxError(f"ring closure to position {target + 1} in {text!r}")
            bonds.append((current, target, pending))
            pending = "-"
            i = j
        elif ch.isalnum():
            token = s[i : i + 2]
            if len(token) < 2 or not (token[1].isalnum()):
                token = s[i]
            atoms.append(token)
            if current is not None:
                bonds.append((current, len(atoms) - 1, pending))
            current = len(atoms) - 1
            pending = "-"
            i += len(token)
        else:
            raise PatternSyntaxError(f"unexpected {ch!r} in {text!r}")
    if stack:
        raise PatternSyntaxError(f"unclosed '(' in {text!r}")
    if not atoms:
        raise PatternSyntaxError("empty pattern")
    return Pattern(text.strip(), tuple(atoms), tuple(bonds))


def _spec_of_single_letter(spec: str) -> str:
    """A one-letter pattern atom ('O' in 'C2(=O)') means that element: 'O0'."""
    return spec + "0" if len(spec) == 1 else spec


def match_pattern(pattern: Pattern, graph: MolecularGraph, matcher: TypeMatcher) -> list[tuple[int, ...]]:
    """Every mapping (pattern position -> atom) that embeds the pattern in the molecule.

    Distinct atoms for distinct positions; every pattern bond must be a molecular bond whose
    order the bond symbol allows. Mappings are returned in a deterministic order.
    """
    specs = [_spec_of_single_letter(a) for a in pattern.atoms]
    adjacency: dict[int, list[tuple[int, str]]] = {k: [] for k in range(len(specs))}
    for a, b, sym in pattern.bonds:
        adjacency[a].append((b, sym))
        adjacency[b].append((a, sym))
    results: list[tuple[int, ...]] = []
    mapping: list[int] = []

    def consistent(pos: int, atom: int) -> bool:
        if atom in mapping or not matcher.matches(specs[pos], atom):
            return False
        for other, sym in adjacency[pos]:
            if other < pos:
                order = graph.order(atom, mapping[other])
                if order is None or order not in BOND_SYMBOL_ORDERS[sym]:
                    return False
        return True

    def candidates(pos: int) -> Sequence[int]:
        earlier = [o for o, _ in adjacency[pos] if o < pos]
        if earlier:
            return graph.neighbours[mapping[earlier[0]]]
        return range(graph.n_atoms)

    def extend(pos: int) -> None:
        if pos == len(specs):
            results.append(tuple(mapping))
            return
        for atom in candidates(pos):
            if consistent(pos, atom):
                mapping.append(atom)
                extend(pos + 1)
                mapping.pop()

    extend(0)
    return results


def alternative_holds(
    kind: str,
    positions: Sequence[int],
    target: float,
    tolerance: float,
    match: Sequence[int],
    measure: Callable[[tuple[int, ...]], float],
) -> bool:
    """Whether an alternative's geometric criterion holds for one match.

    ``kind`` is 'A' (angle), 'B' (distance) or 'T' (torsion); ``positions`` are 1-based pattern
    positions; ``measure`` gives the geometric value (degrees or Angstrom) of 0-based atoms.
    Torsion differences wrap to [-180, 180).
    """
    atoms = tuple(match[p - 1] for p in positions)
    value = measure(atoms)
    diff = value - target
    if kind == "T":
        diff = (diff + 180.0) % 360.0 - 180.0
    return abs(diff) <= tolerance
