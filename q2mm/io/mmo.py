"""MacroModel `.mmo` energy-breakdown reader (MM3* single-point listing).

Every interaction table MacroModel prints (stretch; bend with stretch-bend; bend-bend;
proper torsion; improper torsion (out-of-plane); torsional cross-terms; nonbonded vdW and
electrostatics), the energy equations in use, the per-term totals, and the connection table
(MacroModel type names, charges, coordinates, attached atoms with bond symbols). Atom
numbers are kept 1-based as printed (``atoms``) with 0-based copies (``atoms0``). Energies
are kJ/mol as printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.errors import InputFormatError
from q2mm.io.text import read_text

__all__ = [
    "read_mmo",
    "read_mmo_all",
    "parse_mmo",
    "MmoBreakdown",
    "MmoAtom",
    "StretchRow",
    "BendRow",
    "BendBendRow",
    "TorsionRow",
    "CrossTermRow",
    "NonbondedRow",
    "TOTAL_KEYS",
]

# Printed total label -> key of MmoBreakdown.totals.
TOTAL_KEYS = {
    "Total energy": "total",
    "Force-field terms": "force_field",
    "Stretch": "stretch",
    "Bend": "bend",
    "Proper torsion": "proper_torsion",
    "Out-of-plane": "out_of_plane",
    "Stretch-bend": "stretch_bend",
    "Bend-bend": "bend_bend",
    "Torsion-stretch": "torsion_stretch",
    "Van der Waals": "van_der_waals",
    "Electrostatic": "electrostatic",
    "Hydrogen bonding": "hydrogen_bonding",
}

_HEADERS = {
    "BOND LENGTHS AND STRETCH ENERGIES": "stretch",
    "ANGLES, BEND AND STRETCH BEND ENERGIES": "bend",
    "BEND-BEND ANGLES AND ENERGIES": "bend_bend",
    "DIHEDRAL ANGLES AND TORSIONAL ENERGIES": "torsion",
    "DIHEDRAL ANGLES AND TORSIONAL CROSS-TERMS": "cross_terms",
    "NONBONDED DISTANCES AND ENERGIES": "nonbonded",
    "HYDROGEN BOND": "hbond",
    "Connection Table": "connection",
    "Energy Equations in Use": "equations",
}
_STRUCTURE_START = "BOND LENGTHS AND STRETCH ENERGIES"
_IMPROPER_HEADER = re.compile(r"^\s+(\d+) Improper torsion interactions present")
_COUNT = re.compile(r"(\d+) [\w\- ]*interactions present")
_TOTAL = re.compile(r"^\s*([A-Za-z][A-Za-z \-]*?):\s+(-?\d+\.\d+) kJ/mol \(\s*(-?\d+\.\d+) kcal/mol \)")
_NUM = r"(-?\d*\.\d+(?:[EeDd][-+]?\d+)?)"
_INT = r"(\d+)"
_TAIL = r"\s+(\S+)\s+(-?\d+)\s(.*?)\s*(\d+)\s*$"  # select, alts, comment, FF line
_ATOM = re.compile(r"^\s*(\S{1,3})\s*\(\s*(\d+)\)\s+" + r"\s+".join([_NUM] * 5) + r"\s+(\S+)\s+(-?\d+)(.*)$")
_ATTACHED = re.compile(r"(\d+)([-=%*#~]?)")
_EQUATION = re.compile(r"^(\S.*?)\s+-\s+(\d+):\s*(.*?)\s*$")
_CUTOFF = re.compile(r"Maximum (.+?) distance\s*=\s*" + _NUM)


class _AtomsMixin:
    atoms: tuple[int, ...]

    @property
    def atoms0(self) -> tuple[int, ...]:
        """0-based atom indices."""
        return tuple(a - 1 for a in self.atoms)


@dataclass(frozen=True)
class StretchRow(_AtomsMixin):
    atoms: tuple[int, int]
    k: float
    r0: float
    r: float
    energy: float
    select: str
    alts: int
    comment: str
    ff_line: int
    line: int


@dataclass(frozen=True)
class BendRow(_AtomsMixin):
    """Angle a-b-c (b central) with its bend and stretch-bend energies."""

    atoms: tuple[int, int, int]
    k: float
    k_sb: float
    theta0: float
    theta: float
    energy: float
    energy_sb: float
    select: str
    alts: int
    comment: str
    ff_line: int
    line: int


@dataclass(frozen=True)
class BendBendRow(_AtomsMixin):
    """Two angles at one centre: ``atoms`` = (centre, a1, c1, a2, c2) as printed."""

    atoms: tuple[int, int, int, int, int]
    k: float
    theta0_1: float
    theta_1: float
    theta0_2: float
    theta_2: float
    energy: float
    line: int

    @property
    def angle1(self) -> tuple[int, int, int]:
        """First angle a1-centre-c1, 1-based."""
        return (self.atoms[1], self.atoms[0], self.atoms[2])

    @property
    def angle2(self) -> tuple[int, int, int]:
        return (self.atoms[3], self.atoms[0], self.atoms[4])


@dataclass(frozen=True)
class TorsionRow(_AtomsMixin):
    """A proper or improper torsion row (improper: k in the V2 column)."""

    atoms: tuple[int, int, int, int]
    v1: float
    v2: float
    v3: float
    angle: float
    energy: float
    select: str
    alts: int
    comment: str
    ff_line: int
    line: int


@dataclass(frozen=True)
class CrossTermRow(_AtomsMixin):
    """Torsional cross-term row: K(t-s), K(t-b), K(t-t) (no FF line is printed)."""

    atoms: tuple[int, int, int, int]
    k_ts: float
    k_tb: float
    k_tt: float
    angle: float
    energy: float
    line: int


@dataclass(frozen=True)
class NonbondedRow(_AtomsMixin):
    """vdW + charge-charge pair: rv (A), eps (kcal/mol), q_i*q_j, distance (H moved), energies."""

    atoms: tuple[int, int]
    rv: float
    eps: float
    qq: float
    distance: float
    energy_vdw: float
    energy_elec: float
    line: int


@dataclass(frozen=True)
class MmoAtom:
    """A connection-table atom: MacroModel type name, charges, coordinates, attachments."""

    number: int
    type_name: str
    charge: float
    charge_sol: float
    xyz: tuple[float, float, float]
    residue: str
    residue_number: int
    attached: tuple[tuple[int, str], ...]
    line: int

    @property
    def index(self) -> int:
        return self.number - 1


@dataclass(frozen=True)
class MmoBreakdown:
    """One structure's MacroModel energy breakdown (energies in kJ/mol)."""

    path: str
    title: str
    stretches: tuple[StretchRow, ...]
    bends: tuple[BendRow, ...]
    bend_bends: tuple[BendBendRow, ...]
    torsions: tuple[TorsionRow, ...]
    impropers: tuple[TorsionRow, ...]
    cross_terms: tuple[CrossTermRow, ...]
    nonbonded: tuple[NonbondedRow, ...]
    atoms: tuple[MmoAtom, ...]
    totals: dict[str, float]
    totals_kcal: dict[str, float]
    counts: dict[str, int]
    equations: dict[str, tuple[int, str]] = field(default_factory=dict)
    cutoffs: dict[str, float] = field(default_factory=dict)
    total_charge: float | None = None

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)

    @property
    def charges(self) -> np.ndarray:
        """Atomic (QQ) charges as printed, in atom order."""
        return np.array([a.charge for a in self.atoms], dtype=np.float64)

    @property
    def coords(self) -> np.ndarray:
        return np.array([a.xyz for a in self.atoms], dtype=np.float64).reshape(-1, 3)

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(a.type_name for a in self.atoms)

    def listed_sums(self) -> dict[str, float]:
        """Sum of the listed interaction energies per total key (kJ/mol)."""
        return {
            "stretch": sum(r.energy for r in self.stretches),
            "bend": sum(r.energy for r in self.bends),
            "stretch_bend": sum(r.energy_sb for r in self.bends),
            "bend_bend": sum(r.energy for r in self.bend_bends),
            "proper_torsion": sum(r.energy for r in self.torsions),
            "out_of_plane": sum(r.energy for r in self.impropers),
            "torsion_stretch": sum(r.energy for r in self.cross_terms),
            "van_der_waals": sum(r.energy_vdw for r in self.nonbonded),
            "electrostatic": sum(r.energy_elec for r in self.nonbonded),
        }

    def listed_counts(self) -> dict[str, int]:
        """Rows parsed per table (compare with ``counts``, the numbers MacroModel printed)."""
        return {
            "stretch": len(self.stretches),
            "bend": len(self.bends),
            "bend_bend": len(self.bend_bends),
            "torsion": len(self.torsions),
            "improper": len(self.impropers),
            "cross_terms": len(self.cross_terms),
            "nonbonded": len(self.nonbonded),
        }


