"""File formats of a training set, chosen by suffix: geometry files (atom types and bonds) and
QM files (coordinates, Hessian, energy). No format is named after a data set.

Geometry (one or many structures per file, each a Molecule with types, bonds, title):
``.mae`` (MacroModel type numbers through atom.typ; bonds with orders, zero-order TS bonds
included), ``.mol2`` (MM3 type names), ``.json`` (q2mm's own ``metadata.json``: per named
structure ``elements``, ``atom_types``, ``bonds`` [i, j, order] 0-based, ``charge``,
``transition_state``, optional ``formal_charges`` and ``energy_hartree``).

QM (one structure per file): Jaguar ``.in`` (``&zmat`` + ``&hess``; the SCF energy and the
ESP/Mulliken charges from the ``.out`` beside it when there is one), Gaussian ``.log`` (archive geometry and Hessian, input
orientation) and ``.fchk``, ``.xyz`` with a ``.npy`` Hessian (Hartree/Bohr^2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from q2mm.errors import DataNotFoundError, InputFormatError, UnknownAtomTypeError
from q2mm.io.atomtyp import AtomTypeTable, standard_table
from q2mm.io.gaussian import read_fchk, read_gaussian_log
from q2mm.io.jaguar import read_jaguar_charges, read_jaguar_in, read_jaguar_scf_energy
from q2mm.io.mae import read_mae
from q2mm.io.mol2 import read_mol2_all
from q2mm.io.xyz import read_xyz
from q2mm.mm3.typing import resolve_generic_hydrogens
from q2mm.model.molecule import Bond, Molecule

GEOMETRY_SUFFIXES = (".mae", ".mol2", ".json")
QM_SUFFIXES = (".in", ".log", ".fchk", ".xyz")

# mol2 files written by common tools carry AMBER/GAFF-like names for MM3 hydrogens on carbon;
# a plain "H" takes its MM3 type from its neighbour (mm3.typing.resolve_generic_hydrogens).
MOL2_TYPE_ALIASES = {"HC": "H1"}


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataNotFoundError(f"{path} is missing: expected {what}")
    return path


# ---------------------------------------------------------------- geometry files


def read_geometry(path: Path, table: AtomTypeTable | None) -> list[Molecule]:
    """Every structure of a geometry file, with ``properties['types_from']``/``['bonds_from']``."""
    require_file(path, f"a geometry file ({', '.join(GEOMETRY_SUFFIXES)})")
    suffix = path.suffix.lower()
    if suffix == ".mae":
        where = f"MacroModel type numbers through {table.source or 'the standard table'}" if table else "standard types"
        return [_tag(m, f"{path.name} ({where})", path.name) for m in read_mae(path, table or standard_table())]
    if suffix == ".mol2":
        table = table or standard_table()
        return [
            _tag(mol2_structure(m, path, table), f"{path.name} (MM3 names)", path.name) for m in read_mol2_all(path)
        ]
    if suffix == ".json":
        return [_tag(m, path.name, path.name) for m in read_metadata_structures(path)]
    raise InputFormatError(path, None, f"a geometry file ending in {', '.join(GEOMETRY_SUFFIXES)}", path.suffix)


def _tag(molecule: Molecule, types_from: str, bonds_from: str) -> Molecule:
    return molecule.with_(properties={**molecule.properties, "types_from": types_from, "bonds_from": bonds_from})


def mol2_structure(molecule: Molecule, path: Path, table: AtomTypeTable) -> Molecule:
    """A mol2 structure with its type names as MacroModel MM3 names: aliases and plain ``H``
    resolved, each name checked against the standard types and the system's atom.typ."""
    given = molecule.atom_types or ()
    names = resolve_generic_hydrogens(molecule, [MOL2_TYPE_ALIASES.get(t, t) for t in given])
    for k, name in enumerate(names):
        try:
            table.by_name(name)
        except UnknownAtomTypeError:
            known = f"standard or in {table.source}" if table.source else "standard; no atom.typ beside it"
            raise InputFormatError(
                path, None, f"a MacroModel MM3 atom type ({known}) at atom {k + 1}", given[k]
            ) from None
    return molecule.with_(atom_types=names)


def read_metadata(path: Path) -> dict:
    """A q2mm ``metadata.json`` (written by the q2mm.qm generators or by hand)."""
    require_file(path, "a metadata.json with the structures' types and bonds")
    try:
        metadata = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFormatError(path, exc.lineno, "valid JSON", exc.msg) from None
    if not isinstance(metadata.get("structures"), dict):
        raise InputFormatError(path, None, "a 'structures' object: name -> elements, atom_types, bonds, charge")
    return metadata


def read_metadata_structures(path: Path) -> list[Molecule]:
    """The structures of a metadata.json (title = the structure's name; no coordinates yet)."""
    return [_metadata_structure(name, record, path) for name, record in read_metadata(path)["structures"].items()]


