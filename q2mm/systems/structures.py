"""The structures of a system: each ``structures`` entry (one file pair or a pattern) expanded
into paired Molecules.

Rules (docs/own-system.md): a ``geometry`` glob expands to its files in natural order; the
``qm`` of an entry is a file, a glob, or a template with ``{stem}``, ``{title}``, ``{number}``,
``{index}`` filled per structure. A geometry file with several structures pairs with a ``qm``
glob in order when the counts agree (checked by title where titles and file names both carry
leading numbers), else by name (title equal to the QM file's stem). Without ``geometry`` every
QM file is a structure of its own: bonds perceived from distances, types guessed from element
and bonding (``q2mm.mm3.typing.guess_types``).
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from q2mm.errors import ConfigurationError, DataNotFoundError, PairingError
from q2mm.io.atomtyp import AtomTypeTable
from q2mm.mm3.graph import perceive_bonds
from q2mm.mm3.typing import guess_types
from q2mm.model.molecule import Molecule
from q2mm.paths import PACKAGE_DATA
from q2mm.reference.vibrations import frequencies
from q2mm.systems.formats import read_geometry, read_qm
from q2mm.systems.pairing import pair
from q2mm.systems.spec import PACKAGE_PREFIX, StructureSpec

PLACEHOLDERS = ("{stem}", "{title}", "{number}", "{index}")
IMAGINARY_BELOW = -50.0  # cm^-1: a QM mode below this counts as imaginary


def natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def leading_number(text: str) -> int | None:
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def locate(directory: Path, text: str) -> Path:
    """A path of a system file: ``package:REL`` (q2mm/data), absolute, or relative to ``directory``."""
    if text.startswith(PACKAGE_PREFIX):
        return PACKAGE_DATA / text[len(PACKAGE_PREFIX) :]
    return directory / Path(text).expanduser()


def expand(directory: Path, pattern: str) -> list[Path]:
    """Files matching a path or glob (see :func:`locate`), in natural order."""
    full = locate(directory, pattern)
    if not glob.has_magic(pattern):
        return [full]
    return sorted((Path(p) for p in glob.glob(str(full)) if Path(p).is_file()), key=natural_key)


def count_imaginary(molecule: Molecule) -> int:
    """Imaginary modes (below IMAGINARY_BELOW cm^-1) of the molecule's QM Hessian."""
    if molecule.hessian is None:
        return 0
    return int((frequencies(molecule.hessian, molecule.masses, molecule.coords) < IMAGINARY_BELOW).sum())


def finish(molecule: Molecule) -> Molecule:
    """Record the imaginary-mode count and, unless a geometry file stated it, the TS flag."""
    n_imaginary = count_imaginary(molecule)
    properties = {"transition_state": n_imaginary == 1, **molecule.properties, "n_imaginary": n_imaginary}
    return molecule.with_(properties=properties)


def load_structures(entries: list[StructureSpec], directory: Path, table: AtomTypeTable | None) -> tuple[Molecule, ...]:
    """Every structure of every entry, paired and checked (paths relative to ``directory``)."""
    if not entries:
        raise ConfigurationError("the system lists no structures: give structures: [{geometry: ..., qm: ...}]")
    molecules: list[Molecule] = []
    for number, entry in enumerate(entries, start=1):
        if not entry.qm:
            raise ConfigurationError(f"structures entry {number} ({_describe(entry)}) names no qm file")
        pairs = _entry_pairs(entry, entry.qm, directory, table)
        if not pairs:
            raise DataNotFoundError(f"structures entry {number} ({_describe(entry)}) matches no files in {directory}")
        molecules += pairs
    return tuple(molecules)


def select_charges(molecules: tuple[Molecule, ...], method: str, required: bool) -> tuple[Molecule, ...]:
    """Each structure with ``properties['qm_charges']`` (e) and ``['qm_charges_source']``: its
    charge set named ``method`` (the system's ``charges``). A structure without that set keeps
    none; when the ``charge`` kind is scored (``required``) that is refused, naming the sets it has."""
    out, missing = [], []
    for molecule in molecules:
        sets = molecule.properties.get("qm_charge_sets", {})
        properties = {k: v for k, v in molecule.properties.items() if k not in ("qm_charges", "qm_charges_source")}
        if method in sets:
            properties["qm_charges_source"], properties["qm_charges"] = sets[method]
        else:
            missing.append(
                f"{molecule.title} ({molecule.properties.get('qm_source', molecule.source)}: "
                f"{', '.join(sorted(sets)) or 'no charges'})"
            )
        out.append(molecule.with_(properties=properties))
    if required and missing:
        raise ConfigurationError(
            f"the charge kind is scored with charges={method!r}, but these structures have no {method} charges: "
            + "; ".join(missing)
            + " (set the system's charges option to a set they have, or run a population analysis)"
        )
    return tuple(out)


def _describe(entry: StructureSpec) -> str:
    return ", ".join(f"{key}: {value}" for key, value in vars(entry).items() if value)