def read_mmo(path: str | os.PathLike[str]) -> MmoBreakdown:
    """Read a `.mmo` holding one structure (see read_mmo_all for several)."""
    found = read_mmo_all(path)
    if len(found) != 1:
        raise InputFormatError(path, None, "exactly one structure's energy listing", f"{len(found)} listings")
    return found[0]


def read_mmo_all(path: str | os.PathLike[str]) -> list[MmoBreakdown]:
    """Every structure's breakdown in a `.mmo` file, in file order."""
    path = Path(path)
    return parse_mmo(read_text(path, ".mmo file"), path)


def parse_mmo(text: str, path: str | os.PathLike[str] = "<string>") -> list[MmoBreakdown]:
    """Parse `.mmo` text; a structure's listing starts at each stretch table."""
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if _STRUCTURE_START in ln]
    if not starts:
        raise InputFormatError(path, None, f"a '{_STRUCTURE_START}' table", "none")
    bounds = starts + [len(lines)]
    return [_Structure(str(path), lines, bounds[k], bounds[k + 1]).parse() for k in range(len(starts))]


class _Structure:
    """Parses lines[start:stop] (0-based) of an `.mmo` file into one MmoBreakdown."""

    def __init__(self, path: str, lines: list[str], start: int, stop: int):
        self.path, self.lines, self.start, self.stop = path, lines, start, stop
        self.tables: dict[str, list] = {
            k: [] for k in ("stretch", "bend", "bend_bend", "torsion", "improper", "cross_terms", "nonbonded")
        }
        self.atoms: list[MmoAtom] = []
        self.totals: dict[str, float] = {}
        self.totals_kcal: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.equations: dict[str, tuple[int, str]] = {}
        self.cutoffs: dict[str, float] = {}
        self.total_charge: float | None = None
        self.title = ""

    def parse(self) -> MmoBreakdown:
        section = None
        for i in range(self.start, self.stop):
            line = self.lines[i]
            section = self.section_of(line, section)
            self.read_line(line, i + 1, section)
        self.check_counts()
        return MmoBreakdown(
            path=self.path,
            title=self.title,
            stretches=tuple(self.tables["stretch"]),
            bends=tuple(self.tables["bend"]),
            bend_bends=tuple(self.tables["bend_bend"]),
            torsions=tuple(self.tables["torsion"]),
            impropers=tuple(self.tables["improper"]),
            cross_terms=tuple(self.tables["cross_terms"]),
            nonbonded=tuple(self.tables["nonbonded"]),
            atoms=tuple(self.atoms),
            totals=self.totals,
            totals_kcal=self.totals_kcal,
            counts=self.counts,
            equations=self.equations,
            cutoffs=self.cutoffs,
            total_charge=self.total_charge,
        )

    def section_of(self, line: str, section: str | None) -> str | None:
        for header, name in _HEADERS.items():
            if header in line:
                count = _COUNT.search(line)
                if count and name in self.tables:
                    self.counts[name] = int(count.group(1))
                return name
        improper = _IMPROPER_HEADER.match(line)
        if improper:
            self.counts["improper"] = int(improper.group(1))
            return "improper"
        if "Input Structure Name" in line:
            return "title"
        if line.startswith("Total energy:") or "Force-field terms:" in line:
            return "totals"
        return section

    def read_line(self, line: str, line_no: int, section: str | None) -> None:
        if section == "title":
            text = line.strip().strip("*").strip()
            if text and "Input Structure Name" not in line and not self.title:
                self.title = text
            return
        if section is not None and section in _ROW_PARSERS:
            row = _ROW_PARSERS[section](line, line_no)
            if row is not None:
                self.tables[section].append(row)
                return
        self.read_summary(line, line_no)

    def read_summary(self, line: str, line_no: int) -> None:
        total = _TOTAL.match(line)
        if total and total.group(1) in TOTAL_KEYS:
            key = TOTAL_KEYS[total.group(1)]
            self.totals[key] = float(total.group(2))
            self.totals_kcal[key] = float(total.group(3))
            return
        cutoff = _CUTOFF.search(line)
        if cutoff:
            self.cutoffs[cutoff.group(1).strip()] = float(cutoff.group(2))
            return
        equation = _EQUATION.match(line)
        if equation and not line.startswith(" "):
            self.equations[equation.group(1).strip()] = (int(equation.group(2)), equation.group(3))
            return
        atom = _ATOM.match(line)
        if atom:
            self.atoms.append(_atom(atom, line_no))
            return
        if "Total QQ  charge on system" in line or "Total QQ charge on system" in line:
            self.total_charge = float(line.split("=")[1])

    def check_counts(self) -> None:
        listed = {
            "stretch": "stretch",
            "bend": "bend",
            "bend_bend": "bend_bend",
            "torsion": "torsion",
            "improper": "improper",
            "cross_terms": "cross_terms",
        }
        for key, table in listed.items():
            printed = self.counts.get(key)
            rows = self.tables[table]
            if printed is not None and key != "cross_terms" and printed != len(rows):
                raise InputFormatError(
                    self.path, self.start + 1, f"{printed} {key} rows as the table header says", f"{len(rows)} rows"
                )
        for i, atom in enumerate(self.atoms, start=1):
            if atom.number != i:
                raise InputFormatError(self.path, atom.line, f"connection-table atom {i}", str(atom.number))


