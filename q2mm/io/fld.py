"""MacroModel `.fld` force-field reader and writer (fixed columns, byte-identical round trip).

Layout (see docs of the ForceField model): `-1` function table, `-5` equivalences, `-2`
section starts, parameter rows (kind code in columns 1-2, a lowercase letter in column 1
marks an alternative), `-6` vdW table up to ``END OF NONBONDED``, `-3` substructure
boundaries with ` C  name` + ` 9  pattern` lines. Standard rows name atom types in
columns [4:6], [9:11], [14:16], [19:21] with bond-order symbols at 7, 12, 17;
substructure rows name pattern positions or types in [4:6], [8:10], [12:14], [16:18].
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from q2mm.errors import InputFormatError
from q2mm.io.text import read_text
from q2mm.model.forcefield import (
    ROW_FIELDS,
    VDW_CHARGE_FIELD,
    VDW_FIELDS,
    Equivalence,
    ForceField,
    ForceFieldWriteError,
    FunctionEntry,
    ParamRow,
    Substructure,
)
from q2mm.model.termtable import ATOMS_PER_TERM, TERM_OF_CODE

__all__ = ["read_fld", "parse_fld", "write_fld"]

STANDARD_ATOM_SLOTS = ((4, 6), (9, 11), (14, 16), (19, 21))
STANDARD_ORDER_COLUMNS = (7, 12, 17)
SUBSTRUCTURE_ATOM_SLOTS = ((4, 6), (8, 10), (12, 14), (16, 18))
DESCRIPTOR_COLUMNS = (55, 80)
SELECT_COLUMNS = (80, 89)
ALT_SET_COLUMNS = (89, 95)
COMMENT_START = 95
SUBSTRUCTURE_OPT = re.compile(r"\bOPT\b")
VDW_END = "END OF NONBONDED"
WILDCARD = "00"


def read_fld(path: str | os.PathLike[str]) -> ForceField:
    """Read a MacroModel `.fld` file. Bad input -> InputFormatError naming file and line."""
    path = Path(path)
    return parse_fld(read_text(path, ".fld file"), path)


def write_fld(ff: ForceField, path: str | os.PathLike[str]) -> Path:
    """Write ``ff`` byte for byte to ``path``; refuses the file ``ff`` was read from."""
    path = Path(path)
    if ff.path is not None and path.exists() and path.resolve() == Path(ff.path).resolve():
        raise ForceFieldWriteError(f"refusing to overwrite {path}: it is the file this force field was read from")
    path.write_bytes(ff.text().encode("utf-8"))
    return path


def parse_fld(text: str, path: str | os.PathLike[str] = "<string>") -> ForceField:
    """Parse `.fld` text (kept with its line endings) into a ForceField."""
    parser = _Parser(Path(path), text.splitlines(keepends=True))
    parser.run()
    substructures = parser.finished_substructures()
    by_number = {s.number: s for s in substructures}
    rows = tuple(
        r if r.substructure is None else replace(r, substructure=by_number[r.substructure.number]) for r in parser.rows
    )
    return ForceField(
        path=Path(path) if str(path) != "<string>" else None,
        lines=tuple(parser.lines),
        rows=rows,
        functions=tuple(parser.functions),
        equivalences=tuple(parser.equivalences),
        substructures=tuple(substructures),
    )


@dataclass
class _OpenSubstructure:
    number: int
    name: str
    name_line: int
    opt: bool
    stop: bool = False
    patterns: list[str] = field(default_factory=list)
    pattern_lines: list[int] = field(default_factory=list)
    end_line: int | None = None
    frozen: Substructure | None = None

    def freeze(self) -> Substructure:
        if self.frozen is None:
            self.frozen = Substructure(
                self.number,
                self.name,
                self.name_line,
                tuple(self.patterns),
                tuple(self.pattern_lines),
                self.opt,
                stop=self.stop,
            )
        return self.frozen


class _Parser:
    """A line-by-line state machine over the sections of a `.fld` file."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.lines = lines
        self.bodies = [ln.rstrip("\r\n") for ln in lines]
        self.rows: list[ParamRow] = []
        self.functions: list[FunctionEntry] = []
        self.equivalences: list[Equivalence] = []
        self.substructures: list[_OpenSubstructure] = []
        self.section = "text"
        self.current: _OpenSubstructure | None = None
        self.marker_lines: dict[str, int] = {}  # section marker -> 1-based line of its last occurrence
        self.vdw_closed = False

    def finished_substructures(self) -> list[Substructure]:
        out = []
        for sub in self.substructures:
            frozen = sub.freeze()
            out.append(Substructure(**{**frozen.__dict__, "end_line": sub.end_line}))
        return out

    def run(self) -> None:
        for index, body in enumerate(self.bodies):
            self.line_no = index + 1
            self.step(body, index)
        self.check_complete()

    def check_complete(self) -> None:
        """A file cut short: open substructure, open vdW table, a last line cut inside a field, a
        parameter section never closed by '-3' (every complete file, general or substructure-only,
        ends its rows with '-3'), or a general file (with a '-1' function table) without its
        closed '-6' vdW table."""
        last = len(self.lines)
        if self.lines and not self.lines[-1].endswith(("\n", "\r")) and self.rows and self.rows[-1].line == last:
            self.check_last_line_fields(self.bodies[-1], self.rows[-1])
        if self.current is not None and self.current.end_line is None and self.section in ("rows", "sub_header"):
            raise InputFormatError(
                self.path, last, "'-3' closing substructure " + repr(self.current.name), "end of file"
            )
        if self.section == "vdw":
            raise InputFormatError(self.path, last, f"'{VDW_END}' closing the -6 vdW table", "end of file")
        if "-1" in self.marker_lines and not self.vdw_closed:
            raise InputFormatError(
                self.path,
                last,
                f"the -6 vdW table closed by '{VDW_END}' of a complete MM3* file (its -1 function table is on "
                f"line {self.marker_lines['-1']}; file cut short?)",
                "end of file",
            )
        if self.section == "rows":
            raise InputFormatError(
                self.path,
                last,
                f"'-3' closing the parameter section opened by '-2' on line {self.marker_lines['-2']} (file cut short?)",
                "end of file",
            )

    def check_last_line_fields(self, body: str, row: ParamRow) -> None:
        slots = VDW_FIELDS if row.term == "vdw" else ROW_FIELDS
        for field_no, (start, stop) in slots.items():
            if start < len(body) < stop and body[start:].strip():
                raise InputFormatError(
                    self.path,
                    row.line,
                    f"field {field_no} complete in columns {start + 1}-{stop} (file cut short?)",
                    body[start:],
                )

    def step(self, body: str, index: int) -> None:
        marker = body[:2]
        if marker in ("-1", "-5", "-6", "-2", "-3"):
            self.enter(marker)
        elif self.is_substructure_name(body, index):
            self.open_substructure(body)
        elif body[:2] == " 9" and self.current is not None and self.section == "sub_header":
            self.current.patterns.append(body[2:].strip())
            self.current.pattern_lines.append(self.line_no)
        elif _is_blank_or_comment(body):
            return
        elif self.section == "functions" and body[:2] == " 0":
            self.functions.append(self.parse_function(body))
        elif self.section == "equivalences" and body[:2].strip().isdigit():
            self.equivalences.append(self.parse_equivalence(body))
        elif self.section == "vdw":
            self.parse_vdw_line(body)
        elif self.section == "rows":
            row = self.parse_row(body)
            if row is not None:
                self.rows.append(row)

    # ---- sections -------------------------------------------------------------------
    def enter(self, marker: str) -> None:
        self.marker_lines[marker] = self.line_no
        if marker == "-1":
            self.section = "functions"
        elif marker == "-5":
            self.section = "equivalences"
        elif marker == "-6":
            self.section = "vdw"
        elif marker == "-2":
            self.section = "rows"
        elif marker == "-3":
            if self.current is not None and self.current.end_line is None and self.section == "rows":
                self.current.end_line = self.line_no
            self.current = None
            self.section = "substructures"

    def is_substructure_name(self, body: str, index: int) -> bool:
        """A ` C` (or ` S`, 'stop') line directly followed by a ` 9` pattern line names a substructure."""
        if body[:2] not in (" C", " S") or index + 1 >= len(self.bodies):
            return False
        return self.bodies[index + 1][:2] == " 9"

    def open_substructure(self, body: str) -> None:
        if self.current is not None and self.current.end_line is None and self.section == "rows":
            raise InputFormatError(
                self.path,
                self.line_no,
                "'-3' closing substructure " + repr(self.current.name) + " before a new one",
                body,
            )
        name = body[2:].strip()
        sub = _OpenSubstructure(
            len(self.substructures) + 1, name, self.line_no, bool(SUBSTRUCTURE_OPT.search(name)), stop=body[1] == "S"
        )
        self.substructures.append(sub)
        self.current = sub
        self.section = "sub_header"

    # ---- line parsers ---------------------------------------------------------------
    def parse_function(self, body: str) -> FunctionEntry:
        tokens = body.split()
        if len(tokens) < 3 or not tokens[2].lstrip("-").isdigit():
            raise InputFormatError(self.path, self.line_no, "a function-table line ' 0  TERM  form  factor'", body)
        term, form, rest = tokens[1], int(tokens[2]), tokens[3:]
        if term == "SEL" or not rest:
            return FunctionEntry(self.line_no, term, form, None, rest[0] if rest else "", " ".join(rest[1:]))
        try:
            return FunctionEntry(self.line_no, term, form, float(rest[0]))
        except ValueError:
            raise InputFormatError(
                self.path, self.line_no, f"a unit factor for {term} in the function table", rest[0]
            ) from None

    def parse_equivalence(self, body: str) -> Equivalence:
        tokens = body.split()
        if len(tokens) < 3:
            raise InputFormatError(self.path, self.line_no, "an equivalence line 'n  NEW  T1 T2 ...'", body)
        return Equivalence(self.line_no, int(tokens[0]), tokens[1], tuple(tokens[2:]))

    def parse_vdw_line(self, body: str) -> None:
        if VDW_END in body:
            self.section = "text"
            self.vdw_closed = True
            return
        atom = body[:5].strip()
        if not atom:
            raise InputFormatError(
                self.path, self.line_no, "a vdW table row starting with an atom type in columns 1-5", body
            )
        values = tuple(self.number(body, VDW_FIELDS[f], f) for f in (1, 2, 3))
        if values[0] is None or values[1] is None:
            raise InputFormatError(self.path, self.line_no, "vdW radius and epsilon in columns 6-15 and 17-26", body)
        charge = self.number(body, VDW_CHARGE_FIELD, 4)
        descriptors = tuple(body[48:80].split())
        self.rows.append(
            ParamRow(
                line=self.line_no,
                code="-6",
                term="vdw",
                atoms=(atom,),
                bond_orders=(),
                values=values,
                alt="",
                comment=body[COMMENT_START:].strip(),
                substructure=None,
                descriptors=descriptors,
                select=body[SELECT_COLUMNS[0] : COMMENT_START].strip(),
                charge=charge,
            )
        )

    def parse_row(self, body: str) -> ParamRow | None:
        code = body[:2]
        alt = code[0] if code[0].isalpha() and code[0].islower() else ""
        kind = code.strip() if not alt else code[1]
        if kind == "9":
            raise InputFormatError(
                self.path, self.line_no, "a ' 9' pattern line only right after a substructure name line", body
            )
        term = TERM_OF_CODE.get(kind, "unknown")
        if term == "unknown" and not (kind.isalnum() and len(kind) == 1):
            raise InputFormatError(self.path, self.line_no, "a parameter row with a kind code in columns 1-2", body)
        in_sub = self.current is not None
        if not in_sub and _is_descriptor_continuation(body):
            self.extend_previous_row(body)
            return None
        if term == "torsion_cont":
            atoms, orders = self.continued_torsion_atoms(body)
        else:
            atoms, orders = self.parse_atoms(body, term, in_sub)
        values = tuple(self.number(body, ROW_FIELDS[f], f) for f in (1, 2, 3))
        sub = self.current.freeze() if self.current is not None else None
        return ParamRow(
            line=self.line_no,
            code=code.strip(),
            term=term,
            atoms=atoms,
            bond_orders=orders,
            values=values,
            alt=alt,
            comment=body[COMMENT_START:].strip(),
            substructure=sub,
            descriptors=tuple(body[DESCRIPTOR_COLUMNS[0] : DESCRIPTOR_COLUMNS[1]].split()),
            select=body[SELECT_COLUMNS[0] : COMMENT_START].strip(),
        )

    def continued_torsion_atoms(self, body: str) -> tuple[tuple[str | int, ...], tuple[str, ...]]:
        """A '54' row carries V4-V6 of the torsion row right above it (same atoms)."""
        previous = self.rows[-1] if self.rows else None
        if previous is None or previous.term != "torsion" or previous.line != self.line_no - 1:
            raise InputFormatError(self.path, self.line_no, "a '54' V4-V6 row right after its torsion row", body[:22])
        return previous.atoms, previous.bond_orders

    def extend_previous_row(self, body: str) -> None:
        """Attach a descriptor continuation line to the row right above it."""
        previous = self.rows[-1] if self.rows else None
        expected_line = previous.line + 1 + len(previous.continuation_lines) if previous else None
        if previous is None or expected_line != self.line_no or previous.code != body[:2].strip():
            raise InputFormatError(
                self.path, self.line_no, "a descriptor continuation right after its parameter row", body.strip()
            )
        extra = tuple(body[DESCRIPTOR_COLUMNS[0] : DESCRIPTOR_COLUMNS[1]].split())
        self.rows[-1] = replace(
            previous,
            continuation_lines=previous.continuation_lines + (self.line_no,),
            descriptors=previous.descriptors + extra,
        )

    def parse_atoms(self, body: str, term: str, in_sub: bool) -> tuple[tuple[str | int, ...], tuple[str, ...]]:
        slots = SUBSTRUCTURE_ATOM_SLOTS if in_sub else STANDARD_ATOM_SLOTS
        n = ATOMS_PER_TERM.get(term, 4)
        atoms: list[str | int] = []
        for start, stop in slots[:n]:
            text = body[start:stop].strip()
            if not text:
                break
            atoms.append(int(text) if in_sub and text.isdigit() and text != WILDCARD else text)
        if len(atoms) < min(n, 2):
            raise InputFormatError(self.path, self.line_no, f"{n} atom types for a {term} row", body[:22])
        orders = (
            () if in_sub else tuple(body[c] if c < len(body) else " " for c in STANDARD_ORDER_COLUMNS[: len(atoms) - 1])
        )
        return tuple(atoms), orders

    def number(self, body: str, slot: tuple[int, int], field_no: int) -> float | None:
        text = body[slot[0] : slot[1]].strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise InputFormatError(
                self.path,
                self.line_no,
                f"a number (or blank) in field {field_no}, columns {slot[0] + 1}-{slot[1]}",
                text,
            ) from None


def _is_blank_or_comment(body: str) -> bool:
    stripped = body.strip()
    return not stripped or body.startswith(" C") or body.startswith("#")


def _is_descriptor_continuation(body: str) -> bool:
    """A standard row holding only extra descriptors for the row above it."""
    return not body[2:55].strip()
