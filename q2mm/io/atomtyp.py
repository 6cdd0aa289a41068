"""MacroModel atom types: the standard MM3* type table and custom `atom.typ` files.

``STANDARD_TYPES`` maps MacroModel type numbers to (name, element, formal charge). The
numbers and names used by the shared rh-enamide structures were checked against the
connection tables MacroModel printed in the `.mmo` files (tests/io/test_atomtyp.py); the
rest follow MacroModel's published type list. A custom `atom.typ` (one line per type:
number, atomic number or ``!``, mass, name, ..., formal charge in column 16) adds to or
overrides the table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from q2mm.errors import InputFormatError, UnknownAtomTypeError
from q2mm.io.text import read_text
from q2mm.model import elements

__all__ = ["AtomType", "AtomTypeTable", "STANDARD_TYPES", "read_atomtyp", "standard_table"]

FORMAL_CHARGE_COLUMN = 15  # 0-based whitespace token of atom.typ holding the formal charge
MIN_TOKENS = 16  # every column up to the formal charge ('!' where unspecified)
UNSPECIFIED = "!"


@dataclass(frozen=True)
class AtomType:
    """One MacroModel atom type."""

    number: int
    name: str
    element: str
    mass: float | None
    formal_charge: int = 0
    description: str = ""
    source: str = "standard"
    line: int | None = None


def _std(number: int, name: str, element: str, charge: int = 0, description: str = "") -> AtomType:
    mass = elements.MONOISOTOPIC_MASS.get(element, 0.0) if element != "X" else 0.0
    return AtomType(number, name, element, mass, charge, description)


# Standard MacroModel atom types (number -> name, element, formal charge).
_STANDARD_LIST = (
    _std(1, "C1", "C", 0, "sp carbon"),
    _std(2, "C2", "C", 0, "sp2 carbon"),
    _std(3, "C3", "C", 0, "sp3 carbon"),
    _std(4, "CA", "C", 0, "united-atom CH (sp3)"),
    _std(5, "CB", "C", 0, "united-atom CH2 (sp3)"),
    _std(6, "CC", "C", 0, "united-atom CH3 (sp3)"),
    _std(7, "CD", "C", 0, "united-atom CH (sp2)"),
    _std(8, "CE", "C", 0, "united-atom CH2 (sp2)"),
    _std(9, "CF", "C", 0, "united-atom CH (sp)"),
    _std(10, "CM", "C", -1, "carbanion"),
    _std(11, "CP", "C", 1, "carbocation"),
    _std(12, "CR", "C", 0, "carbon radical"),
    _std(14, "C0", "C", 0, "any carbon"),
    _std(15, "O2", "O", 0, "double-bonded oxygen"),
    _std(16, "O3", "O", 0, "sp3 oxygen"),
    _std(17, "OA", "O", 0, "united-atom OH"),
    _std(18, "OB", "O", 0, "united-atom OH2"),
    _std(19, "OC", "O", -1, "carboxylate oxygen"),
    _std(20, "OD", "O", 0, "oxygen (sp2, aromatic)"),
    _std(21, "OE", "O", 0, "oxygen (sp3, water/ether)"),
    _std(22, "OM", "O", -1, "alkoxide oxygen"),
    _std(23, "OW", "O", 0, "water oxygen"),
    _std(24, "N1", "N", 0, "sp nitrogen"),
    _std(25, "N2", "N", 0, "sp2 nitrogen"),
    _std(26, "N3", "N", 0, "sp3 nitrogen"),
    _std(27, "NA", "N", 0, "united-atom NH (sp3)"),
    _std(28, "NB", "N", 0, "united-atom NH2 (sp3)"),
    _std(29, "NC", "N", 0, "united-atom NH (sp2)"),
    _std(30, "ND", "N", 0, "united-atom NH2 (sp2)"),
    _std(31, "N4", "N", 1, "sp2 nitrogen cation"),
    _std(32, "N5", "N", 1, "sp3 nitrogen cation"),
    _std(33, "NE", "N", 1, "united-atom NH3+"),
    _std(34, "NF", "N", 1, "united-atom NH+ (sp2)"),
    _std(35, "NM", "N", -1, "nitrogen anion"),
    _std(40, "N0", "N", 0, "any nitrogen"),
    _std(41, "H1", "H", 0, "hydrogen on carbon"),
    _std(42, "H2", "H", 0, "hydrogen on oxygen"),
    _std(43, "H3", "H", 0, "hydrogen on nitrogen"),
    _std(44, "H4", "H", 0, "hydrogen on charged nitrogen"),
    _std(45, "H5", "H", 0, "hydrogen (other)"),
    _std(48, "H0", "H", 0, "any hydrogen"),
    _std(49, "S1", "S", 0, "sulfide sulfur"),
    _std(50, "SA", "S", 0, "united-atom SH"),
    _std(51, "SM", "S", -1, "thiolate sulfur"),
    _std(52, "S0", "S", 0, "any sulfur"),
    _std(53, "P3", "P", 0, "trivalent phosphorus"),
    _std(54, "B2", "B", 0, "sp2 boron"),
    _std(55, "B3", "B", -1, "sp3 boron"),
    _std(56, "F0", "F", 0, "fluorine"),
    _std(57, "Cl", "Cl", 0, "chlorine"),
    _std(58, "Br", "Br", 0, "bromine"),
    _std(59, "I0", "I", 0, "iodine"),
    _std(60, "Si", "Si", 0, "silicon"),
    _std(61, "Du", "X", 0, "dummy atom"),
    _std(62, "Z0", "X", 0, "any metal (zero-order bonds)"),
    _std(63, "Lp", "X", 0, "lone pair"),
    _std(64, "00", "X", 0, "any atom"),
    _std(108, "P0", "P", 0, "any phosphorus"),
)
STANDARD_TYPES: Mapping[int, AtomType] = {t.number: t for t in _STANDARD_LIST}


class AtomTypeTable:
    """Type number -> AtomType, custom `atom.typ` entries taking precedence over standard ones."""

    def __init__(self, custom: Mapping[int, AtomType] | None = None, source: str | None = None):
        self.custom: dict[int, AtomType] = dict(custom or {})
        self.source = source

    def __contains__(self, number: int) -> bool:
        return number in self.custom or number in STANDARD_TYPES

    def get(self, number: int, *, where: str | None = None, line: int | None = None) -> AtomType:
        """The type for a number; UnknownAtomTypeError naming ``where``/``line`` if unknown."""
        if number in self.custom:
            return self.custom[number]
        if number in STANDARD_TYPES:
            return STANDARD_TYPES[number]
        loc = f"{where}:{line}: " if where and line else (f"{where}: " if where else "")
        known = f" (custom types from {self.source})" if self.source else ""
        raise UnknownAtomTypeError(f"{loc}MacroModel atom type {number} is neither standard nor in atom.typ{known}")

    def by_name(self, name: str) -> AtomType:
        """First type with this name (custom types first), else the first with it in another
        case: MacroModel compares type names without regard to case (``q2mm.mm3.substructure``)."""
        for same in (lambda t: t.name == name, lambda t: t.name.upper() == name.upper()):
            for table in (self.custom, STANDARD_TYPES):
                found = next((t for t in table.values() if same(t)), None)
                if found is not None:
                    return found
        raise UnknownAtomTypeError(f"atom type name {name!r} is neither standard nor in atom.typ")


def standard_table() -> AtomTypeTable:
    """The standard MacroModel types only."""
    return AtomTypeTable()


def read_atomtyp(path: str | os.PathLike[str]) -> AtomTypeTable:
    """Read a MacroModel `atom.typ`; '#' lines are comments (a '#&' line describes the next type)."""
    path = Path(path)
    text = read_text(path, "atom.typ file")
    custom: dict[int, AtomType] = {}
    description = ""
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#&") or stripped.startswith("#$"):
            description = stripped[2:].strip()
            continue
        if not stripped or stripped.startswith("#"):
            continue
        entry = _parse_type_line(path, line_no, line.split("#", 1)[0], description)
        custom[entry.number] = entry
        description = ""
    return AtomTypeTable(custom, source=str(path))


def _parse_type_line(path: Path, line_no: int, line: str, description: str) -> AtomType:
    tokens = line.split()
    if len(tokens) < MIN_TOKENS:
        raise InputFormatError(
            path,
            line_no,
            f"an atom type line with {MIN_TOKENS}+ columns (number ... formal charge; '!' where unspecified)",
            line.strip(),
        )
    number = _int(path, line_no, tokens[0], "the type number in column 1")
    name = tokens[3]
    generic = tokens[1] == UNSPECIFIED and tokens[2] == UNSPECIFIED  # PI dummy, generalized GA, GB, ...
    element = "X" if generic else _element(path, line_no, tokens[1], name)
    mass = None if tokens[2] == UNSPECIFIED else _float(path, line_no, tokens[2], "the mass in column 3 (or '!')")
    charge_token = tokens[FORMAL_CHARGE_COLUMN]
    charge = (
        0
        if charge_token == UNSPECIFIED
        else _int(path, line_no, charge_token, f"the formal charge in column {FORMAL_CHARGE_COLUMN + 1} (or '!')")
    )
    return AtomType(number, name, element, mass, charge, description, source=str(path), line=line_no)


def _element(path: Path, line_no: int, token: str, name: str) -> str:
    """Element from the atomic-number column; '!' means 'take it from the type name'."""
    if token == UNSPECIFIED:
        try:
            return elements.normalize_symbol(name)
        except KeyError:
            return "X"  # a generic type such as Z0 (any metal): the element is the structure's
    z = _int(path, line_no, token, "the atomic number in column 2 (or '!')")
    if z <= 0:
        return "X"  # dummy atoms, lone pairs
    if z >= len(elements.SYMBOLS):
        raise InputFormatError(path, line_no, f"an atomic number below {len(elements.SYMBOLS)}", token)
    return elements.SYMBOLS[z]


def _int(path: Path, line_no: int, token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise InputFormatError(path, line_no, what, token) from None


def _float(path: Path, line_no: int, token: str, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise InputFormatError(path, line_no, what, token) from None
