"""One loader per data layout: embedded package data, the shared sn2/rh-enamide/ethane sets.

Every loader returns the structures (Molecule with coordinates in Angstrom, elements, MM3 atom
types, bonds, QM Hessian in Hartree/Bohr^2 in the frame of those coordinates); ``load_system``
in :mod:`q2mm.systems` adds the force field and settings.
"""

from __future__ import annotations

import re
from pathlib import Path

from q2mm.errors import DataNotFoundError, InputFormatError
from q2mm.io.atomtyp import read_atomtyp, standard_table
from q2mm.io.gaussian import read_fchk, read_gaussian_log
from q2mm.io.jaguar import read_jaguar_in, read_jaguar_scf_energy
from q2mm.io.mae import read_mae
from q2mm.io.mol2 import read_mol2
from q2mm.io.xyz import read_xyz
from q2mm.model.molecule import Bond, Molecule
from q2mm.paths import PACKAGE_DATA
from q2mm.reference.vibrations import frequencies
from q2mm.systems.embedded import load_embedded_structures, load_hessian, read_metadata
from q2mm.systems.spec import SystemSpec
from q2mm.systems.topology import attach_topology

# mol2 files written by common tools carry AMBER/GAFF-like names for MM3 hydrogens on carbon.
MOL2_TYPE_ALIASES = {"HC": "H1", "H": "H1"}


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataNotFoundError(f"{path} is missing: expected {what}")
    return path


def count_imaginary(molecule: Molecule, threshold_cm1: float = -50.0) -> int:
    """Imaginary modes (below ``threshold_cm1``) of the molecule's QM Hessian."""
    return int((frequencies(molecule.hessian, molecule.masses, molecule.coords) < threshold_cm1).sum())


def mark_transition_state(molecule: Molecule) -> Molecule:
    """Record ``properties['transition_state']`` from the QM Hessian (one imaginary mode)."""
    return molecule.with_(properties={**molecule.properties, "transition_state": count_imaginary(molecule) == 1})


def load_embedded(spec: SystemSpec, directory: Path) -> tuple[Molecule, ...]:
    """Structures of a system shipped in q2mm/data (written by a q2mm.qm generator)."""
    return load_embedded_structures(directory, tuple(spec.structures))


def load_shared_sn2(spec: SystemSpec, directory: Path) -> tuple[Molecule, ...]:
    """The shared sn2 pair: ``STEM-optimized.xyz`` + ``STEM-hessian.npy`` + ``STEM-energy.txt``.

    ``spec.structures`` name the xyz files (or their stems: 'sn2-ts', 'ch3f'). Atom types and
    bonds come from the embedded sn2 metadata (same atom order, checked).
    """
    records = read_metadata(PACKAGE_DATA / "sn2")["structures"]
    molecules = []
    for name in spec.structures:
        stem = name.removesuffix(".xyz").removesuffix("-optimized")
        if stem not in records:
            raise DataNotFoundError(f"{name}: the sn2 system has the structures {sorted(records)}")
        geometry = read_xyz(require_file(directory / f"{stem}-optimized.xyz", "an xyz geometry (Angstrom)"))
        record = records[stem]
        if tuple(geometry.elements) != tuple(record["elements"]):
            raise InputFormatError(geometry.source, None, f"atoms in the order {record['elements']}", str(geometry.elements))
        hessian = load_hessian(require_file(directory / f"{stem}-hessian.npy", "a Hessian"), geometry.n_atoms)
        molecules.append(geometry.with_(
            title=stem, atom_types=tuple(record["atom_types"]),
            bonds=embedded_bonds(record), charge=int(record["charge"]), hessian=hessian,
            energy=read_energy(directory / f"{stem}-energy.txt"),
            properties={"transition_state": bool(record["transition_state"])},
        ))
    return tuple(molecules)


def embedded_bonds(record: dict) -> tuple[Bond, ...]:
    return tuple(Bond(int(i), int(j), float(order)) for i, j, order in record["bonds"])


