"""Gaussian files: ``.log`` outputs (archive block, orientations, SCF energy, frequencies) and
formatted checkpoints (``.fchk``).

Orientation: Gaussian writes the archive block's geometry and its ``NImag=`` Hessian in the
*input* orientation (the frame of the input coordinates), while frequencies, normal modes and
an ``.fchk`` of a job that used symmetry are in the *standard* orientation. ``read_gaussian_log``
therefore returns the archive geometry with the archive Hessian; the ``.fchk`` keeps its own
(consistent) frame. Units out: Angstrom, Hartree/Bohr^2, Hartree, cm^-1; atomic charges in e
(``properties['qm_charge_sets']``: method 'esp' or 'mulliken' -> (source, charges)).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.errors import InputFormatError
from q2mm.io.xyz import element_from_label, parse_float, parse_int, read_text_lines
from q2mm.model.molecule import Molecule
from q2mm.model.units import BOHR_IN_ANGSTROM


def lower_triangle_to_square(values: np.ndarray, n: int) -> np.ndarray:
    """Row-major lower triangle (H11, H21, H22, H31, ...) -> symmetric n x n matrix."""
    matrix = np.zeros((n, n))
    matrix[np.tril_indices(n)] = values
    return matrix + np.tril(matrix, -1).T


@dataclass(frozen=True)
class GaussianLog:
    """A Gaussian output file.

    ``molecule``: the archive geometry (input orientation), the archive Hessian if the job
    computed one, the last SCF energy and the charge. ``input_coords``/``standard_coords``:
    the last 'Input orientation' / 'Standard orientation' tables (None if not printed).
    ``frequencies`` (cm^-1, imaginary negative), ``reduced_masses`` (amu) and
    ``force_constants`` (mDyne/A) come from the last frequency table (empty if none).
    """

    molecule: Molecule
    multiplicity: int
    n_imaginary: int | None
    frequencies: np.ndarray
    reduced_masses: np.ndarray
    force_constants: np.ndarray
    input_coords: np.ndarray | None
    standard_coords: np.ndarray | None


def read_gaussian_log(path: str | Path) -> GaussianLog:
    """Read a Gaussian ``.log``; a job that did not terminate normally is refused."""
    path = Path(path)
    lines = read_text_lines(path)
    _check_termination(lines, path)
    archive = _last_archive(lines, path)
    energy, energy_source = _job_energy(lines, archive, path)
    freqs = _frequency_rows(lines, path)
    properties: dict = {"multiplicity": archive.multiplicity}
    if energy is not None:
        properties["energy_source"] = energy_source
    charge_sets = atomic_charges(lines, len(archive.elements), path)
    if charge_sets:
        properties["qm_charge_sets"] = charge_sets
    molecule = Molecule(
        title=archive.title or path.stem,
        elements=archive.elements,
        coords=archive.coords,
        charge=archive.charge,
        hessian=archive.hessian,
        energy=energy,
        source=str(path),
        properties=properties,
    )
    return GaussianLog(
        molecule=molecule,
        multiplicity=archive.multiplicity,
        n_imaginary=archive.n_imaginary,
        frequencies=np.array(freqs.get("Frequencies", [])),
        reduced_masses=np.array(freqs.get("Red. masses", [])),
        force_constants=np.array(freqs.get("Frc consts", [])),
        input_coords=_last_orientation(lines, "Input orientation:", path),
        standard_coords=_last_orientation(lines, "Standard orientation:", path),
    )


def _check_termination(lines: list[str], path: Path) -> None:
    last_normal = max((k for k, t in enumerate(lines) if "Normal termination of Gaussian" in t), default=-1)
    last_work = max((k for k, t in enumerate(lines) if t.startswith((" SCF Done:", " Entering Link 1"))), default=-1)
    if last_normal < last_work:
        found = next((t.strip() for t in lines if "Error termination" in t), "end of file")
        raise InputFormatError(path, len(lines), "'Normal termination of Gaussian' after the last job step", found)


# the archive's energies, the highest level first: a post-HF job's 'SCF Done' is its HF
# reference, the archive names the method's own energy ('HF=' is the SCF or DFT energy)
ARCHIVE_ENERGY_KEYS = ("CCSD(T)", "CCSD", "QCISD(T)", "QCISD", "MP4SDTQ", "MP4SDQ", "MP4D", "MP3", "MP2", "HF")


def _job_energy(lines: list[str], archive: Archive, path: Path) -> tuple[float | None, str]:
    """The job's energy (Hartree) and where it came from: the archive's highest-level energy
    where it has one above SCF (MP2, CCSD(T) ...), else the last 'SCF Done' line, else the
    archive's 'HF=' (a log cut to its archive block)."""
    post_hf = next((key for key in ARCHIVE_ENERGY_KEYS[:-1] if key in archive.energies), None)
    if post_hf is not None:
        return archive.energies[post_hf], f"Gaussian archive {post_hf}="
    scf = _last_scf_energy(lines, path)
    if scf is not None:
        return scf, "Gaussian SCF Done"
    if "HF" in archive.energies:
        return archive.energies["HF"], "Gaussian archive HF="
    return None, ""


