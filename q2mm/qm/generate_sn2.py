"""Generate the embedded F- + CH3F SN2 system at B3LYP/6-31+G(d) with PySCF and geomeTRIC.

    OMP_NUM_THREADS=1 python -m q2mm.qm.generate_sn2 --out q2mm/data/sn2

Writes, per structure, ``NAME.xyz`` (Angstrom; the comment line holds the energy in Hartree),
``NAME-hessian.npy`` (analytic Cartesian Hessian, Hartree/Bohr^2) and ``NAME-frequencies.txt``
(cm^-1, imaginary as negative), plus ``metadata.json`` with the level of theory, program
versions, energies, frequencies and the SHA-256 of every file written. The TS is searched with
geomeTRIC's transition-state optimizer from a D3h guess, starting from the analytic Hessian;
CH3F is minimized. Needs the ``qm`` extra (pyscf, geometric).
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from q2mm.errors import ConvergenceError
from q2mm.model import elements
from q2mm.model.units import BOHR_IN_ANGSTROM
from q2mm.qm.common import UNITS, structure_entry, write_metadata, write_structure_files

XC = "B3LYP"
BASIS = "6-31+G(d)"
PYSCF_BASIS = "6-31+g*"
CARTESIAN_D = True  # 6-31G(d) is defined with six Cartesian d functions, as Gaussian uses
GRID_LEVEL = 5
SCF_CONV_TOL = 1e-11
OPT_CONVERGENCE = "GAU_VERYTIGHT"

# Guesses (Angstrom): the F-C-F axis along z for the D3h TS.
TS_GUESS = (
    ("C", (0.0, 0.0, 0.0)),
    ("F", (0.0, 0.0, 1.85)),
    ("F", (0.0, 0.0, -1.85)),
    ("H", (1.076, 0.0, 0.0)),
    ("H", (-0.538, 0.931854, 0.0)),
    ("H", (-0.538, -0.931854, 0.0)),
)
CH3F_GUESS = (
    ("C", (0.0, 0.0, 0.0)),
    ("F", (0.0, 0.0, 1.39)),
    ("H", (1.033, 0.0, -0.365)),
    ("H", (-0.5165, 0.894604, -0.365)),
    ("H", (-0.5165, -0.894604, -0.365)),
)


@dataclass(frozen=True)
class Target:
    """One structure to generate: file stem, charge, guess geometry, and whether it is a TS."""

    name: str
    title: str
    charge: int
    guess: tuple[tuple[str, tuple[float, float, float]], ...]
    transition_state: bool
    atom_types: tuple[str, ...]
    bonds: tuple[tuple[int, int, int], ...]  # 0-based atoms and MacroModel bond order


# MM3 atom types and bonds: the TS carbon keeps its C3 type with both partial C-F bonds, so the
# `F0-C3-F0` substructure of sn2.fld matches it; CH3F uses standard MM3 rows only.
TARGETS = (
    Target(
        "sn2-ts",
        "F- + CH3F SN2 transition state (D3h)",
        -1,
        TS_GUESS,
        True,
        ("C3", "F0", "F0", "H1", "H1", "H1"),
        ((0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1), (0, 5, 1)),
    ),
    Target(
        "ch3f",
        "fluoromethane",
        0,
        CH3F_GUESS,
        False,
        ("C3", "F0", "H1", "H1", "H1"),
        ((0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1)),
    ),
)


@dataclass(frozen=True)
class Result:
    """A converged structure: symbols, coordinates (Angstrom), energy, Hessian, frequencies."""

    target: Target
    symbols: tuple[str, ...]
    coords: np.ndarray
    energy: float
    hessian: np.ndarray
    frequencies: np.ndarray
    optimizer_cycles: int


def _scf(mol):
    """A converged B3LYP calculation on ``mol``."""
    from pyscf import dft

    mf = dft.RKS(mol)
    mf.xc = XC
    mf.grids.level = GRID_LEVEL
    mf.conv_tol = SCF_CONV_TOL
    mf.kernel()
    if not mf.converged:
        raise ConvergenceError(f"SCF did not converge for {mol.atom}")
    return mf


def _molecule(atoms, charge: int):
    from pyscf import gto

    return gto.M(atom=list(atoms), charge=charge, basis=PYSCF_BASIS, cart=CARTESIAN_D, unit="Angstrom", verbose=3)


def _optimize(target: Target):
    """Run geomeTRIC (TS search or minimization); return the optimized pyscf Mole and cycle count."""
    from pyscf.geomopt.geometric_solver import GeometryOptimizer

    mf = _scf(_molecule(target.guess, target.charge))
    optimizer = GeometryOptimizer(mf)
    optimizer.params = {"convergence_set": OPT_CONVERGENCE}
    if target.transition_state:
        optimizer.params.update({"transition": True, "hessian": True})
    cycles = []
    optimizer.callback = lambda env: cycles.append(1)
    optimizer.kernel()
    if not optimizer.converged:
        raise ConvergenceError(f"geomeTRIC did not converge for {target.name}")
    return optimizer.mol, len(cycles)


def _pyscf_frequencies(mol, hessian_blocks: np.ndarray, masses: np.ndarray) -> np.ndarray:
    from pyscf.hessian import thermo

    analysis = thermo.harmonic_analysis(mol, hessian_blocks, imaginary_freq=False, mass=masses)
    return np.sort(np.asarray(analysis["freq_wavenumber"], dtype=np.float64))


def compute(target: Target) -> Result:
    """Optimize ``target``, then compute its energy, analytic Hessian and frequencies."""
    mol, cycles = _optimize(target)
    mf = _scf(mol)
    blocks = mf.Hessian().kernel()
    natm = mol.natm
    hessian = blocks.transpose(0, 2, 1, 3).reshape(3 * natm, 3 * natm)
    symbols = tuple(elements.normalize_symbol(mol.atom_symbol(i)) for i in range(natm))
    masses = np.array([elements.mass(s) for s in symbols])
    frequencies = _pyscf_frequencies(mol, blocks, masses)
    n_imaginary = int((frequencies < 0).sum())
    expected = 1 if target.transition_state else 0
    if n_imaginary != expected:
        raise ConvergenceError(f"{target.name}: {n_imaginary} imaginary modes, expected {expected}: {frequencies}")
    coords = mol.atom_coords(unit="Bohr") * BOHR_IN_ANGSTROM
    return Result(target, symbols, coords, float(mf.e_tot), 0.5 * (hessian + hessian.T), frequencies, cycles)


def write_result(out: Path, result: Result) -> dict:
    """Write one structure's files; return its metadata entry (file names and hashes)."""
    t = result.target
    comment = f"{t.title}; E = {result.energy:.12f} Hartree; {XC}/{BASIS}"
    files = write_structure_files(
        out, t.name, result.symbols, result.coords, result.hessian, result.frequencies, comment, f"{XC}/{BASIS}, PySCF"
    )
    return structure_entry(
        t.title,
        t.charge,
        t.transition_state,
        result.symbols,
        t.atom_types,
        [list(bond) for bond in t.bonds],
        result.energy,
        result.frequencies,
        int((result.frequencies < 0).sum()),
        files,
        optimizer_cycles=result.optimizer_cycles,
    )


