"""Generic loader of a published system's supporting information, unpacked under the data root.

Layout of ``<data_root>/<data_dir>/`` (see ``SI_LAYOUT``)::

    <forcefield>         the published .fld; its substructure name line ends in OPT
    <base_forcefield>    the MM3* .fld it is composed with (default mm3.fld; optional when
                         the published file is already a complete force field)
    atom.typ             custom MacroModel atom types (optional; metals such as Pd)
    structures/*.log     Gaussian frequency jobs: training structures with archive Hessians

A published file without a ``-1`` function table is a set of substructure blocks; it is
composed with the base force field by inserting its blocks after the base's last ``-3``
line. Only the published substructure is fitted: an ``OPT`` mark left on a base substructure
name line is dropped in the composed file. Atom types come from element and bonding (``q2mm.mm3.typing.guess_types``), with
bonds perceived from distances, metal-ligand bonds included.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from q2mm.errors import DataNotFoundError, InputFormatError
from q2mm.io.atomtyp import read_atomtyp
from q2mm.io.gaussian import read_gaussian_log
from q2mm.mm3.graph import perceive_bonds
from q2mm.mm3.typing import guess_types
from q2mm.model.molecule import Molecule
from q2mm.systems.spec import SystemSpec

DEFAULT_BASE = "mm3.fld"
STRUCTURE_DIR = "structures"
COMPOSED_CACHE = Path.home() / ".cache" / "q2mm" / "composed"

SI_LAYOUT = """\
  {root}/
    {forcefield}        published force field (substructure name line ends in OPT)
    {base}             base MM3* force field it is composed with
    atom.typ           custom atom types (optional)
    structures/*.log   Gaussian frequency outputs with archive Hessians (one per structure)"""


def missing_data_message(spec: SystemSpec, directory: Path, problem: str) -> str:
    """The guidance printed when an external system's files are not where they should be."""
    layout = SI_LAYOUT.format(root=directory, forcefield=spec.forcefield, base=spec.base_forcefield or DEFAULT_BASE)
    paper = spec.reference or "its publication"
    return (
        f"system {spec.name!r} ({paper}) is not shipped with q2mm: {problem}.\n"
        f"Download the supporting information and unpack it as\n{layout}\n"
        f"under the data root, or point q2mm at it with data_root=PATH (or Q2MM_DATA=PATH), "
        f"or set system.data_dir to an absolute directory."
    )


def check_layout(spec: SystemSpec, directory: Path | None) -> None:
    """Fail before any work (DataNotFoundError with guidance) if the layout is incomplete."""
    if directory is None:
        raise DataNotFoundError(missing_data_message(spec, Path("<data_root>") / spec.data_dir, "no data root is set"))
    if not directory.is_dir():
        raise DataNotFoundError(missing_data_message(spec, directory, f"{directory} does not exist"))
    if not (directory / spec.forcefield).is_file():
        raise DataNotFoundError(missing_data_message(spec, directory, f"{directory / spec.forcefield} is missing"))
    if not structure_files(spec, directory):
        raise DataNotFoundError(missing_data_message(spec, directory, f"no Gaussian outputs in {directory / STRUCTURE_DIR}"))


def natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def structure_files(spec: SystemSpec, directory: Path) -> list[Path]:
    """The Gaussian outputs: the spec's list (relative to the directory), else structures/*.log."""
    if spec.structures:
        return [directory / name for name in spec.structures]
    return sorted((directory / STRUCTURE_DIR).glob("*.log"), key=natural_key)


def is_complete_forcefield(text: str) -> bool:
    """A complete MacroModel .fld has a ``-1`` function table."""
    return any(line.startswith("-1") for line in text.splitlines())


def unmark_opt(line: str) -> str:
    """A substructure name line without its trailing OPT mark (other lines unchanged)."""
    if line.startswith(" C") and line.rstrip().endswith(" OPT"):
        return line.rstrip()[: -len(" OPT")]
    return line


def compose_text(base: str, published: str, published_path: Path) -> str:
    """Base force field text with the published substructure blocks after its last ``-3``."""
    lines = published.splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith(" C") and line.rstrip().endswith("OPT")), None)
    if start is None:
        raise InputFormatError(published_path, None, "a substructure name line ending in OPT")
    blocks = lines[start:]
    if not any(line.startswith("-3") for line in blocks):
        blocks.append("-3")
    base_lines = [unmark_opt(line) for line in base.splitlines()]
    last_end = max((k for k, line in enumerate(base_lines) if line.startswith("-3")), default=None)
    if last_end is None:
        raise InputFormatError("base force field", None, "a '-3' line ending the substructure section")
    return "\n".join(base_lines[: last_end + 1] + blocks + base_lines[last_end + 1:]) + "\n"


def composed_forcefield(spec: SystemSpec, directory: Path, cache: Path = COMPOSED_CACHE) -> Path:
    """The force field to fit: the published file itself, or it composed with the base file."""
    published_path = directory / spec.forcefield
    published = published_path.read_text()
    if is_complete_forcefield(published):
        return published_path
    base_path = directory / (spec.base_forcefield or DEFAULT_BASE)
    if not base_path.is_file():
        raise DataNotFoundError(missing_data_message(spec, directory, f"the base force field {base_path} is missing"))
    text = compose_text(base_path.read_text(), published, published_path)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{spec.name}-{digest}.fld"
    if not target.is_file():
        target.write_text(text)
    return target


def typed_structure(path: Path, table) -> Molecule:
    """A Gaussian output with perceived bonds and MM3 types guessed from element and bonding."""
    log = read_gaussian_log(path)
    molecule = log.molecule
    if molecule.hessian is None:
        raise InputFormatError(path, None, "a frequency job whose archive holds the Hessian (NImag=...)")
    bonded = molecule.with_(bonds=tuple(perceive_bonds(molecule.elements, molecule.coords)))
    typing = guess_types(bonded, table)
    properties = {**molecule.properties, "transition_state": log.n_imaginary == 1, "typing": typing.report()}
    return bonded.with_(title=path.stem, atom_types=typing.type_names, properties=properties)


def load_supporting_info(spec: SystemSpec, directory: Path) -> tuple[Molecule, ...]:
    """Every training structure of an SI directory (layout checked first)."""
    check_layout(spec, directory)
    typ = directory / "atom.typ"
    table = read_atomtyp(typ) if typ.is_file() else None
    return tuple(typed_structure(path, table) for path in structure_files(spec, directory))