def _entry_pairs(entry: StructureSpec, qm: str, directory: Path, table: AtomTypeTable | None) -> list[Molecule]:
    if not entry.geometry:
        return [finish(typed_from_qm(read_qm(path), table)) for path in _qm_files(qm, directory, {})]
    out = []
    for geometry_path, structures, index, structure, qm_path in _geometry_pairs(entry, qm, directory, table):
        fill = _fields(structure, geometry_path, index)
        hessian = locate(directory, entry.hessian.format(**fill)) if entry.hessian else None
        energy = locate(directory, entry.energy.format(**fill)) if entry.energy else None
        paired = pair(read_qm(qm_path, hessian, energy), structure)
        if len(structures) == 1:  # a file of one structure: named by its QM file (GS, TS), not its title
            paired = paired.with_(title=qm_path.name.split(".")[0])
        out.append(finish(paired))
    return out


def _geometry_pairs(
    entry: StructureSpec, qm: str, directory: Path, table: AtomTypeTable | None
) -> list[tuple[Path, list[Molecule], int, Molecule, Path]]:
    """(geometry file, its structures, 1-based index, structure, QM file) of every pair of an entry.

    Each geometry file pairs with the QM files on its own (placeholders, in order, or by title);
    where that fails and a geometry glob's files hold as many structures as a plain QM glob has
    files, they pair across files in natural order (``mae/*.mae`` with ``jaguar/*.01.in``),
    leading numbers of titles and QM file names agreeing where both have them."""
    assert entry.geometry is not None  # _entry_pairs handles entries without one
    read = [(path, read_geometry(path, table)) for path in expand(directory, entry.geometry)]
    try:
        return [
            (path, structures, *pair)
            for path, structures in read
            for pair in _match(entry, qm, structures, path, directory)
        ]
    except PairingError:
        files = [] if len(read) < 2 or any(p in qm for p in PLACEHOLDERS) else _qm_files(qm, directory, {})
        listed = [(path, structures, k, s) for path, structures in read for k, s in enumerate(structures, start=1)]
        if not files or len(files) != len(listed):
            raise
    for (path, _, _, structure), qm_path in zip(listed, files):
        _check_numbers([structure], [qm_path], path)
    return [(*item, qm_path) for item, qm_path in zip(listed, files)]


def _fields(structure: Molecule, geometry_path: Path, index: int) -> dict[str, object]:
    number = leading_number(structure.title or "")
    return {
        "stem": geometry_path.stem,
        "title": structure.title,
        "number": "" if number is None else number,
        "index": index,
    }


def _qm_files(pattern: str, directory: Path, fill: dict) -> list[Path]:
    try:
        text = pattern.format(**fill) if fill else pattern
    except (KeyError, IndexError) as exc:
        raise ConfigurationError(
            f"qm: {pattern!r}: unknown placeholder {exc}; known: {', '.join(PLACEHOLDERS)}"
        ) from None
    return expand(directory, text)


def _match(
    entry: StructureSpec, qm: str, structures: list[Molecule], geometry_path: Path, directory: Path
) -> list[tuple[int, Molecule, Path]]:
    """(1-based index in the file, structure, QM file ``qm`` names for it) of one geometry file."""
    if any(p in qm for p in PLACEHOLDERS):
        pairs = []
        for index, structure in enumerate(structures, start=1):
            files = _qm_files(qm, directory, _fields(structure, geometry_path, index))
            if len(files) != 1:
                raise DataNotFoundError(
                    f"{geometry_path} structure {index} ({structure.title!r}): qm {qm!r} "
                    f"matches {len(files)} files in {directory}, expected one"
                )
            pairs.append((index, structure, files[0]))
        return pairs
    files = _qm_files(qm, directory, {})
    if len(files) == len(structures):
        _check_numbers(structures, files, geometry_path)
        return [(k, s, f) for k, (s, f) in enumerate(zip(structures, files), start=1)]
    by_title = {s.title: (k, s) for k, s in enumerate(structures, start=1)}
    pairs = [(*by_title[f.name.split(".")[0]], f) for f in files if f.name.split(".")[0] in by_title]
    if len(pairs) != len(files):
        raise PairingError(
            geometry_path,
            None,
            f"one structure per QM file of {qm!r} ({len(files)} files), in order or titled like the QM file",
            f"{len(structures)} structures",
        )
    return pairs


def _check_numbers(structures: list[Molecule], files: list[Path], geometry_path: Path) -> None:
    """Where both the titles and the file names carry leading numbers, they must agree."""
    for index, (structure, path) in enumerate(zip(structures, files), start=1):
        a, b = leading_number(structure.title or ""), leading_number(path.name)
        if a is not None and b is not None and a != b:
            raise PairingError(
                f"{geometry_path} and {path}",
                None,
                f"structure {index} titled with the number of its QM file ({b})",
                structure.title,
            )


def typed_from_qm(molecule: Molecule, table: AtomTypeTable | None) -> Molecule:
    """A QM structure on its own: bonds perceived from distances, MM3 types guessed."""
    bonded = molecule.with_(bonds=tuple(perceive_bonds(molecule.elements, molecule.coords)))
    typing = guess_types(bonded, table)
    where = Path(molecule.source).name
    properties = {
        **molecule.properties,
        "typing": typing.report(),
        "qm_source": molecule.source,
        "types_from": f"{where} (guessed from element and bonding)",
        "bonds_from": f"{where} (perceived from distances)",
    }
    return bonded.with_(atom_types=typing.type_names, properties=properties)
