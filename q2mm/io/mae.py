"""Maestro `.mae` reader: every `f_m_ct` block becomes a Molecule.

Grammar handled: blocks ``name {`` ... ``}``, a block's property names, ``:::``, then its
values; indexed tables ``m_atom[N] {`` / ``m_bond[M] {`` whose rows start with a row index;
double-quoted values (``\\"`` escapes); ``<>`` for an empty value; ``# ... #`` comments in
the property lists. Atom types come from ``i_m_mmod_type`` through the standard MacroModel
table plus, when given, a custom `atom.typ`. Units as written: coordinates in Angstrom, Jaguar's
atomic charges (``properties['qm_charge_sets']``, CHARGE_COLUMNS) in e.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.errors import InputFormatError, UnknownAtomTypeInFileError
from q2mm.io.atomtyp import AtomTypeTable, read_atomtyp, standard_table
from q2mm.io.text import read_text
from q2mm.model import elements
from q2mm.model.molecule import Bond, Molecule

__all__ = ["read_mae", "parse_mae", "MaeBlock", "UnknownAtomTypeInFileError"]

SEPARATOR = ":::"
EMPTY = "<>"
REQUIRED_ATOM_COLUMNS = ("r_m_x_coord", "r_m_y_coord", "r_m_z_coord")
# Atomic charges Jaguar writes into the atom table of its .mae (e), by method (a system's ``charges``)
CHARGE_COLUMNS = {
    "esp": ("r_j_ESP_Charges", "Jaguar ESP (.mae)"),
    "mulliken": ("r_j_Mulliken_Charges", "Jaguar Mulliken (.mae)"),
}


@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    quoted: bool = False


@dataclass
class MaeTable:
    """An indexed table (``m_atom[N]``): column names, rows of values, and each row's line."""

    name: str
    columns: list[str]
    rows: list[list[Any]]
    lines: list[int]

    def column(self, key: str) -> list[Any]:
        j = self.columns.index(key)
        return [row[j] for row in self.rows]


@dataclass
class MaeBlock:
    """A block: its properties (name -> value), nested blocks and indexed tables."""

    name: str
    line: int
    properties: dict[str, Any] = field(default_factory=dict)
    blocks: list[MaeBlock] = field(default_factory=list)
    tables: dict[str, MaeTable] = field(default_factory=dict)


def read_mae(
    path: str | os.PathLike[str],
    atomtyp: str | os.PathLike[str] | AtomTypeTable | None = None,
) -> list[Molecule]:
    """Read every structure (`f_m_ct` block) of a `.mae` file as a Molecule.

    ``atomtyp`` is a custom `atom.typ` (path or table) for type numbers beyond the standard
    MacroModel ones. An unknown type -> UnknownAtomTypeInFileError naming file and line.
    """
    path = Path(path)
    text = read_text(path, ".mae file")
    if atomtyp is None:
        table = standard_table()
    elif isinstance(atomtyp, AtomTypeTable):
        table = atomtyp
    else:
        table = read_atomtyp(atomtyp)
    return [_molecule(block, path, table) for block in parse_mae(text, path) if block.name == "f_m_ct"]


def parse_mae(text: str, path: str | os.PathLike[str] = "<string>") -> list[MaeBlock]:
    """The top-level blocks of `.mae` text (the unnamed header block has name '')."""
    reader = _BlockReader(list(_tokenize(text, Path(path))), Path(path))
    return reader.top_level()


def _tokenize(text: str, path: Path) -> Iterator[_Token]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        i, n = 0, len(line)
        while i < n:
            ch = line[i]
            if ch.isspace():
                i += 1
            elif ch == "#":
                end = line.find("#", i + 1)
                i = n if end < 0 else end + 1
            elif ch == '"':
                value, i = _quoted(line, i, path, line_no)
                yield _Token(value, line_no, quoted=True)
            else:
                j = i
                while j < n and not line[j].isspace():
                    j += 1
                yield _Token(line[i:j], line_no)
                i = j


def _quoted(line: str, start: int, path: Path, line_no: int) -> tuple[str, int]:
    out, i = [], start + 1
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise InputFormatError(path, line_no, "a closing double quote", line[start:].strip())