def _row_parser(row_type: Callable[..., Any], n_atoms: int, n_values: int, ff_tail: bool):
    """A parser of one table row: ``n_atoms`` atom numbers, ``n_values`` numbers and, where
    ``ff_tail``, the columns that follow (select, alternatives, comment, .fld line);
    None where the line is not such a row."""

    pattern = re.compile(r"^\s*" + r"\s+".join([_INT] * n_atoms + [_NUM] * n_values) + (_TAIL if ff_tail else r"\s*$"))

    def parse(line: str, line_no: int):
        m = pattern.match(line)
        if not m:
            return None
        g = m.groups()
        k = n_atoms + n_values
        atoms = tuple(int(x) for x in g[:n_atoms])
        values = [_f(x) for x in g[n_atoms:k]]
        tail = (g[k], int(g[k + 1]), g[k + 2].strip(), int(g[k + 3])) if ff_tail else ()
        return row_type(atoms, *values, *tail, line_no)

    return parse


_stretch = _row_parser(StretchRow, 2, 4, True)
_bend = _row_parser(BendRow, 3, 6, True)
_bend_bend = _row_parser(BendBendRow, 5, 6, False)
_torsion = _row_parser(TorsionRow, 4, 5, True)
_cross = _row_parser(CrossTermRow, 4, 5, False)
_nonbonded = _row_parser(NonbondedRow, 2, 6, False)


_ROW_PARSERS = {
    "stretch": _stretch,
    "bend": _bend,
    "bend_bend": _bend_bend,
    "torsion": _torsion,
    "improper": _torsion,
    "cross_terms": _cross,
    "nonbonded": _nonbonded,
}


def _atom(m: re.Match, line_no: int) -> MmoAtom:
    g = m.groups()
    attached = tuple((int(a), s) for a, s in _ATTACHED.findall(g[9]))
    return MmoAtom(
        int(g[1]), g[0], _f(g[2]), _f(g[3]), (_f(g[4]), _f(g[5]), _f(g[6])), g[7], int(g[8]), attached, line_no
    )


def _f(text: str) -> float:
    return float(text.replace("D", "E").replace("d", "e"))