def program_versions() -> dict[str, str]:
    import geometric
    import pyscf

    return {
        "pyscf": pyscf.__version__,
        "geometric": geometric.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def level_of_theory() -> dict:
    return {
        "method": "RKS",
        "xc": XC,
        "xc_note": "PySCF B3LYP (VWN-RPA correlation, as Gaussian's B3LYP)",
        "basis": BASIS,
        "cartesian_d": CARTESIAN_D,
        "dft_grid_level": GRID_LEVEL,
        "scf_conv_tol": SCF_CONV_TOL,
        "hessian": "analytic (PySCF)",
        "optimizer": f"geomeTRIC ({OPT_CONVERGENCE}); TS search with transition=True from the analytic Hessian",
        "masses": "monoisotopic (q2mm.model.elements)",
    }


def generate(out: Path, targets=TARGETS) -> dict:
    """Generate every target into ``out`` and write ``metadata.json``; return the metadata."""
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "metadata.json"
    structures = json.loads(previous.read_text())["structures"] if previous.exists() else {}
    structures.update({t.name: write_result(out, compute(t)) for t in targets})
    metadata = {
        "system": "sn2",
        "description": "F- + CH3F -> FCH3 + F- identity SN2: D3h transition state and CH3F",
        "generator": "python -m q2mm.qm.generate_sn2",
        "level_of_theory": level_of_theory(),
        "programs": program_versions(),
        "units": UNITS,
        "structures": structures,
    }
    write_metadata(out, metadata)
    return metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the generated files")
    parser.add_argument("--only", choices=[t.name for t in TARGETS], help="generate one structure")
    args = parser.parse_args(argv)
    targets = tuple(t for t in TARGETS if args.only in (None, t.name))
    metadata = generate(args.out, targets)
    for name, entry in metadata["structures"].items():
        print(f"{name}: E = {entry['energy_hartree']:.10f} Eh, lowest frequencies {entry['frequencies_cm1'][:2]}")


if __name__ == "__main__":
    main()