class _BlockReader:
    def __init__(self, tokens: list[_Token], path: Path):
        self.tokens = tokens
        self.pos = 0
        self.path = path

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str) -> _Token:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise InputFormatError(self.path, last, expected, "end of file")
        self.pos += 1
        return tok

    def top_level(self) -> list[MaeBlock]:
        blocks = []
        while self.peek() is not None:
            tok = self.take("a block")
            if tok.text == "{" and not tok.quoted:
                blocks.append(self.block("", tok.line))
            else:
                opener = self.take(f"'{{' after block name {tok.text!r}")
                if opener.text != "{":
                    raise InputFormatError(self.path, opener.line, f"'{{' after block name {tok.text!r}", opener.text)
                blocks.append(self.block(tok.text, tok.line))
        return blocks

    def keys(self, name: str) -> list[str]:
        keys: list[str] = []
        while True:
            tok = self.take(f"property names then ':::' in block {name!r}")
            if tok.text == SEPARATOR and not tok.quoted:
                return keys
            if tok.text in ("{", "}") and not tok.quoted:
                raise InputFormatError(self.path, tok.line, f"property names then ':::' in block {name!r}", tok.text)
            keys.append(tok.text)

    def block(self, name: str, line: int) -> MaeBlock:
        out = MaeBlock(name, line)
        keys = self.keys(name)
        for key in keys:
            tok = self.take(f"a value for {key!r} in block {name!r}")
            out.properties[key] = _convert(key, tok, self.path)
        while True:
            tok = self.take(f"'}}' closing block {name!r}")
            if tok.text == "}" and not tok.quoted:
                return out
            opener = self.take(f"'{{' after {tok.text!r}")
            if opener.text != "{":
                raise InputFormatError(
                    self.path,
                    opener.line,
                    f"'{{' opening sub-block {tok.text!r} (or '}}' closing {name!r})",
                    opener.text,
                )
            if "[" in tok.text:
                table = self.table(tok)
                out.tables[table.name] = table
            else:
                out.blocks.append(self.block(tok.text, tok.line))

    def table(self, head: _Token) -> MaeTable:
        name, _, count_text = head.text.partition("[")
        try:
            count = int(count_text.rstrip("]"))
        except ValueError:
            raise InputFormatError(self.path, head.line, "a row count like m_atom[36]", head.text) from None
        columns = self.keys(name)
        rows: list[list[str]] = []
        lines: list[int] = []
        for _ in range(count):
            first = self.take(f"{count} rows in {name}")
            if first.text == SEPARATOR:
                raise InputFormatError(
                    self.path,
                    first.line,
                    f"{count} rows in {name}, each an index and {len(columns)} values",
                    f"only {len(rows)} rows",
                )
            if first.text != str(len(rows) + 1) or (lines and first.line == lines[-1]):
                raise InputFormatError(
                    self.path,
                    first.line,
                    f"row {len(rows) + 1} of {name} on its own line: its index then {len(columns)} values",
                    first.text,
                )
            tokens = self._rest_of_line(first.line)
            if len(tokens) != len(columns):
                raise InputFormatError(
                    self.path,
                    first.line,
                    f"{len(columns)} values after the row index in {name} (one per column: {', '.join(columns)})",
                    f"{len(tokens)} values",
                )
            rows.append([_convert(col, tok, self.path) for col, tok in zip(columns, tokens)])
            lines.append(first.line)
        end = self.take(f"':::' after the {count} rows of {name}")
        if end.text != SEPARATOR:
            raise InputFormatError(
                self.path, end.line, f"':::' after the {count} rows of {name} ({len(columns)} values per row)", end.text
            )
        close = self.take(f"'}}' closing {name}")
        if close.text != "}":
            raise InputFormatError(self.path, close.line, f"'}}' closing {name}", close.text)
        return MaeTable(name, columns, rows, lines)

    def _rest_of_line(self, line: int) -> list[_Token]:
        """The remaining tokens on one line (a table row is one line)."""
        out = []
        while (tok := self.peek()) is not None and tok.line == line:
            out.append(tok)
            self.pos += 1
        return out


def _convert(key: str, tok: _Token, path: Path) -> Any:
    if tok.text == EMPTY and not tok.quoted:
        return None
    kind = key[:2]
    try:
        if kind == "i_":
            return int(tok.text)
        if kind == "r_":
            return float(tok.text)
        if kind == "b_":
            return bool(int(tok.text))
    except ValueError:
        names = {"i_": "an integer", "r_": "a real number", "b_": "0 or 1"}
        raise InputFormatError(path, tok.line, f"{names[kind]} for {key!r}", tok.text) from None
    return tok.text


