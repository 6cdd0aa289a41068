"""Plain XYZ files (one or more frames: atom count, title line, ``symbol x y z`` rows in Angstrom).

Also home of the small text helpers every QM reader here shares: strict UTF-8 decoding that
names the offending line, and number parsing that names the file and line on failure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from q2mm.errors import InputFormatError
from q2mm.io.text import read_text
from q2mm.model import elements
from q2mm.model.molecule import Molecule


def read_text_lines(path: str | Path) -> list[str]:
    """The file's lines (no line endings), decoded as strict UTF-8.

    A byte that is not UTF-8 raises InputFormatError naming its 1-based line.
    """
    lines = read_text(path).replace("\r\n", "\n").split("\n")  # only '\n' ends a line, as in the byte count above
    return lines[:-1] if lines and lines[-1] == "" else lines


def parse_float(token: str, path: str | Path, line: int | None, what: str) -> float:
    """float(token), accepting Fortran 'D' exponents; InputFormatError(path, line) otherwise."""
    try:
        value = float(token.replace("D", "E").replace("d", "e"))
    except ValueError:
        raise InputFormatError(path, line, what, token) from None
    if not np.isfinite(value):
        raise InputFormatError(path, line, what, token)
    return value


def parse_int(token: str, path: str | Path, line: int | None, what: str) -> int:
    """int(token); InputFormatError(path, line) otherwise."""
    try:
        return int(token)
    except ValueError:
        raise InputFormatError(path, line, what, token) from None


def element_from_label(label: str, path: str | Path, line: int) -> str:
    """'Rh1', 'C', 'CL' or an atomic number '6' -> the element symbol; InputFormatError otherwise."""
    try:
        if label.isdigit():
            return elements.symbol_from_number(int(label))
        return elements.normalize_symbol(label)
    except (KeyError, IndexError):
        raise InputFormatError(path, line, "an element symbol or label such as 'C3'", label) from None


def read_xyz_frames(path: str | Path) -> list[Molecule]:
    """Every frame of an XYZ file as a Molecule (title = the frame's comment line)."""
    path = Path(path)
    lines = read_text_lines(path)
    frames: list[Molecule] = []
    index = 0
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        molecule, index = _read_frame(lines, index, path)
        frames.append(molecule)
    if not frames:
        raise InputFormatError(path, 1, "an atom count", "an empty file")
    return frames


def read_xyz(path: str | Path) -> Molecule:
    """The first frame of an XYZ file."""
    return read_xyz_frames(path)[0]


def _read_frame(lines: list[str], start: int, path: Path) -> tuple[Molecule, int]:
    count_fields = lines[start].split()
    n_atoms = parse_int(count_fields[0], path, start + 1, "an atom count") if len(count_fields) == 1 else -1
    if n_atoms <= 0:
        raise InputFormatError(path, start + 1, "a positive atom count alone on its line", lines[start])
    if start + 1 >= len(lines):
        raise InputFormatError(path, start + 2, "a title line", "end of file")
    title = lines[start + 1].strip()
    symbols: list[str] = []
    coords = np.empty((n_atoms, 3))
    for k in range(n_atoms):
        line_no = start + 3 + k
        if line_no > len(lines):
            raise InputFormatError(path, line_no, f"{n_atoms} atom rows 'symbol x y z'", "end of file")
        fields = lines[line_no - 1].split()
        if len(fields) < 4:
            raise InputFormatError(path, line_no, "an atom row 'symbol x y z'", lines[line_no - 1])
        symbols.append(element_from_label(fields[0], path, line_no))
        coords[k] = [parse_float(f, path, line_no, "a coordinate in Angstrom") for f in fields[1:4]]
    molecule = Molecule(title=title, elements=tuple(symbols), coords=coords, source=str(path))
    return molecule, start + 2 + n_atoms
