"""Tripos mol2 files whose ATOM type column holds MacroModel/MM3 type names (``C3``, ``HC``).

Type names are kept exactly as written. Elements come from a Sybyl type's prefix when the
type has one (``C.3`` -> C), else from the atom name (``H12`` -> H, ``Rh1`` -> Rh). Bond types
keep their Tripos spelling in ``properties['bond_types']`` (``1 2 3 ar am du un nc``) and map to
numeric orders for ``Bond.order``: aromatic 1.5, amide 1, dummy/unknown 1, not connected 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from q2mm.errors import InputFormatError
from q2mm.io.xyz import parse_float, parse_int, read_text_lines
from q2mm.model import elements
from q2mm.model.molecule import Bond, Molecule

BOND_ORDERS = {"1": 1.0, "2": 2.0, "3": 3.0, "ar": 1.5, "am": 1.0, "du": 1.0, "un": 1.0, "nc": 0.0}


def read_mol2_all(path: str | Path) -> list[Molecule]:
    """Every molecule (``@<TRIPOS>MOLECULE`` record) of a mol2 file."""
    path = Path(path)
    lines = read_text_lines(path)
    starts = [k for k, t in enumerate(lines) if t.strip().upper() == "@<TRIPOS>MOLECULE"]
    if not starts:
        raise InputFormatError(path, None, "an '@<TRIPOS>MOLECULE' record")
    ends = starts[1:] + [len(lines)]
    return [_read_molecule(lines, start, end, path) for start, end in zip(starts, ends)]


def read_mol2(path: str | Path) -> Molecule:
    """The first molecule of a mol2 file."""
    return read_mol2_all(path)[0]


def _records(lines: list[str], start: int, end: int) -> dict[str, list[tuple[int, str]]]:
    """Body lines (1-based number, text) of each '@<TRIPOS>NAME' record in lines[start:end]."""
    records: dict[str, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] | None = None
    for k in range(start, end):
        stripped = lines[k].strip()
        if stripped.upper().startswith("@<TRIPOS>"):
            current = records.setdefault(stripped[9:].upper(), [])
        elif current is not None and stripped and not stripped.startswith("#"):
            current.append((k + 1, lines[k]))
    return records


def _read_molecule(lines: list[str], start: int, end: int, path: Path) -> Molecule:
    records = _records(lines, start, end)
    header = records.get("MOLECULE", [])
    if len(header) < 2:
        raise InputFormatError(path, start + 2, "a molecule name line and a counts line", "end of record")
    title = header[0][1].strip()
    count_line, counts = header[1][0], header[1][1].split()
    n_atoms = parse_int(counts[0], path, count_line, "the atom count")
    n_bonds = parse_int(counts[1], path, count_line, "the bond count") if len(counts) > 1 else 0
    symbols, types, coords, charges = _read_atoms(records.get("ATOM", []), n_atoms, path, start)
    bonds, bond_types = _read_bonds(records.get("BOND", []), n_bonds, n_atoms, path, start)
    return Molecule(
        title=title,
        elements=symbols,
        coords=coords,
        bonds=bonds,
        atom_types=types,
        charge=int(round(sum(charges))),
        source=str(path),
        properties={"partial_charges": np.array(charges), "bond_types": bond_types},
    )


def _read_atoms(rows: list[tuple[int, str]], n_atoms: int, path: Path, start: int):
    if len(rows) != n_atoms:
        where = rows[-1][0] if rows else start + 1
        raise InputFormatError(path, where, f"{n_atoms} ATOM rows as the counts line says", f"{len(rows)}")
    symbols, types, coords, charges = [], [], [], []
    for line_no, text in rows:
        fields = text.split()
        if len(fields) < 6:
            raise InputFormatError(
                path,
                line_no,
                "an ATOM row 'id name x y z type [subst_id subst_name charge]'",
                text.strip(),
            )
        coords.append([parse_float(f, path, line_no, "a coordinate in Angstrom") for f in fields[2:5]])
        types.append(fields[5])
        symbols.append(_element(fields[1], fields[5], path, line_no))
        charges.append(parse_float(fields[8], path, line_no, "a partial charge") if len(fields) > 8 else 0.0)
    return tuple(symbols), tuple(types), np.array(coords), charges


def _element(name: str, atom_type: str, path: Path, line_no: int) -> str:
    candidates = [atom_type.split(".")[0]] if "." in atom_type else []
    letters = "".join(ch for ch in name if ch.isalpha())
    candidates += [letters, letters[:1]]
    for candidate in candidates:
        try:
            return elements.normalize_symbol(candidate)
        except KeyError:
            continue
    raise InputFormatError(path, line_no, "an atom name or Sybyl type that names an element", f"{name} {atom_type}")


def _read_bonds(rows: list[tuple[int, str]], n_bonds: int, n_atoms: int, path: Path, start: int):
    if len(rows) != n_bonds:
        where = rows[-1][0] if rows else start + 1
        raise InputFormatError(path, where, f"{n_bonds} BOND rows as the counts line says", f"{len(rows)}")
    bonds, types = [], []
    for line_no, text in rows:
        fields = text.split()
        if len(fields) < 4 or fields[3].lower() not in BOND_ORDERS:
            raise InputFormatError(
                path,
                line_no,
                f"a BOND row 'id a1 a2 type' with type in {sorted(BOND_ORDERS)}",
                text.strip(),
            )
        i, j = (parse_int(f, path, line_no, "an atom id") for f in fields[1:3])
        if not (1 <= i <= n_atoms and 1 <= j <= n_atoms) or i == j:
            raise InputFormatError(path, line_no, f"two different atom ids in 1..{n_atoms}", text.strip())
        bond_type = fields[3].lower()
        bonds.append(Bond(i - 1, j - 1, BOND_ORDERS[bond_type]))
        types.append(bond_type)
    return tuple(bonds), tuple(types)