def _molecule(block: MaeBlock, path: Path, table: AtomTypeTable) -> Molecule:
    atoms = block.tables.get("m_atom")
    if atoms is None:
        raise InputFormatError(path, block.line, "an m_atom[N] table in the f_m_ct block", None)
    for col in REQUIRED_ATOM_COLUMNS:
        if col not in atoms.columns:
            raise InputFormatError(path, block.line, f"column {col!r} in m_atom", ", ".join(atoms.columns))
    coords = np.array([atoms.column(c) for c in REQUIRED_ATOM_COLUMNS], dtype=np.float64).T
    type_numbers = tuple(atoms.column("i_m_mmod_type")) if "i_m_mmod_type" in atoms.columns else None
    types = [_atom_type(n, path, line, table) for n, line in zip(type_numbers, atoms.lines)] if type_numbers else None
    element_list = _elements(atoms, types, path)
    charges = _formal_charges(atoms, types)
    title = block.properties.get("s_m_title") or ""
    return Molecule(
        title=title,
        elements=tuple(element_list),
        coords=coords.reshape(-1, 3),
        bonds=_bonds(block, path, len(element_list)),
        atom_types=tuple(t.name for t in types) if types else None,
        type_numbers=type_numbers,
        formal_charges=charges,
        charge=int(sum(charges)) if charges else 0,
        source=f"{path}:{block.line}",
        properties={**block.properties, **_charge_sets(atoms)},
    )


def _charge_sets(atoms: MaeTable) -> dict:
    """Jaguar's charges (ESP-fitted, Mulliken; e) of every atom, where the atom table carries them."""
    sets = {
        method: (source, np.array(atoms.column(column), dtype=np.float64))
        for method, (column, source) in CHARGE_COLUMNS.items()
        if column in atoms.columns and all(q is not None for q in atoms.column(column))
    }
    return {"qm_charge_sets": sets} if sets else {}


def _atom_type(number: int | None, path: Path, line: int, table: AtomTypeTable):
    if number is None or number not in table:
        raise UnknownAtomTypeInFileError(
            path, line, "a MacroModel atom type known to the standard table or atom.typ", str(number)
        )
    return table.get(number)


def _elements(atoms: MaeTable, types, path: Path) -> list[str]:
    if "i_m_atomic_number" in atoms.columns:
        out = []
        for z, t, line in zip(atoms.column("i_m_atomic_number"), types or [None] * len(atoms.rows), atoms.lines):
            if z is not None and 0 < z < len(elements.SYMBOLS):
                out.append(elements.SYMBOLS[z])
            elif t is not None and t.element != "X":
                out.append(t.element)
            else:
                raise InputFormatError(path, line, "an atomic number (i_m_atomic_number) or a typed atom", str(z))
        return out
    if types is None:
        raise InputFormatError(
            path, atoms.lines[0] if atoms.lines else None, "i_m_atomic_number or i_m_mmod_type in m_atom", None
        )
    return [t.element for t in types]


def _formal_charges(atoms: MaeTable, types) -> tuple[int, ...] | None:
    if "i_m_formal_charge" in atoms.columns:
        return tuple(int(c or 0) for c in atoms.column("i_m_formal_charge"))
    if types is None:
        return None
    return tuple(t.formal_charge for t in types)


def _bonds(block: MaeBlock, path: Path, n_atoms: int) -> tuple[Bond, ...]:
    table = block.tables.get("m_bond")
    if table is None:
        return ()
    for col in ("i_m_from", "i_m_to", "i_m_order"):
        if col not in table.columns:
            raise InputFormatError(path, block.line, f"column {col!r} in m_bond", ", ".join(table.columns))
    seen: dict[tuple[int, int], Bond] = {}
    for a, b, order, line in zip(
        table.column("i_m_from"), table.column("i_m_to"), table.column("i_m_order"), table.lines
    ):
        if not (1 <= a <= n_atoms and 1 <= b <= n_atoms) or a == b:
            raise InputFormatError(path, line, f"bond atoms between 1 and {n_atoms}", f"{a} {b}")
        i, j = sorted((a - 1, b - 1))
        seen.setdefault((i, j), Bond(i, j, float(order)))
    return tuple(seen.values())