def _metadata_structure(name: str, record: dict, path: Path) -> Molecule:
    try:
        elements = tuple(record["elements"])
        types = tuple(record["atom_types"])
        bonds = tuple(Bond(int(i), int(j), float(order)) for i, j, order in record.get("bonds", ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFormatError(
            path, None, f"structure {name!r} with elements, atom_types and bonds [i, j, order]", str(exc)
        ) from None
    if len(types) != len(elements):
        raise InputFormatError(path, None, f"{len(elements)} atom types for structure {name!r}", str(len(types)))
    properties = {"transition_state": bool(record["transition_state"])} if "transition_state" in record else {}
    return Molecule(
        title=name,
        elements=elements,
        coords=np.full((len(elements), 3), np.nan),
        bonds=bonds,
        atom_types=types,
        formal_charges=tuple(int(q) for q in record["formal_charges"]) if "formal_charges" in record else None,
        charge=int(record.get("charge", 0)),
        energy=record.get("energy_hartree"),
        source=f"{path} ({name})",
        properties=properties,
    )


# ---------------------------------------------------------------- QM files


def read_qm(path: Path, hessian: Path | None = None, energy: Path | None = None) -> Molecule:
    """Coordinates (Angstrom), Hessian (Hartree/Bohr^2, same frame), energy, charge of a QM file."""
    require_file(path, f"a QM file ({', '.join(QM_SUFFIXES)})")
    suffix = path.suffix.lower()
    if suffix == ".in":
        molecule = read_jaguar_in(path)
        out = path.with_name(path.name.split(".")[0] + ".out")
        if out.is_file():
            molecule = with_energy(molecule, read_jaguar_scf_energy(out), "Jaguar SCF energy (SCFE)")
            charge_sets = read_jaguar_charges(out, molecule.n_atoms)
            if charge_sets:
                molecule = molecule.with_(properties={**molecule.properties, "qm_charge_sets": charge_sets})
    elif suffix == ".log":
        molecule = read_gaussian_log(path).molecule
    elif suffix == ".fchk":
        molecule = read_fchk(path)
    elif suffix == ".xyz":
        molecule = read_xyz(path)
        hessian_path = hessian or path.with_name(f"{path.stem}-hessian.npy")
        molecule = molecule.with_(
            hessian=load_hessian(hessian_path, molecule.n_atoms),
            energy=read_energy(energy) if energy is not None else None,
            properties={**molecule.properties, "charge_known": False},
        )
    else:
        raise unreadable_qm_file(path)
    if molecule.hessian is None:
        raise InputFormatError(path, None, "a Cartesian Hessian (a frequency job)")
    return molecule.with_(title=path.name.split(".")[0], source=str(path))


def unreadable_qm_file(path: Path) -> InputFormatError:
    """The error for a QM file of a suffix q2mm does not read, with the way to give it: a
    Jaguar ``.out`` by its restart input beside it, any other program's Hessian as an
    ``.xyz`` with ``NAME-hessian.npy``."""
    expected = f"a QM file ending in {', '.join(QM_SUFFIXES)}"
    stem = path.name.split(".")[0]
    if path.suffix.lower() == ".out":
        restart = next(
            (p for p in (path.with_name(f"{stem}.01.in"), path.with_name(f"{stem}.in")) if p.is_file()), None
        )
        where = f"{restart.name} beside it" if restart else f"{stem}.01.in"
        expected += f" (a Jaguar .out holds no Hessian: give its restart input, {where}; the .out is read with it for the energy and charges)"
    else:
        expected += f" (from another program: the geometry as {stem}.xyz with its Cartesian Hessian in Hartree/Bohr^2 as {stem}-hessian.npy beside it)"
    return InputFormatError(path, None, expected, path.suffix)


def with_energy(molecule: Molecule, energy: float | None, source: str) -> Molecule:
    """The molecule with a QM energy (Hartree) and where it came from; unchanged when None."""
    if energy is None:
        return molecule
    return molecule.with_(energy=energy, properties={**molecule.properties, "energy_source": source})


def load_hessian(path: Path, n_atoms: int) -> np.ndarray:
    """A (3N, 3N) float64 Hessian from a .npy file, checked for shape and finiteness."""
    require_file(path, f"a ({3 * n_atoms}, {3 * n_atoms}) Hessian in Hartree/Bohr^2 (.npy)")
    hessian = np.load(path)
    if hessian.shape != (3 * n_atoms, 3 * n_atoms) or not np.all(np.isfinite(hessian)):
        raise InputFormatError(path, None, f"a finite ({3 * n_atoms}, {3 * n_atoms}) Hessian", str(hessian.shape))
    return np.asarray(hessian, dtype=np.float64)


def read_energy(path: Path) -> float:
    """The first non-comment number of an energy text file (Hartree)."""
    require_file(path, "a text file with the energy in Hartree")
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            try:
                return float(text.split()[0])
            except ValueError:
                raise InputFormatError(path, number, "an energy in Hartree", text) from None
    raise InputFormatError(path, None, "an energy in Hartree", "no value")