def _last_scf_energy(lines: list[str], path: Path) -> float | None:
    for k in range(len(lines) - 1, -1, -1):
        if lines[k].startswith(" SCF Done:"):
            fields = lines[k].split("=", 1)[-1].split()
            if not fields:
                raise InputFormatError(path, k + 1, "'SCF Done:  E(...) = <energy>'", lines[k].strip())
            return parse_float(fields[0], path, k + 1, "the SCF energy in Hartree")
    return None


def _last_orientation(lines: list[str], header: str, path: Path) -> np.ndarray | None:
    starts = [k for k, text in enumerate(lines) if text.strip() == header]
    if not starts:
        return None
    rows = []
    for k in range(starts[-1] + 5, len(lines)):  # header, rule, two title lines, rule
        if lines[k].lstrip().startswith("---"):
            break
        fields = lines[k].split()
        if len(fields) not in (5, 6):
            raise InputFormatError(path, k + 1, f"a row of the '{header}' table", lines[k].strip())
        rows.append([parse_float(f, path, k + 1, "a coordinate in Angstrom") for f in fields[-3:]])
    else:
        raise InputFormatError(path, len(lines), f"the closing rule of the '{header}' table", "end of file")
    return np.array(rows).reshape(-1, 3)


# Atomic-charge tables by method (the keys a system's ``charges`` option names): ESP-fitted
# (Pop=CHELPG, MK or CHELP all print "ESP charges:"; older versions only "Charges from ESP
# fit" and a "Charge=" line) and Mulliken (current and older headers).
# Each: the header, a column-number line, rows "k El q [spin]", "Sum of ...".
CHARGE_TABLES = {
    "esp": ("ESP charges", ("ESP charges:",)),
    "mulliken": (
        "Mulliken charges",
        (
            "Mulliken charges:",
            "Mulliken charges and spin densities:",
            "Mulliken atomic charges:",
            "Total atomic charges:",
        ),
    ),
}


