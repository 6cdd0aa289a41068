"""Jaguar files: restart inputs (``.01.in``: geometry and Hessian) and outputs (``.out``).

Units leave this module converted: coordinates in Angstrom, Hessians in Hartree/Bohr^2
(Jaguar writes ``&hess`` in those units already), energies in Hartree, atomic charges in e
(``properties['qm_charge_sets']``: method -> (source, charges)), frequencies in cm^-1
(imaginary ones negative, as Jaguar prints them), reduced masses in amu, force constants in
mDyne/A as printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from q2mm.errors import InputFormatError
from q2mm.io.xyz import element_from_label, parse_float, parse_int, read_text_lines
from q2mm.model.molecule import Molecule
from q2mm.model.units import BOHR_IN_ANGSTROM

HESS_BLOCK_WIDTH = 5


@dataclass(frozen=True)
class Section:
    """One ``&name ... &`` section of a Jaguar input: its body lines and where they start."""

    name: str
    header: str
    first_line: int  # 1-based line number of the '&name' line
    body: tuple[str, ...]

    def numbered(self) -> list[tuple[int, str]]:
        """(1-based line number, text) for every body line."""
        return [(self.first_line + 1 + k, text) for k, text in enumerate(self.body)]


def read_sections(path: str | Path, lines: list[str] | None = None) -> dict[str, Section]:
    """All ``&name`` sections of a Jaguar input (the last one wins when a name repeats)."""
    path = Path(path)
    lines = read_text_lines(path) if lines is None else lines
    sections: dict[str, Section] = {}
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if stripped.startswith("&") and len(stripped) > 1:
            section, index = _read_section(lines, index, path)
            sections[section.name] = section
        index += 1
    return sections


def _read_section(lines: list[str], start: int, path: Path) -> tuple[Section, int]:
    stripped = lines[start].strip()
    name = stripped[1:].split()[0].rstrip("&").lower()
    if stripped.endswith("&"):  # '&gen isymm=0 &' on one line
        return Section(name, stripped[1:-1].strip(), start + 1, ()), start
    for end in range(start + 1, len(lines)):
        if lines[end].strip() == "&":
            return Section(name, stripped[1:].strip(), start + 1, tuple(lines[start + 1 : end])), end
    raise InputFormatError(
        path,
        len(lines),
        f"a line '&' closing the &{name} section opened on line {start + 1}",
        "end of file",
    )


def section_keywords(section: Section) -> dict[str, str]:
    """``key=value`` pairs of a keyword section such as &gen (keys lower-case)."""
    words = " ".join([section.header, *section.body]).split()
    pairs = (word.split("=", 1) for word in words if "=" in word)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def read_jaguar_in(path: str | Path) -> Molecule:
    """A Jaguar input: the &zmat Cartesian geometry, the &hess Hessian (if any), the charge.

    The Hessian is mirrored to the full 3N x 3N matrix (Hartree/Bohr^2, not mass-weighted).
    """
    path = Path(path)
    sections = read_sections(path)
    if "zmat" not in sections:
        raise InputFormatError(path, None, "a &zmat section with the geometry")
    gen = section_keywords(sections["gen"]) if "gen" in sections else {}
    labels, symbols, coords = _read_zmat(sections["zmat"], path)
    if gen.get("iunit", "1") == "0":
        coords = coords * BOHR_IN_ANGSTROM
    hessian = _read_hess(sections["hess"], 3 * len(symbols), path) if "hess" in sections else None
    charge = parse_int(gen.get("molchg", "0"), path, _keyword_line(sections, "molchg"), "an integer molchg")
    multiplicity = parse_int(gen.get("multip", "1"), path, _keyword_line(sections, "multip"), "an integer multip")
    return Molecule(
        title=path.name.split(".")[0],
        elements=symbols,
        coords=coords,
        charge=charge,
        hessian=hessian,
        source=str(path),
        properties={"labels": labels, "multiplicity": multiplicity},
    )


def _keyword_line(sections: dict[str, Section], key: str) -> int | None:
    """The line of &gen that sets ``key`` (for error messages)."""
    if "gen" not in sections:
        return None
    gen = sections["gen"]
    return next((no for no, text in gen.numbered() if key in text.lower()), gen.first_line)


def _read_zmat(section: Section, path: Path) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    labels: list[str] = []
    symbols: list[str] = []
    rows: list[list[float]] = []
    for line_no, text in section.numbered():
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise InputFormatError(path, line_no, "a Cartesian &zmat row 'label x y z'", text.strip())
        labels.append(fields[0])
        symbols.append(element_from_label(fields[0], path, line_no))
        rows.append([parse_float(f, path, line_no, "a coordinate") for f in fields[1:]])
    if not rows:
        raise InputFormatError(path, section.first_line + 1, "at least one &zmat atom row", "an empty &zmat")
    return tuple(labels), tuple(symbols), np.array(rows)


def _read_hess(section: Section, n: int, path: Path) -> np.ndarray:
    """Lower-triangular blocks of five columns -> the symmetric n x n matrix."""
    lower = np.zeros((n, n))
    rows = [(line_no, text.split()) for line_no, text in section.numbered() if text.strip()]
    cursor = 0
    for first in range(1, n + 1, HESS_BLOCK_WIDTH):
        cursor = _read_hess_block(rows, cursor, first, n, lower, path)
    if cursor != len(rows):
        line_no, fields = rows[cursor]
        raise InputFormatError(path, line_no, f"the end of &hess after row {n} of the last block", " ".join(fields))
    return lower + np.tril(lower, -1).T


def _read_hess_block(rows: list, cursor: int, first: int, n: int, lower: np.ndarray, path: Path) -> int:
    end_of_section = (rows[-1][0] + 1) if rows else None
    if cursor >= len(rows):
        raise InputFormatError(
            path,
            end_of_section,
            f"a &hess block header '{first}' ({n} rows expected for {n // 3} atoms)",
            "end of &hess",
        )
    line_no, fields = rows[cursor]
    if fields != [str(first)]:
        size = f"{n} rows for the {n // 3} atoms of &zmat"
        raise InputFormatError(
            path,
            line_no,
            f"the &hess block header '{first}' alone on its line ({size})",
            " ".join(fields),
        )
    width = min(HESS_BLOCK_WIDTH, n - first + 1)
    for row in range(first, n + 1):
        cursor += 1
        if cursor >= len(rows):
            raise InputFormatError(
                path,
                end_of_section,
                f"&hess row {row} of the block starting at column {first}",
                "end of &hess",
            )
        line_no, fields = rows[cursor]
        expected = min(width, row - first + 1)
        if len(fields) != expected + 1 or fields[0] != str(row):
            raise InputFormatError(
                path,
                line_no,
                f"&hess row '{row}' with {expected} values (block starting at column {first})",
                " ".join(fields),
            )
        values = [parse_float(f, path, line_no, "a number in &hess") for f in fields[1:]]
        lower[row - 1, first - 1 : first - 1 + expected] = values
    return cursor + 1


@dataclass(frozen=True)
class JaguarOutput:
    """What a Jaguar ``.out`` reports: the geometry (with the SCF energy) and the vibrations.

    ``normal_modes`` has shape (n_modes, N, 3): Jaguar's printed Cartesian displacement vectors.
    Vibrational arrays are empty when the job computed no frequencies.
    """

    molecule: Molecule
    frequencies: np.ndarray
    reduced_masses: np.ndarray
    force_constants: np.ndarray
    normal_modes: np.ndarray


GEOMETRY_HEADERS = ("input geometry:", "new geometry:", "final geometry:")


def read_jaguar_out(path: str | Path) -> JaguarOutput:
    """A Jaguar output: the last geometry printed, the last SCFE energy, the frequency tables."""
    path = Path(path)
    lines = read_text_lines(path)
    labels, symbols, coords = _last_geometry(lines, path)
    energy = _last_scf_energy(lines, path)
    freqs, masses, fcs, modes = _read_frequencies(lines, len(symbols), path)
    properties: dict = {"labels": labels}
    charge_sets = _charge_sets(lines, len(symbols), path)
    if charge_sets:
        properties["qm_charge_sets"] = charge_sets
    molecule = Molecule(
        title=path.name.split(".")[0],
        elements=symbols,
        coords=coords,
        energy=energy,
        source=str(path),
        properties=properties,
    )
    return JaguarOutput(molecule, freqs, masses, fcs, modes)


def _last_geometry(lines: list[str], path: Path) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    starts = [k for k, text in enumerate(lines) if text.strip().lower() in GEOMETRY_HEADERS]
    if not starts:
        raise InputFormatError(path, None, "a geometry block ('Input geometry:')")
    start = starts[-1]
    unit_line = lines[start + 1].strip().lower() if start + 1 < len(lines) else ""
    if unit_line not in ("angstroms", "bohrs"):
        raise InputFormatError(path, start + 2, "the unit line 'angstroms' or 'bohrs'", unit_line)
    labels, symbols, rows = [], [], []
    for k in range(start + 3, len(lines)):
        fields = lines[k].split()
        if not fields:
            break
        if len(fields) != 4:
            raise InputFormatError(path, k + 1, "a geometry row 'label x y z'", lines[k].strip())
        labels.append(fields[0])
        symbols.append(element_from_label(fields[0], path, k + 1))
        rows.append([parse_float(f, path, k + 1, "a coordinate") for f in fields[1:]])
    if not rows:
        raise InputFormatError(path, start + 4, "geometry rows 'label x y z'", "none")
    coords = np.array(rows) * (BOHR_IN_ANGSTROM if unit_line == "bohrs" else 1.0)
    return tuple(labels), tuple(symbols), coords


def read_jaguar_scf_energy(path: str | Path) -> float | None:
    """The last ``SCFE: SCF energy`` of a Jaguar output in Hartree (None if it prints none)."""
    path = Path(path)
    return _last_scf_energy(read_text_lines(path), path)


def _last_scf_energy(lines: list[str], path: Path) -> float | None:
    for k in range(len(lines) - 1, -1, -1):
        text = lines[k]
        if text.lstrip().startswith("SCFE:"):
            fields = text.split()
            if "hartrees" not in fields:
                raise InputFormatError(path, k + 1, "'SCFE: SCF energy: ... <E> hartrees'", text.strip())
            return parse_float(fields[fields.index("hartrees") - 1], path, k + 1, "the SCF energy in hartrees")
    return None


# Atomic-charge tables of a Jaguar output by method (the keys of a system's ``charges``):
# ESP-fitted (icfit=1) and Mulliken (mulken=1). After the header, blocks of an 'Atom  C1 H2 ...'
# line and a 'Charge  q1 q2 ...' line, separated by blank lines, closed by 'sum of atomic charges'.
JAGUAR_CHARGE_TABLES = {
    "esp": ("Jaguar ESP charges (.out)", "Atomic charges from electrostatic potential:"),
    "mulliken": ("Jaguar Mulliken charges (.out)", "Atomic charges from Mulliken population analysis:"),
}


def read_jaguar_charges(path: str | Path, n_atoms: int) -> dict[str, tuple[str, np.ndarray]]:
    """Per method found ('esp', 'mulliken'): (source, charges in e) of the last table of a ``.out``."""
    path = Path(path)
    return _charge_sets(read_text_lines(path), n_atoms, path)


def _charge_sets(lines: list[str], n_atoms: int, path: Path) -> dict[str, tuple[str, np.ndarray]]:
    out = {}
    for method, (source, header) in JAGUAR_CHARGE_TABLES.items():
        starts = [k for k, text in enumerate(lines) if text.strip() == header]
        if starts:
            out[method] = (source, _charge_table(lines, starts[-1], n_atoms, path))
    return out


def _charge_table(lines: list[str], header: int, n_atoms: int, path: Path) -> np.ndarray:
    values: list[float] = []
    k = header + 1
    while k < len(lines):
        fields = lines[k].split()
        if not fields:
            k += 1
            continue
        if fields[0] != "Atom":
            break
        found = lines[k + 1].split() if k + 1 < len(lines) else []
        if not found or found[0] != "Charge" or len(found) != len(fields):
            text = lines[k + 1].strip() if k + 1 < len(lines) else "end of file"
            raise InputFormatError(path, k + 2, f"'Charge' and {len(fields) - 1} charges under line {k + 1}", text)
        values += [parse_float(f, path, k + 2, "an atomic charge") for f in found[1:]]
        k += 2
    if len(values) != n_atoms:
        raise InputFormatError(
            path, header + 1, f"{n_atoms} atomic charges in the table '{lines[header].strip()}'", str(len(values))
        )
    return np.array(values)


def _read_frequencies(lines: list[str], n_atoms: int, path: Path):
    freqs: list[float] = []
    masses: list[float] = []
    fcs: list[float] = []
    modes: list[np.ndarray] = []
    declared = None
    for k, text in enumerate(lines):
        stripped = text.strip()
        if stripped.startswith("Number of frequencies:"):
            declared = parse_int(stripped.split()[-1], path, k + 1, "the number of frequencies")
            freqs, masses, fcs, modes = [], [], [], []
        elif stripped.startswith("frequencies ") and declared is not None:
            block = _read_mode_block(lines, k, n_atoms, path)
            freqs += block[0]
            masses += block[1]
            fcs += block[2]
            modes += block[3]
    if declared is not None and len(freqs) != declared:
        raise InputFormatError(
            path,
            len(lines),
            f"{declared} frequencies as declared",
            f"{len(freqs)} (truncated output?)",
        )
    shape = (len(modes), n_atoms, 3)
    return np.array(freqs), np.array(masses), np.array(fcs), np.array(modes).reshape(shape)


def _read_mode_block(lines: list[str], start: int, n_atoms: int, path: Path):
    """One table of up to six modes: frequencies, property rows, then 3N 'label X v...' rows."""
    freqs = [parse_float(f, path, start + 1, "a frequency in cm^-1") for f in lines[start].split()[1:]]
    width = len(freqs)
    props: dict[str, list[float]] = {}
    k = start + 1
    while k < len(lines) and not _is_mode_row(lines[k]):
        name, values = _property_row(lines[k], width, path, k + 1)
        if name:
            props[name] = values
        k += 1
    vectors = np.empty((3 * n_atoms, width))
    for row in range(3 * n_atoms):
        line_no = k + row + 1
        fields = lines[k + row].split() if k + row < len(lines) else []
        if len(fields) != width + 2 or fields[1] not in "XYZ":
            found = lines[k + row].strip() if k + row < len(lines) else "end of file"
            raise InputFormatError(
                path,
                line_no,
                f"normal-mode row {row + 1} of {3 * n_atoms}: 'label X|Y|Z' and {width} values",
                found,
            )
        vectors[row] = [parse_float(f, path, line_no, "a normal-mode component") for f in fields[2:]]
    modes = [vectors[:, j].reshape(n_atoms, 3) for j in range(width)]
    return freqs, props.get("reduc. mass", [np.nan] * width), props.get("force const", [np.nan] * width), modes


def _is_mode_row(text: str) -> bool:
    fields = text.split()
    return len(fields) > 2 and fields[1] in ("X", "Y", "Z")


MODE_PROPERTIES = ("intensities", "reduc. mass", "force const")


def _property_row(text: str, width: int, path: Path, line_no: int) -> tuple[str | None, list[float]]:
    """('reduc. mass', values) for a known per-mode row; (None, []) for any other line."""
    fields = text.split()
    name = " ".join(fields[: len(fields) - width])
    if name not in MODE_PROPERTIES:
        return None, []
    values = [parse_float(f, path, line_no, f"a value of '{name}'") for f in fields[len(fields) - width :]]
    return name, values
