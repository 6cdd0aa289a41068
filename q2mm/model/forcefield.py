"""The ForceField: a MacroModel `.fld` file kept line for line, plus its parsed rows.

A parameter's identity is :class:`ParamRef` ``(line, field)``: the 1-based line of the
`.fld` and the value field on it (1..3). Values are changed only by splicing them into their
10-character field (:func:`format_value`), so every other byte of the file survives a round trip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from q2mm.errors import FieldOverflowError, ForceFieldWriteError, ParameterLookupError  # noqa: F401  (re-exported)
from q2mm.model.termtable import PARAM_KINDS, TERM_OF_CODE  # noqa: F401  (re-exported)

# 0-based [start, stop) columns of the three value fields of a parameter row ...
ROW_FIELDS: dict[int, tuple[int, int]] = {1: (23, 33), 2: (34, 44), 3: (45, 55)}
# ... and of a `-6` vdW table row (radius, epsilon, reduction).
VDW_FIELDS: dict[int, tuple[int, int]] = {1: (5, 15), 2: (16, 26), 3: (27, 37)}
VDW_CHARGE_FIELD: tuple[int, int] = (38, 48)
FIELD_WIDTH = 10
# Decimals always written (the published files print 4); a value that 4 decimals do not hold
# exactly gets more, as many as fit after one leading blank (:func:`format_value`).
MIN_DECIMALS = 4

# Kinds an optimization changes by default (bond dipoles set charges; they stay fixed).
DEFAULT_EXCLUDED_KINDS: frozenset[str] = frozenset({"bond_dipole"})


@dataclass(frozen=True, order=True)
class ParamRef:
    """Identity of one force-field value: 1-based `.fld` line and value field 1..3."""

    line: int
    field: int

    def __str__(self) -> str:
        return f"{self.line}:{self.field}"


@dataclass(frozen=True)
class FunctionEntry:
    """One ` 0` line of the `-1` table: a term's functional form and unit factor (or a SEL label)."""

    line: int
    term: str
    form: int
    factor: float | None
    label: str = ""
    description: str = ""


@dataclass(frozen=True)
class Equivalence:
    """One `-5` line: a new atom type name standing for several MacroModel types."""

    line: int
    number: int
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Substructure:
    """A special substructure: name line (` C`), pattern lines (` 9`), rows up to its `-3`.

    ``number`` is the 1-based count of substructures in the file, as MacroModel prints it in
    the `.mmo` "Alts" column of rows that come from a substructure. ``stop`` marks an ` S`
    name line (matched atoms are not offered to later substructures).
    """

    number: int
    name: str
    name_line: int
    patterns: tuple[str, ...]
    pattern_lines: tuple[int, ...]
    opt: bool
    end_line: int | None = None
    stop: bool = False


@dataclass(frozen=True)
class ParamRow:
    """One parsed parameter row (or `-6` vdW table row).

    ``atoms`` holds MM3 type names at standard rows; at substructure rows an ``int`` is a
    1-based position in the substructure pattern and a ``str`` a type name. ``bond_orders``
    are the symbols between standard-row atoms (``-``, ``=``, ``*``, ``%`` or ``' '``).
    ``values`` are the three value fields (None where blank).
    """

    line: int
    code: str
    term: str
    atoms: tuple[str | int, ...]
    bond_orders: tuple[str, ...]
    values: tuple[float | None, ...]
    alt: str
    comment: str
    substructure: Substructure | None
    descriptors: tuple[str, ...] = ()
    select: str = ""
    charge: float | None = None
    continuation_lines: tuple[int, ...] = ()

    @property
    def last_line(self) -> int:
        """Last line of the row; MacroModel's `.mmo` "FF Line" names this one."""
        return self.continuation_lines[-1] if self.continuation_lines else self.line

    @property
    def fields(self) -> tuple[int, ...]:
        """Value fields (1-based) that carry a parameter and are not blank."""
        return tuple(f for f, v in enumerate(self.values, start=1) if v is not None and (self.term, f) in PARAM_KINDS)

    def ref(self, field_no: int) -> ParamRef:
        return ParamRef(self.line, field_no)

    @property
    def is_alternative(self) -> bool:
        return bool(self.alt)

    @property
    def opt_marked(self) -> bool:
        """A row whose select/comment area (columns 81 on) carries the word OPT."""
        return "OPT" in self.select.split() or "OPT" in self.comment.split()