def atomic_charges(lines: list[str], n_atoms: int, path: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Per method found ('esp', 'mulliken'): (where it came from, charges in e) of its last table."""
    out = {}
    for method, (name, headers) in CHARGE_TABLES.items():
        starts = [k for k, text in enumerate(lines) if text.strip() in headers]
        if method == "esp":
            starts = sorted(starts + _older_esp_tables(lines))
        if starts:
            out[method] = (f"Gaussian {name}", _charge_table(lines, starts[-1], n_atoms, path))
    return out


def _older_esp_tables(lines: list[str]) -> list[int]:
    """Gaussian 03/09 print no 'ESP charges:' header: 'Charges from ESP fit, RMS=...', then
    'Charge= ... Dipole= ...', then the column-number line and the rows. The 'Charge=' lines."""
    return [
        k + 1
        for k, text in enumerate(lines[:-2])
        if text.strip().startswith("Charges from ESP fit")
        and lines[k + 1].strip().startswith("Charge=")
        and lines[k + 2].strip() not in CHARGE_TABLES["esp"][1]
    ]


def _charge_table(lines: list[str], header: int, n_atoms: int, path: Path) -> np.ndarray:
    values: list[float] = []
    for k in range(header + 2, header + 2 + n_atoms):
        fields = lines[k].split() if k < len(lines) else []
        if len(fields) < 3 or fields[0] != str(len(values) + 1):
            found = lines[k].strip() if k < len(lines) else "end of file"
            raise InputFormatError(
                path, k + 1, f"row {len(values) + 1} of the charge table: index, element, charge", found
            )
        values.append(parse_float(fields[2], path, k + 1, "an atomic charge"))
    return np.array(values)


def _frequency_rows(lines: list[str], path: Path) -> dict[str, list[float]]:
    """'Frequencies --', 'Red. masses --', 'Frc consts --' of the last frequency table."""
    wanted = ("Frequencies", "Red. masses", "Frc consts")
    table: dict[str, list[float]] = {}
    for k, text in enumerate(lines):
        if text.startswith(" Harmonic frequencies (cm**-1)"):
            table = {}
            continue
        name, sep, rest = text.partition(" --")
        if sep and name.strip() in wanted and not rest.startswith("-"):
            values = [parse_float(f, path, k + 1, f"a '{name.strip()}' value") for f in rest.split()]
            table.setdefault(name.strip(), []).extend(values)
    return table


@dataclass(frozen=True)
class Archive:
    """The parsed archive block of one Gaussian job step."""

    title: str
    charge: int
    multiplicity: int
    elements: tuple[str, ...]
    coords: np.ndarray
    n_imaginary: int | None
    hessian: np.ndarray | None
    energies: dict[str, float] = field(default_factory=dict)  # the info section's 'HF=', 'MP2=', ... (Hartree)


class _ArchiveText:
    """An archive block joined into one string, able to say which file line a character came from."""

    def __init__(self, lines: list[str], start: int, path: Path):
        self.path = path
        pieces, self.offsets, self.line_numbers = [], [], []
        offset = 0
        for k in range(start, len(lines)):
            piece = lines[k][1:] if lines[k].startswith(" ") else lines[k]
            pieces.append(piece)
            self.offsets.append(offset)
            self.line_numbers.append(k + 1)
            offset += len(piece)
            if piece.rstrip().endswith("@"):
                break
        else:
            raise InputFormatError(
                path,
                len(lines),
                f"the end '@' of the archive block started on line {start + 1}",
                "end of file",
            )
        self.text = "".join(pieces).rstrip()
        self.sep = self.text[1]

    def line_of(self, position: int) -> int:
        """1-based file line holding character ``position`` of the joined text."""
        return self.line_numbers[bisect.bisect_right(self.offsets, position) - 1]

    def sections(self) -> list[tuple[int, str]]:
        """(start position, text) of every section between double separators."""
        out, position = [], 0
        for part in self.text.split(self.sep * 2):
            out.append((position, part))
            position += len(part) + 2
        return out


def _archive_starts(lines: list[str]) -> list[int]:
    return [k for k, t in enumerate(lines) if t.startswith((" 1\\1\\", " 1|1|"))]


def _last_archive(lines: list[str], path: Path) -> Archive:
    starts = _archive_starts(lines)
    if not starts:
        raise InputFormatError(path, None, "an archive block (a line starting ' 1\\1\\')")
    texts = [_ArchiveText(lines, start, path) for start in starts]
    with_hessian = [t for t in texts if "NImag=" in t.text]
    return _parse_archive((with_hessian or texts)[-1])


def _parse_archive(archive: _ArchiveText) -> Archive:
    sections = archive.sections()
    if len(sections) < 5:
        raise InputFormatError(
            archive.path,
            archive.line_of(0),
            "archive sections header\\\\route\\\\title\\\\geometry\\\\info",
            archive.text[:70],
        )
    title = sections[2][1].strip()
    charge, multiplicity, symbols, coords = _archive_geometry(archive, *sections[3])
    energies = _archive_energies(archive, *sections[4])
    info_index = next((i for i, (_, s) in enumerate(sections) if "NImag=" in s), None)
    if info_index is None:
        return Archive(title, charge, multiplicity, symbols, coords, None, None, energies)
    info_pos, info = sections[info_index]
    n_imag = _archive_nimag(archive, info_pos, info)
    if info_index + 1 >= len(sections):
        raise InputFormatError(
            archive.path,
            archive.line_of(info_pos),
            "the Hessian section after 'NImag='",
            "end of archive",
        )
    hessian = _archive_hessian(archive, *sections[info_index + 1], 3 * len(symbols))
    return Archive(title, charge, multiplicity, symbols, coords, n_imag, hessian, energies)


def _archive_energies(archive: _ArchiveText, position: int, text: str) -> dict[str, float]:
    """The energies of the archive's info section (``HF=``, ``MP2=``, ``CCSD(T)=`` ...; Hartree)."""
    out = {}
    for item in text.split(archive.sep):
        key, sep, value = item.partition("=")
        if sep and key.strip() in ARCHIVE_ENERGY_KEYS:
            where = archive.line_of(position + text.find(item))
            out[key.strip()] = parse_float(
                value.split(",")[0], archive.path, where, f"the archive's {key.strip()}= energy"
            )
    return out


def _archive_geometry(archive: _ArchiveText, position: int, text: str):
    items = text.split(archive.sep)
    where = archive.line_of(position)
    head = items[0].split(",")
    if len(head) != 2:
        raise InputFormatError(archive.path, where, "'charge,multiplicity' opening the archive geometry", items[0])
    charge = parse_int(head[0], archive.path, where, "an integer charge")
    multiplicity = parse_int(head[1], archive.path, where, "an integer multiplicity")
    symbols, rows = [], []
    item_pos = position + len(items[0]) + 1
    for item in items[1:]:
        line_no = archive.line_of(item_pos)
        fields = item.split(",")
        if len(fields) not in (4, 5):
            raise InputFormatError(archive.path, line_no, "an archive atom 'El,x,y,z' (Cartesian)", item)
        symbols.append(element_from_label(fields[0], archive.path, line_no))
        rows.append([parse_float(f, archive.path, line_no, "a coordinate in Angstrom") for f in fields[-3:]])
        item_pos += len(item) + 1
    if not rows:
        raise InputFormatError(archive.path, where, "atoms in the archive geometry", text)
    return charge, multiplicity, tuple(symbols), np.array(rows)


def _archive_nimag(archive: _ArchiveText, position: int, info: str) -> int:
    offset = info.index("NImag=")
    token = info[offset + len("NImag=") :].split(archive.sep)[0]
    return parse_int(token, archive.path, archive.line_of(position + offset), "an integer after 'NImag='")


def _archive_hessian(archive: _ArchiveText, position: int, text: str, n: int) -> np.ndarray:
    tokens = text.split(",")
    expected = n * (n + 1) // 2
    if len(tokens) != expected:
        raise InputFormatError(
            archive.path,
            archive.line_of(position),
            f"{expected} lower-triangle Hessian values for {n // 3} atoms",
            f"{len(tokens)} values",
        )
    values = np.empty(expected)
    token_pos = position
    for k, token in enumerate(tokens):
        values[k] = parse_float(token, archive.path, archive.line_of(token_pos), "a Hessian value in the archive")
        token_pos += len(token) + 1
    return lower_triangle_to_square(values, n)


@dataclass(frozen=True)
class FchkField:
    """One field of a formatted checkpoint: its type letter, its value(s) and its header line."""

    kind: str
    value: Any  # int or float (scalar fields, by kind letter) or a 1-D ndarray (array fields)
    line: int


def read_fchk_fields(
    path: str | Path, names: tuple[str, ...] | None = None, lines: list[str] | None = None
) -> dict[str, FchkField]:
    """Fields of a formatted checkpoint by name (only ``names`` when given). Character data is kept as text."""
    path = Path(path)
    lines = read_text_lines(path) if lines is None else lines
    headers = [k for k, t in enumerate(lines) if k >= 2 and t and not t[0].isspace()]
    fields: dict[str, FchkField] = {}
    for position, k in enumerate(headers):
        name, kind, is_array, token = _fchk_header(lines[k], path, k + 1)
        if names is not None and name not in names:
            continue
        end = headers[position + 1] if position + 1 < len(headers) else len(lines)
        if is_array:
            value = _fchk_array(lines, k, end, kind, parse_int(token, path, k + 1, "an array length after 'N='"), path)
        else:
            value = _fchk_scalar(token, kind, path, k + 1)
        fields[name] = FchkField(kind, value, k + 1)
    return fields


def _fchk_header(text: str, path: Path, line_no: int) -> tuple[str, str, bool, str]:
    name, rest = text[:40].strip(), text[40:].split()
    if not rest or rest[0] not in ("I", "R", "C", "L", "H") or (len(rest) != 2 and rest[1:2] != ["N="]):
        raise InputFormatError(path, line_no, "an fchk header 'Name  I|R|C|L  value' or '... N= count'", text.strip())
    if rest[1] == "N=":
        if len(rest) != 3:
            raise InputFormatError(path, line_no, "an array length after 'N='", text.strip())
        return name, rest[0], True, rest[2]
    return name, rest[0], False, rest[1]


def _fchk_scalar(token: str, kind: str, path: Path, line_no: int) -> object:
    if kind == "I":
        return parse_int(token, path, line_no, "an integer")
    if kind == "R":
        return parse_float(token, path, line_no, "a real number")
    return token


def _fchk_array(lines: list[str], header: int, end: int, kind: str, count: int, path: Path) -> object:
    body = [(k + 1, lines[k]) for k in range(header + 1, end)]
    if kind not in ("I", "R"):
        return "".join(text for _, text in body)
    name = lines[header][:40].strip()
    convert = parse_int if kind == "I" else parse_float
    values = [convert(tok, path, no, f"a number in '{name}'") for no, text in body for tok in text.split()]
    if len(values) != count:
        last = body[-1][0] if body else header + 1
        raise InputFormatError(path, last, f"{count} values for '{name}'", f"{len(values)} values")
    return np.array(values, dtype=np.int64 if kind == "I" else np.float64)


FCHK_REQUIRED = ("Atomic numbers", "Current cartesian coordinates")
FCHK_CHARGES = {"esp": "ESP Charges", "mulliken": "Mulliken Charges"}  # method -> fchk field (e)


def read_fchk(path: str | Path) -> Molecule:
    """A formatted checkpoint as a Molecule: coordinates (Bohr -> Angstrom), elements,
    ``Cartesian Force Constants`` (Hartree/Bohr^2) if present, ``Total Energy``, charge."""
    path = Path(path)
    optional = ("Cartesian Force Constants", "Total Energy", "Charge", "Multiplicity", *FCHK_CHARGES.values())
    wanted: tuple[str, ...] = FCHK_REQUIRED + optional
    lines = read_text_lines(path)
    fields = read_fchk_fields(path, wanted, lines)
    for name in FCHK_REQUIRED:
        if name not in fields:
            raise InputFormatError(path, None, f"the fchk field '{name}'")
    numbers = fields["Atomic numbers"].value
    coords = np.asarray(fields["Current cartesian coordinates"].value)
    if coords.size != 3 * numbers.size:
        raise InputFormatError(
            path,
            fields["Current cartesian coordinates"].line,
            f"{3 * numbers.size} coordinates",
            f"{coords.size}",
        )
    symbols = tuple(element_from_label(str(z), path, fields["Atomic numbers"].line) for z in numbers)
    hessian = None
    if "Cartesian Force Constants" in fields:
        hessian = _fchk_hessian(fields["Cartesian Force Constants"], 3 * numbers.size, path)
    properties: dict = {"multiplicity": int(fields["Multiplicity"].value) if "Multiplicity" in fields else 1}
    charge_sets = {
        method: (f"Gaussian fchk {name}", _fchk_charges(fields[name], numbers.size, path))
        for method, name in FCHK_CHARGES.items()
        if name in fields
    }
    if charge_sets:
        properties["qm_charge_sets"] = charge_sets
    return Molecule(
        title=lines[0].strip() if lines else path.stem,
        elements=symbols,
        coords=coords.reshape(-1, 3) * BOHR_IN_ANGSTROM,
        charge=int(fields["Charge"].value) if "Charge" in fields else 0,
        hessian=hessian,
        energy=float(fields["Total Energy"].value) if "Total Energy" in fields else None,
        source=str(path),
        properties=properties,
    )


def _fchk_charges(field: FchkField, n_atoms: int, path: Path) -> np.ndarray:
    values = np.asarray(field.value, dtype=np.float64)
    if values.size != n_atoms:
        raise InputFormatError(path, field.line, f"{n_atoms} atomic charges", f"{values.size}")
    return values


def _fchk_hessian(field: FchkField, n: int, path: Path) -> np.ndarray:
    values = np.asarray(field.value)
    if values.size != n * (n + 1) // 2:
        raise InputFormatError(
            path,
            field.line,
            f"{n * (n + 1) // 2} force constants for {n // 3} atoms",
            f"{values.size}",
        )
    return lower_triangle_to_square(values, n)
