"""MacroModel's own interaction lists (.mmo) as test references, and their reader.

A `.mmo` lists every interaction MacroModel evaluated with the parameters it used, the
geometry value and the energy in kJ/mol. The reader below keeps only what the term tests
need; it is independent of the project's parameter assignment, so each energy term is
checked against MacroModel on MacroModel's own interaction lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

STRUCTURES = (1, 2, 4, 6, 7, 8)

TOTAL_LABELS = {
    "Stretch": "stretch",
    "Bend": "bend",
    "Proper torsion": "torsion",
    "Out-of-plane": "out_of_plane",
    "Stretch-bend": "stretch_bend",
    "Bend-bend": "bend_bend",
    "Torsion-stretch": "torsion_stretch",
    "Van der Waals": "vdw",
    "Electrostatic": "electrostatic",
    "Hydrogen bonding": "hydrogen_bond",
}


@dataclass
class MmoReference:
    """One MacroModel single point: rows per section (atoms 0-based), totals in kJ/mol."""

    title: str = ""
    types: list[str] = field(default_factory=list)
    charges: list[float] = field(default_factory=list)
    coords: list[list[float]] = field(default_factory=list)
    stretch: list[tuple] = field(default_factory=list)  # (i, j), k, r0, r, e, fld_line
    bend: list[tuple] = field(default_factory=list)  # (i, j, k), kb, ksb, th0, th, eb, esb, fld_line
    bend_bend: list[tuple] = field(default_factory=list)  # (c, a1, b1, a2, b2), kbb, i1, a1, i2, a2, e
    torsion: list[tuple] = field(default_factory=list)  # (i, j, k, l), v1, v2, v3, w, e, fld_line
    improper: list[tuple] = field(default_factory=list)  # (i, j, k, l), v1, v2, v3, w, e, fld_line
    torsion_stretch: list[tuple] = field(default_factory=list)  # (i, j, k, l), kts, ktb, ktt, w, e
    nonbonded: list[tuple] = field(default_factory=list)  # (i, j), rv, eps, qq, r, evdw, eq
    totals: dict[str, float] = field(default_factory=dict)

    @property
    def xyz(self) -> np.ndarray:
        return np.array(self.coords, dtype=np.float64)


def _ints(tokens: list[str]) -> tuple[int, ...]:
    return tuple(int(t) - 1 for t in tokens)


def _section(line: str) -> str | None:
    markers = (
        ("BOND LENGTHS AND STRETCH", "stretch"),
        ("ANGLES, BEND AND STRETCH BEND", "bend"),
        ("BEND-BEND ANGLES", "bend_bend"),
        ("DIHEDRAL ANGLES AND TORSIONAL ENERGIES", "torsion"),
        ("Improper torsion interactions present", "improper"),
        ("TORSIONAL CROSS-TERMS", "torsion_stretch"),
        ("NONBONDED DISTANCES", "nonbonded"),
        ("Atomic Charges, Coordinates", "atoms"),
        ("Input Structure Name", "title"),
    )
    for marker, name in markers:
        if marker in line:
            return name
    return None


_NUMBER = re.compile(r"^-?\d")


def _parse_row(section: str, tokens: list[str], ref: MmoReference) -> None:
    f = float
    if section == "stretch" and len(tokens) >= 6:
        ref.stretch.append((_ints(tokens[:2]), f(tokens[2]), f(tokens[3]), f(tokens[4]), f(tokens[5]), int(tokens[-1])))
    elif section == "bend" and len(tokens) >= 9:
        ref.bend.append(
            (
                _ints(tokens[:3]),
                f(tokens[3]),
                f(tokens[4]),
                f(tokens[5]),
                f(tokens[6]),
                f(tokens[7]),
                f(tokens[8]),
                int(tokens[-1]),
            )
        )
    elif section == "bend_bend" and len(tokens) == 11:
        ref.bend_bend.append((_ints(tokens[:5]), *map(f, tokens[5:11])))
    elif section in ("torsion", "improper") and len(tokens) >= 9:
        getattr(ref, section).append((_ints(tokens[:4]), *map(f, tokens[4:9]), int(tokens[-1])))
    elif section == "torsion_stretch" and len(tokens) == 9:
        ref.torsion_stretch.append((_ints(tokens[:4]), *map(f, tokens[4:9])))
    elif section == "nonbonded" and len(tokens) == 8:
        ref.nonbonded.append((_ints(tokens[:2]), *map(f, tokens[2:8])))


def _parse_atom(line: str, ref: MmoReference) -> None:
    m = re.match(r"^\s*(\S+)\s*\(\s*(\d+)\)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", line)
    if m:
        ref.types.append(m.group(1))
        ref.charges.append(float(m.group(3)))
        ref.coords.append([float(m.group(5)), float(m.group(6)), float(m.group(7))])


def read_mmo_reference(path: Path) -> MmoReference:
    """Parse a MacroModel .mmo energy listing into an MmoReference."""
    ref = MmoReference()
    section = None
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        new = _section(line)
        if new == "title":
            ref.title = lines[n + 1].strip(" *")
            section = None
            continue
        if new is not None:
            section = new
            continue
        for label, key in TOTAL_LABELS.items():
            m = re.match(rf"^\s+{re.escape(label)}:\s+(-?\d+\.\d+) kJ/mol", line)
            if m:
                ref.totals[key] = float(m.group(1))
        m = re.match(r"^Total energy:\s+(-?\d+\.\d+) kJ/mol", line)
        if m:
            ref.totals["total"] = float(m.group(1))
        if section == "atoms":
            if line.strip().startswith("Total QQ"):
                section = None
            else:
                _parse_atom(line, ref)
            continue
        tokens = line.split()
        if section and tokens and _NUMBER.match(tokens[0]):
            try:
                _parse_row(section, tokens, ref)
            except ValueError:
                pass
    return ref


@pytest.fixture(scope="session")
def mmo_references(rh_dir: Path) -> dict[int, MmoReference]:
    return {k: read_mmo_reference(rh_dir / "macromodel" / f"structure_{k}.mmo") for k in STRUCTURES}


def test_reader_sees_every_section(mmo_references):
    ref = mmo_references[1]
    assert len(ref.stretch) == 38 and len(ref.bend) == 78 and len(ref.bend_bend) == 27
    assert len(ref.torsion) == 56 and len(ref.improper) == 6 and len(ref.nonbonded) == 513
    assert len(ref.types) == 36 and ref.types[0] == "RH"
    assert ref.totals["total"] == pytest.approx(403.9263)
    assert len(mmo_references[4].torsion_stretch) > 0