@dataclass(frozen=True)
class ActiveParam:
    """One active parameter with what a user needs to recognise it."""

    ref: ParamRef
    kind: str
    unit: str
    value: float
    row: ParamRow


@dataclass(frozen=True, eq=False)
class ForceField:
    """A MacroModel force field: raw lines (with their line endings) plus parsed content."""

    path: Path | None
    lines: tuple[str, ...]
    rows: tuple[ParamRow, ...]
    functions: tuple[FunctionEntry, ...] = ()
    equivalences: tuple[Equivalence, ...] = ()
    substructures: tuple[Substructure, ...] = ()
    _by_line: dict[int, ParamRow] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self._by_line:
            object.__setattr__(self, "_by_line", _index_rows(self.rows))

    # ---- lookup -------------------------------------------------------------------------
    def row(self, line: int) -> ParamRow:
        """The parsed row on a 1-based line (a descriptor continuation line gives its row).

        ParameterLookupError (a KeyError) if the line holds no row. `.mmo` "FF Line" numbers resolve here directly.
        """
        try:
            return self._by_line[line]
        except KeyError:
            raise ParameterLookupError(f"{self._name()}: line {line} holds no parameter row") from None

    def param_row(self, ref: ParamRef) -> ParamRow:
        """The row holding a parameter (its values sit on the row's first line)."""
        row = self.row(ref.line)
        if row.line != ref.line:
            raise ParameterLookupError(
                f"{self._name()}: line {ref.line} continues row {row.line}; its values are ParamRef({row.line}, f)"
            )
        return row

    def value(self, ref: ParamRef) -> float:
        """The value of one parameter (as parsed from the file)."""
        row = self.param_row(ref)
        value = row.values[ref.field - 1] if ref.field in (1, 2, 3) else None
        if value is None:
            raise ParameterLookupError(f"{self._name()}: line {ref.line} has no value in field {ref.field}")
        return float(value)

    def kind(self, ref: ParamRef) -> tuple[str, str]:
        """(kind label, unit) of a parameter, e.g. ('bond_k', 'mdyn/A')."""
        row = self.param_row(ref)
        try:
            return PARAM_KINDS[(row.term, ref.field)]
        except KeyError:
            raise ParameterLookupError(
                f"{self._name()}: {row.term} row {ref.line} has no parameter in field {ref.field}"
            ) from None

    def rows_of(self, term: str) -> tuple[ParamRow, ...]:
        """Rows of one term ('bond', 'angle', 'torsion', 'vdw', ...), in file order."""
        return tuple(r for r in self.rows if r.term == term)

    def standard_rows(self, term: str) -> tuple[ParamRow, ...]:
        """Rows of one term outside every substructure."""
        return tuple(r for r in self.rows if r.term == term and r.substructure is None)

    def substructure_rows(self, number: int) -> tuple[ParamRow, ...]:
        """Rows of the substructure with this 1-based number."""
        return tuple(r for r in self.rows if r.substructure is not None and r.substructure.number == number)

    def equivalence_map(self) -> dict[str, tuple[str, ...]]:
        """Equivalence name ('PX') -> member types ('P0', 'P3', ...)."""
        return {e.name: e.members for e in self.equivalences}

    def unit_factor(self, term: str) -> float:
        """Unit factor of a `-1` table term ('STR', 'TOR', 'ELE', ...)."""
        for f in self.functions:
            if f.term == term and f.factor is not None:
                return f.factor
        raise ParameterLookupError(f"{self._name()}: no unit factor for {term!r} in the -1 table")

    def text(self) -> str:
        return "".join(self.lines)

    # ---- active set ---------------------------------------------------------------------
    def active_rows(self) -> tuple[ParamRow, ...]:
        """Rows of OPT substructures plus standard rows marked OPT, in file order."""
        return tuple(r for r in self.rows if (r.substructure.opt if r.substructure is not None else r.opt_marked))

    def active_refs(
        self,
        only: Iterable[tuple[int, int] | ParamRef] | None = None,
        *,
        exclude_kinds: Iterable[str] = DEFAULT_EXCLUDED_KINDS,
    ) -> tuple[ParamRef, ...]:
        """Ordered ParamRefs of the active set, optionally narrowed to (line, field) pairs.

        Blank fields and kinds in ``exclude_kinds`` (bond dipoles by default) are left out.
        A pair in ``only`` that is not active raises ParameterLookupError (a KeyError).
        """
        excluded = set(exclude_kinds)
        refs = [r.ref(f) for r in self.active_rows() for f in r.fields if PARAM_KINDS[(r.term, f)][0] not in excluded]
        if only is None:
            return tuple(refs)
        wanted = [ParamRef(*p) if not isinstance(p, ParamRef) else p for p in only]
        missing = [w for w in wanted if w not in set(refs)]
        if missing:
            raise ParameterLookupError(f"{self._name()}: not active parameters: {', '.join(map(str, missing))}")
        keep = set(wanted)
        return tuple(r for r in refs if r in keep)

    def active_params(self, only: Iterable[tuple[int, int] | ParamRef] | None = None) -> tuple[ActiveParam, ...]:
        """The active parameters with kind label, unit, value and the row they sit on."""
        out = []
        for ref in self.active_refs(only):
            kind, unit = self.kind(ref)
            out.append(ActiveParam(ref, kind, unit, self.value(ref), self.row(ref.line)))
        return tuple(out)

    # ---- editing ------------------------------------------------------------------------
    def with_values(self, values: Mapping[ParamRef, float]) -> ForceField:
        """A new ForceField with values spliced into their fields (:func:`format_value`).

        Every other byte is kept; the parsed rows hold the values as written. A value that
        does not fit its 10 characters raises FieldOverflowError (never truncated).
        """
        lines = list(self.lines)
        rows = {r.line: r for r in self.rows}
        for ref, value in values.items():
            row = self.param_row(ref)
            self.kind(ref)  # refuses fields that carry no parameter
            text = format_value(float(value), ref)
            lines[ref.line - 1] = _splice(lines[ref.line - 1], _slot(row, ref.field), text)
            new_values = list(row.values)
            new_values[ref.field - 1] = float(text)
            rows[ref.line] = replace(row, values=tuple(new_values))
        new_rows = tuple(rows[r.line] for r in self.rows)
        return replace(self, lines=tuple(lines), rows=new_rows, _by_line=_index_rows(new_rows))

    def _name(self) -> str:
        return str(self.path) if self.path is not None else "<force field>"


