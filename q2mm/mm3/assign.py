"""MM3* parameter assignment: the `.fld` row MacroModel uses for every interaction.

Rules, each checked against MacroModel's `.mmo` "FF Line" column on the six rh-enamide
structures (tests/mm3/test_assign_macromodel.py) or on a hand-written force field
(tests/mm3/test_assign_rules.py):

* Standard rows: the first row of the section, in file order, whose atom types fit the
  interaction forward or reversed. A type slot fits the atom's type name, an equivalence
  class of the ``-5`` table (``PX``), an element wildcard (``C0``) or anything (``00``); bond
  symbols between slots must allow the bond's order (``-`` 1, ``=`` 2, ``%`` 3, ``.`` 0,
  ``*`` 1-3); descriptors (4-character blocks from column 58, e.g. ``O200``, ``H1H1``) require
  neighbours of that atom outside the interaction; a ``1`` before a block continues it on the
  next line with the neighbours of that neighbour (MacroModel prints that second line as the
  row's "FF Line"; ``ForceField.row`` resolves it). Rows with a lowercase label are skipped.
* Substructures: each pattern is matched on the graph (every mapping). A row names pattern
  positions (numbers) or types; a named type fits only atoms outside the match, ``00`` any
  atom. Within a match the last fitting row wins; later matches and later substructures
  overwrite earlier ones; any substructure row beats every standard row.
* Alternatives: ``aA p q r  value  tolerance`` defines alternative ``a`` of a substructure by
  the angle p-q-r of a match (``aB`` a distance, ``aT`` a torsion). Where it holds, rows
  labelled ``a1``, ``a2``... take part (they follow their plain rows, so they win); elsewhere
  they are ignored (structure 1: the P trans to O gets the ``a1`` Rh-P row).
* A substructure torsion row with ``00`` at both ends is shared out over all torsions about
  its central bond (``Interaction.scale``; benzenoid V2 36.8 -> 9.2).
* Stretch-bend: a substructure ``3`` row, else (only if the angle also has a standard row) the
  first standard ``3`` row. Bend-bend: pairs of angles at one centre with Kbb = product of the
  third fields of their angle rows (a substructure angle without one borrows it from its
  standard row). Torsion-stretch: the ``8`` rows, matched like torsions.
* Out-of-plane: centres with three bonds of nonzero order; a ``5`` row's first slot is the
  centre, the others take the neighbours in some order (connection-table order first), and
  the interaction lists (n1, centre, n2, n3) as MacroModel does.
* vdW: the first ``-6`` row of the atom's type whose descriptor fits; metals take the ``Z0``
  row; special pair rows (``6``) for every pair beyond 1-3.
* Not covered: hydrogen-bond rows (``7``; MacroModel reported 0 hydrogen-bond energy for all
  six structures), substructure charge rows, standard-row alternative sets, SEL qualifiers.

One function per kind (``stretches``, ``bends``, ``stretch_bends``, ...) appends that kind's
interactions to an ``Assignment``; the term table (``q2mm.mm3.interactions.VALENCE``) names
each kind's function and ``q2mm.mm3.interactions.assign_parameters`` runs them in its order.
Interactions carry 0-based atoms (stretch atoms in the matched row's order, which is the
direction of the bond dipole), ParamRefs of their value fields, the values, the `.fld` line
and where the row came from; see :class:`Interaction` for the layout of each kind.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from q2mm.errors import ParameterAssignmentError, PatternSyntaxError
from q2mm.io.atomtyp import AtomTypeTable
from q2mm.mm3 import graph as graphs
from q2mm.mm3.graph import MolecularGraph
from q2mm.mm3.substructure import (
    BOND_SYMBOL_ORDERS,
    TypeMatcher,
    alternative_holds,
    match_pattern,
    parse_pattern,
)
from q2mm.mm3.typing import assign_types, names_in_forcefield
from q2mm.model.forcefield import ForceField, ParamRef, ParamRow, Substructure
from q2mm.model.molecule import Molecule

NONBONDED_KINDS = ("vdw", "vdw_pair")  # assigned after the valence kinds of the term table
_DESCRIPTOR_START = 57  # 0-based column of the first 4-character descriptor block
_ALT_CRITERIA = {"A": 3, "B": 2, "T": 4}


@dataclass(frozen=True)
class Interaction:
    """One energy term of one structure with its force-field parameters.

    kind     atoms (0-based)             refs / values
    stretch  (i, j)                      r0, k, bond dipole (fields 1-3; dipole may be absent)
    bend     (i, centre, k)              theta0, k (fields 1-2)
    stretch_bend (i, centre, k)          Ksb (field 1 of a ``3`` row)
    bend_bend (centre, i1, k1, i2, k2)   field 3 of the two angle rows (Kbb is their product),
                                         then field 1 (theta0) of the same rows: the ideal
                                         angles bend-bend uses, which for a substructure angle
                                         are its standard row's (benzenoid: 122.3, not 121.7)
    torsion  (i, j, k, l)                V1, V2, V3 (fields 1-3; blank fields are 0), then
                                         V4, V5, V6 where a ``54`` row follows the row
    torsion_stretch (i, j, k, l)         Kts (field 1 of an ``8`` row)
    improper (n1, centre, n2, n3)        k (field 2 of a ``5`` row)
    vdw      (i,)                        radius, epsilon, reduction (``-6`` table fields 1-3)
    vdw_pair (i, j)                      radius, epsilon of a special pair row (``6``), which
                                         replaces the combined per-atom values for that pair

    ``values[n] == scale * ff.value(refs[n])``: ``scale`` is 1 except for a substructure
    torsion row with ``00`` at both ends, which MacroModel shares out over all torsions about
    its central bond (scale = 1 / their number; benzenoid V2 36.8 -> 9.2 per torsion).
    """

    kind: str
    atoms: tuple[int, ...]
    refs: tuple[ParamRef, ...]
    values: tuple[float, ...]
    fld_line: int
    source: str
    scale: float = 1.0

    @property
    def is_zero(self) -> bool:
        return all(v == 0.0 for v in self.values)


@dataclass(frozen=True)
class MissingParameter:
    """An interaction that needs a row and has none (0-based atoms, their type names)."""

    kind: str
    atoms: tuple[int, ...]
    types: tuple[str, ...]

    def describe(self) -> str:
        where = "-".join(f"{a + 1}" for a in self.atoms)
        return f"{self.kind} {where} ({'-'.join(self.types)})"


@dataclass
class Assignment:
    """Every interaction of one structure, per kind (in the term table's order), plus what had
    no parameter."""

    type_names: tuple[str, ...]
    interactions: dict[str, list[Interaction]]
    missing: list[MissingParameter] = field(default_factory=list)
    typing_report: str = ""

    def of(self, kind: str) -> list[Interaction]:
        return self.interactions[kind]

    def refs(self) -> tuple[ParamRef, ...]:
        """Every ParamRef used, sorted and unique."""
        return tuple(sorted({r for items in self.interactions.values() for it in items for r in it.refs}))

    def report(self) -> str:
        lines = [self.typing_report] if self.typing_report else []
        for kind, items in self.interactions.items():
            subs = sum(1 for it in items if it.source.startswith("substructure"))
            lines.append(f"{kind:16s} {len(items):5d} interactions ({subs} from substructures)")
        if self.missing:
            lines.append(f"{len(self.missing)} interactions without parameters (skipped):")
            lines += [f"  {m.describe()}" for m in self.missing]
        return "\n".join(lines)


# Standard rows that fit a (term, (type, element) per atom, bond orders) key, per force field:
# the answer depends on nothing else, so structures of one training set share it.
_CANDIDATE_CACHE: weakref.WeakKeyDictionary[ForceField, dict] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Choice:
    row: ParamRow
    atoms: tuple[int, ...]
    source: str


class Context:
    """What matching needs about one structure: graph, types, coordinates, substructure matches."""

    def __init__(self, molecule: Molecule, ff: ForceField, type_names: Sequence[str]):
        self.ff = ff
        self.graph = MolecularGraph.from_molecule(molecule)
        self.coords = np.asarray(molecule.coords, dtype=np.float64)
        equivalences = {e.name: frozenset(e.members) for e in ff.equivalences}
        self.types = tuple(type_names)
        self.matcher = TypeMatcher(self.types, tuple(molecule.elements), equivalences)
        self.standard: dict[str, list[ParamRow]] = {}
        for row in ff.rows:
            if row.substructure is None and not row.alt:
                self.standard.setdefault(row.term, []).append(row)
        self._atoms_of: dict[str, frozenset[int]] = {}
        self._candidates = _CANDIDATE_CACHE.setdefault(ff, {})
        self._found: dict[tuple[str, tuple[int, ...]], _Choice | None] = {}
        self.type_keys = tuple(zip(self.types, (e.capitalize() for e in molecule.elements)))
        self.sub_matches = self._match_substructures()

    def atoms_of(self, spec) -> frozenset[int]:
        """The atoms a type spec (name, class, 'C0', '00') matches, cached per spec."""
        spec = str(spec).strip()
        found = self._atoms_of.get(spec)
        if found is None:
            found = frozenset(a for a in range(len(self.types)) if self.matcher.matches(spec, a))
            self._atoms_of[spec] = found
        return found

    # ---- substructures --------------------------------------------------------------
    def _match_substructures(
        self,
    ) -> list[tuple[Substructure, tuple[int, ...], frozenset[str], dict[str, list[ParamRow]]]]:
        rows_of: dict[int, list[ParamRow]] = {}
        for row in self.ff.rows:
            if row.substructure is not None:
                rows_of.setdefault(row.substructure.number, []).append(row)
        out = []
        for sub in self.ff.substructures:
            rows = rows_of.get(sub.number, [])
            criteria = [r for r in rows if r.alt and r.code[1:] in _ALT_CRITERIA]
            params: dict[str, list[ParamRow]] = {}
            for r in rows:
                if r not in criteria:
                    params.setdefault(r.term, []).append(r)
            for text, line in zip(sub.patterns, sub.pattern_lines):
                for match in match_pattern(self._pattern(text, line), self.graph, self.matcher):
                    active = frozenset(c.alt for c in criteria if self._criterion_holds(c, match))
                    out.append((sub, match, active, params))
        return out

    def _pattern(self, text: str, line: int):
        """The parsed pattern of a `` 9`` line; a syntax error names the .fld file and line."""
        try:
            return parse_pattern(text)
        except PatternSyntaxError as exc:
            raise PatternSyntaxError(exc.problem, self.ff.path or "<force field>", line) from None

    def _criterion_holds(self, row: ParamRow, match: tuple[int, ...]) -> bool:
        kind = row.code[1:]
        positions = [int(a) for a in row.atoms[: _ALT_CRITERIA[kind]]]
        return alternative_holds(
            kind, positions, self.ff.value(ParamRef(row.line, 1)), float(row.values[1] or 0.0), match, self.measure
        )

    def measure(self, atoms: tuple[int, ...]) -> float:
        x = self.coords[list(atoms)]
        if len(atoms) == 2:
            return float(np.linalg.norm(x[1] - x[0]))
        if len(atoms) == 3:
            a, b = x[0] - x[1], x[2] - x[1]
            return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b)))
        b0, b1, b2 = x[0] - x[1], x[2] - x[1], x[3] - x[2]
        n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
        m = np.cross(n1, b1 / np.linalg.norm(b1))
        return float(np.degrees(np.arctan2(m @ n2, n1 @ n2)))

    def substructure_row(self, term: str, atoms: tuple[int, ...]) -> _Choice | None:
        """The substructure row for an interaction, or None.

        Substructures and their matches are applied in order, each overwriting what an
        earlier one assigned; within a match the last row that fits wins.
        """
        chosen = None
        for sub, match, active, rows in self.sub_matches:
            if not set(match).intersection(atoms):
                continue
            found = self._row_in_match(term, atoms, match, active, rows)
            if found is not None:
                chosen = _Choice(found[0], found[1], f"substructure {sub.number}")
        return chosen

    def _row_in_match(self, term, atoms, match, active, rows):
        found = None
        for row in rows.get(term, ()):
            if row.alt and row.alt not in active:
                continue
            oriented = self._sub_row_fits(row, atoms, match)
            if oriented is not None:
                found = (row, oriented)
        return found

    def _sub_row_fits(self, row: ParamRow, atoms, match) -> tuple[int, ...] | None:
        specs = row.atoms
        if len(specs) != len(atoms):
            return None
        for candidate in (tuple(atoms), tuple(reversed(atoms))):
            if all(self._sub_slot_fits(spec, atom, match) for spec, atom in zip(specs, candidate)):
                if self.descriptors_fit(row, candidate):
                    return candidate
        return None

    def _sub_slot_fits(self, spec, atom: int, match) -> bool:
        if isinstance(spec, int):
            return 0 < spec <= len(match) and match[spec - 1] == atom
        if str(spec).strip() == "00":
            return True
        return atom not in match and atom in self.atoms_of(spec)

    # ---- standard rows --------------------------------------------------------------
    def standard_row(self, term: str, atoms: tuple[int, ...]) -> _Choice | None:
        """The first standard row (file order) that fits the atoms forward or reversed."""
        forward, backward = tuple(atoms), tuple(reversed(atoms))
        for row, reverse in self._type_candidates(term, forward):
            candidate = backward if reverse else forward
            if self.descriptors_fit(row, candidate):
                return _Choice(row, candidate, "standard")
        return None

    def _type_candidates(self, term: str, atoms: tuple[int, ...]) -> list[tuple[ParamRow, bool]]:
        """Rows whose types and bond symbols fit (descriptors not yet checked), cached by the
        atoms' (type, element) and bond orders, which decide them alone."""
        key = (
            term,
            tuple(self.type_keys[a] for a in atoms),
            tuple(self.graph.order(a, b) for a, b in zip(atoms, atoms[1:])),
        )
        found = self._candidates.get(key)
        if found is None:
            found = []
            for row in self.standard.get(term, ()):
                for reverse in (False, True):
                    if self._types_fit(row, atoms[::-1] if reverse else atoms):
                        found.append((row, reverse))
            self._candidates[key] = found
        return found

    def _types_fit(self, row: ParamRow, atoms: tuple[int, ...]) -> bool:
        """Types and bond symbols of a standard row against atoms (in this order)."""
        if len(row.atoms) != len(atoms):
            return False
        if not all(a in self.atoms_of(s) for s, a in zip(row.atoms, atoms)):
            return False
        for sym, a, b in zip(row.bond_orders, atoms, atoms[1:]):
            if sym.strip() and self.graph.order(a, b) not in BOND_SYMBOL_ORDERS.get(sym, frozenset()):
                return False
        return True

    def standard_row_fits(self, row: ParamRow, atoms: tuple[int, ...]) -> bool:
        return self._types_fit(row, atoms) and self.descriptors_fit(row, atoms)

    def descriptors_fit(self, row: ParamRow, atoms: Sequence[int]) -> bool:
        line = self.ff.lines[row.line - 1].rstrip("\r\n")
        nxt = self.ff.lines[row.line].rstrip("\r\n") if row.line < len(self.ff.lines) else ""
        has_continuation = nxt[:2] == line[:2] and not nxt[2:55].strip()
        excluded = set(atoms)
        for slot, atom in enumerate(atoms):
            start = _DESCRIPTOR_START + 5 * slot
            block = line[start : start + 4]
            flag = line[start - 1 : start].strip()
            sub_block = nxt[start : start + 4] if (flag and has_continuation) else ""
            if not self._block_fits(block, atom, excluded, sub_block):
                return False
        return True

    def _block_fits(self, block: str, atom: int, excluded: set[int], sub_block: str = "") -> bool:
        specs = [s for s in (block[0:2], block[2:4]) if s.strip() and s != "00"]
        if not specs:
            return True
        pool = [n for n in self.graph.neighbours[atom] if n not in excluded]
        for chosen in itertools.permutations(pool, len(specs)):
            if not all(self.matcher.matches(s, n) for s, n in zip(specs, chosen)):
                continue
            if sub_block and not self._block_fits(sub_block, chosen[0], {atom}):
                continue
            return True
        return False

    # ---- lookup with precedence -----------------------------------------------------
    def find(self, term: str, atoms: tuple[int, ...]) -> _Choice | None:
        """The row of an interaction: substructure rows first (memoized: several kinds read
        the same angle and torsion rows)."""
        key = (term, atoms)
        if key not in self._found:
            self._found[key] = self.substructure_row(term, atoms) or self.standard_row(term, atoms)
        return self._found[key]


def start(
    molecule: Molecule, ff: ForceField, kinds: Iterable[str], types: AtomTypeTable | Sequence[str] | None = None
) -> tuple[Context, Assignment]:
    """The matching context of ``molecule`` and an empty Assignment with ``kinds`` (in order).

    ``types`` is either the type names themselves or an atom.typ table used to look up the
    molecule's type numbers (default: the standard MacroModel table).
    """
    if types is not None and not isinstance(types, AtomTypeTable):
        type_names, report = tuple(types), "type names given"
    else:
        typing = assign_types(molecule, types, names_in_forcefield(ff))
        type_names, report = typing.type_names, typing.report()
    return Context(molecule, ff, type_names), Assignment(type_names, {k: [] for k in kinds}, typing_report=report)


def check_complete(molecule: Molecule, result: Assignment, allow_missing: bool) -> None:
    """ParameterAssignmentError naming every interaction without a row, unless ``allow_missing``."""
    if result.missing and not allow_missing:
        names = "; ".join(m.describe() for m in result.missing)
        raise ParameterAssignmentError(f"{molecule.title or molecule.source}: no MM3* parameters for {names}")


def _interaction(kind: str, choice: _Choice, fields: Iterable[int], atoms=None) -> Interaction:
    row = choice.row
    refs, values = [], []
    for f in fields:
        value = row.values[f - 1]
        if value is None and kind != "torsion":
            continue
        refs.append(ParamRef(row.line, f))
        values.append(0.0 if value is None else float(value))
    return Interaction(
        kind, tuple(choice.atoms if atoms is None else atoms), tuple(refs), tuple(values), row.line, choice.source
    )


def _missing(ctx: Context, kind: str, atoms: tuple[int, ...], result: Assignment) -> None:
    result.missing.append(MissingParameter(kind, atoms, tuple(ctx.types[a] for a in atoms)))


def stretches(ctx: Context, result: Assignment) -> None:
    """Bond rows (``1``) for every bond, atoms in the row's order (the bond dipole's direction)."""
    for i, j, _ in ctx.graph.bonds:
        choice = ctx.find("bond", (i, j))
        if choice is None:
            _missing(ctx, "stretch", (i, j), result)
            continue
        result.interactions["stretch"].append(_interaction("stretch", choice, (1, 2, 3)))


def bends(ctx: Context, result: Assignment) -> None:
    """Angle rows (``2``, fields 1-2) for every angle."""
    for angle in graphs.angles(ctx.graph):
        choice = ctx.find("angle", angle)
        if choice is None:
            _missing(ctx, "bend", angle, result)
            continue
        result.interactions["bend"].append(_interaction("bend", choice, (1, 2)))


def _angle_rows(ctx: Context) -> Iterator[tuple[tuple[int, int, int], _Choice, _Choice | None]]:
    """(angle, its row, its standard row or None) for every angle that has a row."""
    for angle in graphs.angles(ctx.graph):
        choice = ctx.find("angle", angle)
        if choice is not None:
            yield angle, choice, choice if choice.source == "standard" else ctx.standard_row("angle", angle)


def stretch_bends(ctx: Context, result: Assignment) -> None:
    """A substructure ``3`` row of a bend, else (only if the angle has a standard row) the first
    standard ``3`` row; atoms as the bend's."""
    for angle, choice, standard in _angle_rows(ctx):
        sb = ctx.substructure_row("stretch_bend", angle)
        if sb is None and standard is not None:
            sb = ctx.standard_row("stretch_bend", angle)
        if sb is not None:
            result.interactions["stretch_bend"].append(_interaction("stretch_bend", sb, (1,), atoms=choice.atoms))


def bend_bends(ctx: Context, result: Assignment) -> None:
    """Pairs of bends at one centre whose angle rows carry a third field (a substructure angle
    without one borrows its standard row's)."""
    bends: dict[int, list[tuple[tuple[int, ...], ParamRow]]] = {}
    for angle, choice, standard in _angle_rows(ctx):
        row = choice.row if choice.row.values[2] is not None else (standard.row if standard else None)
        if row is not None and row.values[2] is not None:
            bends.setdefault(angle[1], []).append((choice.atoms, row))
    for centre, items in bends.items():
        for (a1, r1), (a2, r2) in itertools.combinations(items, 2):
            atoms = (centre, a1[0], a1[2], a2[0], a2[2])
            refs = (ParamRef(r1.line, 3), ParamRef(r2.line, 3), ParamRef(r1.line, 1), ParamRef(r2.line, 1))
            values = tuple(ctx.ff.value(ref) for ref in refs)
            result.interactions["bend_bend"].append(
                Interaction("bend_bend", atoms, refs, values, r1.line, "angle rows")
            )


def torsions(ctx: Context, result: Assignment) -> None:
    """Torsion rows (``4``, plus a following ``54``) for every proper torsion that has one."""
    for torsion in graphs.torsions(ctx.graph):
        choice = ctx.find("torsion", torsion)
        if choice is not None:
            result.interactions["torsion"].append(_torsion(ctx, choice))


def torsion_stretches(ctx: Context, result: Assignment) -> None:
    """Torsion-stretch rows (``8``), matched like torsions."""
    for torsion in graphs.torsions(ctx.graph):
        ts = ctx.find("torsion_stretch", torsion)
        if ts is not None:
            result.interactions["torsion_stretch"].append(_interaction("torsion_stretch", ts, (1,)))


def _torsion(ctx: Context, choice: _Choice) -> Interaction:
    """V1-V3 of the row, plus V4-V6 where a ``54`` continuation row follows it."""
    base = _interaction("torsion", choice, (1, 2, 3))
    refs, values = base.refs, base.values
    try:
        nxt = ctx.ff.row(choice.row.line + 1)
    except KeyError:
        nxt = None
    if nxt is not None and nxt.term == "torsion_cont":
        more = _interaction("torsion", _Choice(nxt, choice.atoms, choice.source), (1, 2, 3))
        refs, values = refs + more.refs, values + more.values
    scale = _bond_torsion_share(ctx, choice)
    return Interaction("torsion", base.atoms, refs, tuple(v * scale for v in values), base.fld_line, base.source, scale)


def _bond_torsion_share(ctx: Context, choice: _Choice) -> float:
    """1 / (torsions about the central bond) for a substructure row 'XX 00 p q 00', else 1."""
    row = choice.row
    if row.substructure is None or str(row.atoms[0]).strip() != "00" or str(row.atoms[3]).strip() != "00":
        return 1.0
    j, k = choice.atoms[1], choice.atoms[2]
    count = sum(1 for i in ctx.graph.neighbours[j] if i != k for l in ctx.graph.neighbours[k] if l not in (j, i))
    return 1.0 / count


def impropers(ctx: Context, result: Assignment) -> None:
    """Out-of-plane rows (``5``) for every centre with three bonds of nonzero order."""
    for centre, nbrs in graphs.out_of_plane_centres(ctx.graph):
        choice = _substructure_improper(ctx, centre, nbrs) or _standard_improper(ctx, centre, nbrs)
        if choice is not None:
            result.interactions["improper"].append(_interaction("improper", choice, (2,)))


def _standard_improper(ctx: Context, centre: int, nbrs: tuple[int, ...]) -> _Choice | None:
    """First ``5`` row whose first slot is the centre and whose other slots take the three
    neighbours in some order (tried in connection-table order); atoms (n1, centre, n2, n3)."""
    for row in ctx.standard.get("improper", ()):
        if len(row.atoms) != 4 or centre not in ctx.atoms_of(row.atoms[0]):
            continue
        for perm in itertools.permutations(nbrs):
            if all(a in ctx.atoms_of(s) for s, a in zip(row.atoms[1:], perm)):
                if ctx.descriptors_fit(row, (centre,) + perm):
                    return _Choice(row, (perm[0], centre, perm[1], perm[2]), "standard")
    return None


def _substructure_improper(ctx: Context, centre: int, nbrs: tuple[int, ...]) -> _Choice | None:
    """A substructure ``5`` row for the centre (same precedence as the other kinds)."""
    chosen = None
    for sub, match, active, rows in ctx.sub_matches:
        if centre not in match and not set(match).intersection(nbrs):
            continue
        for row in rows.get("improper", ()):
            if (row.alt and row.alt not in active) or len(row.atoms) != 4:
                continue
            if not ctx._sub_slot_fits(row.atoms[0], centre, match):
                continue
            for perm in itertools.permutations(nbrs):
                if all(ctx._sub_slot_fits(s, a, match) for s, a in zip(row.atoms[1:], perm)):
                    chosen = _Choice(row, (perm[0], centre, perm[1], perm[2]), f"substructure {sub.number}")
                    break
    return chosen


def vdw(ctx: Context, result: Assignment) -> None:
    """Per-atom vdW table rows: the first ``-6`` row whose type and descriptor fit.

    Metals take the generic-metal ``Z0`` row where the table has one: MacroModel did so for
    Rh (type 250 'RH') although an 'RH' row exists (rh-enamide .mmo: Rh...N8 uses
    r = 2.00 + 1.93 A and eps = sqrt(0.63 * 0.043)).
    """
    rows = [r for r in ctx.ff.rows if r.term == "vdw"]
    has_z0 = any(r.atoms[0] == "Z0" for r in rows)
    for atom in range(len(ctx.types)):
        metal = has_z0 and ctx.matcher.elements[atom].capitalize() in graphs.METALS
        for row in rows:
            fits = row.atoms[0] == "Z0" if metal else ctx.matcher.matches(str(row.atoms[0]), atom)
            if fits and _vdw_descriptor_fits(ctx, row, atom):
                choice = _Choice(row, (atom,), "vdw table")
                result.interactions["vdw"].append(_interaction("vdw", choice, (1, 2, 3)))
                break
        else:
            _missing(ctx, "vdw", (atom,), result)


def _vdw_descriptor_fits(ctx: Context, row: ParamRow, atom: int) -> bool:
    line = ctx.ff.lines[row.line - 1]
    return ctx._block_fits(line[72:76], atom, {atom})


def vdw_pairs(ctx: Context, result: Assignment) -> None:
    """Special vdW rows (``6``) for every nonbonded pair (not 1-2, not 1-3) they fit."""
    rows = ctx.standard.get("vdw_pair", ())
    if not rows:
        return
    excluded = graphs.bond_pairs(ctx.graph) | graphs.pairs_13(ctx.graph)
    for i, j in itertools.combinations(range(len(ctx.types)), 2):
        if (i, j) in excluded:
            continue
        for row in rows:
            oriented = next((c for c in ((i, j), (j, i)) if ctx.standard_row_fits(row, c)), None)
            if oriented is not None:
                choice = _Choice(row, (i, j), "standard")
                result.interactions["vdw_pair"].append(_interaction("vdw_pair", choice, (1, 2)))
                break
