"""What every QM generator shares: finite-difference Hessians and the files of one structure.

A structure is written as ``NAME.xyz`` (Angstrom, 12 decimals), ``NAME-hessian.npy``
(Hartree/Bohr^2, Cartesian, not mass-weighted) and ``NAME-frequencies.txt`` (cm^-1,
imaginary negative); its ``metadata.json`` entry carries the common fields (``structure_entry``)
and the SHA-256 of each file, and the metadata file states ``UNITS``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.model.units import BOHR_IN_ANGSTROM

UNITS = {
    "coordinates": "Angstrom",
    "hessian": "Hartree/Bohr^2 (Cartesian)",
    "energy": "Hartree",
    "frequencies": "cm^-1",
}


def fd_hessian_raw(gradient: Callable[[np.ndarray], np.ndarray], coords_ang: np.ndarray, step: float) -> np.ndarray:
    """Central differences of analytic gradients (``gradient(x)``: x flat in Bohr, Hartree/Bohr),
    column k from +/- ``step`` Bohr along coordinate k; not symmetrized (Hartree/Bohr^2)."""
    x0 = np.asarray(coords_ang).ravel() / BOHR_IN_ANGSTROM
    hessian = np.empty((x0.size, x0.size))
    for k in range(x0.size):
        shift = np.zeros_like(x0)
        shift[k] = step
        hessian[:, k] = (gradient(x0 + shift) - gradient(x0 - shift)) / (2.0 * step)
    return hessian


def symmetrized(hessian: np.ndarray) -> np.ndarray:
    return 0.5 * (hessian + hessian.T)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_xyz(path: Path, symbols, coords: np.ndarray, comment: str) -> None:
    """An xyz file in Angstrom with 12 decimals."""
    rows = [f"{s:<2s} {x:18.12f} {y:18.12f} {z:18.12f}" for s, (x, y, z) in zip(symbols, coords)]
    path.write_text(f"{len(symbols)}\n{comment}\n" + "\n".join(rows) + "\n")


def write_structure_files(
    out: Path,
    name: str,
    symbols,
    coords: np.ndarray,
    hessian: np.ndarray,
    frequencies: np.ndarray,
    comment: str,
    method: str,
) -> dict[str, str]:
    """The three files of one structure (``comment``: the xyz title line; ``method`` named in the
    frequency file's header). Returns {file name: SHA-256}."""
    xyz, hess, freq = out / f"{name}.xyz", out / f"{name}-hessian.npy", out / f"{name}-frequencies.txt"
    write_xyz(xyz, symbols, coords, comment)
    np.save(hess, hessian)
    header = f"harmonic frequencies (cm^-1, imaginary negative) of {name}, {method}"
    np.savetxt(freq, frequencies, fmt="%.4f", header=header)
    return {path.name: sha256(path) for path in (xyz, hess, freq)}


def structure_entry(
    title: str,
    charge: int,
    transition_state: bool,
    symbols: Sequence[str],
    atom_types: Sequence[str],
    bonds: Sequence[Sequence[float]],
    energy: float,
    frequencies: np.ndarray,
    n_imaginary: int,
    files: dict[str, str],
    **extra: Any,
) -> dict[str, Any]:
    """The metadata.json entry of one structure (a singlet); ``extra``: the generator's own fields."""
    return {
        "title": title,
        "charge": charge,
        "multiplicity": 1,
        "transition_state": transition_state,
        "elements": list(symbols),
        "atom_types": list(atom_types),
        "bonds": bonds,
        "energy_hartree": energy,
        "frequencies_cm1": [round(float(f), 4) for f in frequencies],
        "n_imaginary": n_imaginary,
        **extra,
        "files": files,
    }


def write_metadata(out: Path, metadata: dict) -> None:
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