def _index_rows(rows: Sequence[ParamRow]) -> dict[int, ParamRow]:
    index = {r.line: r for r in rows}
    for r in rows:
        for extra in r.continuation_lines:
            index[extra] = r
    return index


def _slot(row: ParamRow, field_no: int) -> tuple[int, int]:
    return (VDW_FIELDS if row.term == "vdw" else ROW_FIELDS)[field_no]


def format_value(value: float, ref: ParamRef | None = None) -> str:
    """A value right-aligned in a 10-character field: ``%10.4f`` when 4 decimals hold it exactly,
    else the fewest decimals that do, at most as many as fit after one leading blank.

    A fitted value rounded to 4 decimals can score far from the optimizer's point (the inner
    minimizations amplify a 5e-5 change: issue 17), and MacroModel reads the fields with an
    explicit decimal point, so every printed digit counts. FieldOverflowError if even 4
    decimals need more than 10 characters, or for nan/inf.
    """
    text = f"{value:{FIELD_WIDTH}.{MIN_DECIMALS}f}"
    if len(text) != FIELD_WIDTH or not math.isfinite(value):
        where = f" at {ref}" if ref is not None else ""
        raise FieldOverflowError(f"value {value!r}{where} does not fit a {FIELD_WIDTH}-character .fld field")
    decimals = MIN_DECIMALS
    while float(text) != value:
        longer = f"{value:{FIELD_WIDTH}.{decimals + 1}f}"
        if longer[0] != " ":  # keep one blank before the number
            break
        text, decimals = longer, decimals + 1
    return text


def _splice(line: str, slot: tuple[int, int], text: str) -> str:
    start, stop = slot
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    body = body.ljust(stop)
    return body[:start] + text + body[stop:] + ending


def refs_of(pairs: Sequence[tuple[int, int]]) -> tuple[ParamRef, ...]:
    """(line, field) pairs -> ParamRefs."""
    return tuple(ParamRef(int(a), int(b)) for a, b in pairs)