def read_energy(path: Path) -> float | None:
    """The first non-comment number of an energy text file (Hartree), None if absent."""
    if not path.is_file():
        return None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            try:
                return float(text.split()[0])
            except ValueError:
                raise InputFormatError(path, number, "an energy in Hartree", text) from None
    raise InputFormatError(path, None, "an energy in Hartree", "no value")


def leading_number(name: str) -> int:
    match = re.match(r"\s*(\d+)", name)
    if match is None:
        raise ValueError(name)
    return int(match.group(1))


def load_rh_enamide(spec: SystemSpec, directory: Path) -> tuple[Molecule, ...]:
    """Jaguar Hessians (jaguar/N*.01.in) joined with the Maestro training set (types, bonds).

    Structure N of ``rh_enamide_training_set.mae`` (title starting with N) pairs with the
    Jaguar file whose name starts with N; the Jaguar geometry is kept (the Hessian's frame).
    """
    atom_types = read_atomtyp(require_file(directory / "atom.typ", "the custom MacroModel atom.typ"))
    mae_path = require_file(directory / spec.structures[0], "the Maestro training set")
    structures = {leading_number(m.title): m for m in read_mae(mae_path, atom_types)}
    jaguar = sorted((directory / "jaguar").glob("*.01.in"), key=lambda p: leading_number(p.name))
    if not jaguar:
        raise DataNotFoundError(f"{directory / 'jaguar'} holds no Jaguar restart inputs (*.01.in)")
    molecules = []
    for path in jaguar:
        number = leading_number(path.name)
        if number not in structures:
            raise InputFormatError(mae_path, None, f"a structure titled '{number} ...' for {path.name}")
        structure = structures[number]
        qm = with_jaguar_energy(read_jaguar_in(path).with_(title=structure.title), path)
        molecules.append(mark_transition_state(attach_topology(qm, structure, structure.atom_types)))
    return tuple(molecules)


def with_jaguar_energy(molecule: Molecule, restart: Path) -> Molecule:
    """The SCF energy (Hartree) of the Jaguar output beside a restart input (``X.01.in`` -> ``X.out``)."""
    output = restart.with_name(restart.name.split(".")[0] + ".out")
    energy = read_jaguar_scf_energy(output) if output.is_file() else None
    if energy is None:
        return molecule
    label = "Jaguar SCF energy (SCFE)"
    return molecule.with_(energy=energy, properties={**molecule.properties, "energy_source": label})


def mm3_type_names(types: tuple[str, ...], source: str) -> tuple[str, ...]:
    """mol2 type names as MacroModel MM3 names (aliases resolved, each checked to exist)."""
    table = standard_table()
    names = tuple(MOL2_TYPE_ALIASES.get(t, t) for t in types)
    for k, name in enumerate(names):
        try:
            table.by_name(name)
        except Exception:
            raise InputFormatError(source, None, f"a MacroModel MM3 atom type at atom {k + 1}", types[k]) from None
    return names


def read_gaussian_structure(directory: Path, stem: str) -> Molecule:
    """Coordinates and Hessian from STEM.fchk when present, else the STEM.log archive."""
    fchk = directory / f"{stem}.fchk"
    if fchk.is_file():
        return read_fchk(fchk)
    log = read_gaussian_log(require_file(directory / f"{stem}.log", "a Gaussian output (.log or .fchk)"))
    return log.molecule


def load_ethane(spec: SystemSpec, directory: Path) -> tuple[Molecule, ...]:
    """Gaussian GS/TS Hessians joined with the mol2 files' MM3 types and bonds."""
    molecules = []
    for stem in spec.structures:
        qm = read_gaussian_structure(directory, stem)
        if qm.hessian is None:
            raise InputFormatError(qm.source, None, "a Cartesian Hessian (a frequency job)")
        structure = read_mol2(require_file(directory / f"{stem}.mol2", "a mol2 file with MM3 types"))
        types = mm3_type_names(structure.atom_types, structure.source)
        joined = attach_topology(qm.with_(title=stem), structure, types)
        molecules.append(mark_transition_state(joined))
    return tuple(molecules)
