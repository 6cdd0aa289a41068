"""Generate the embedded Pd(eta3-allyl) amination set at GFN2-xTB (tblite) with geomeTRIC.

    OMP_NUM_THREADS=1 python -m q2mm.qm.generate_pd_allyl --out q2mm/data/pd-allyl-xtb

Structures: the ground state [Pd(eta3-C3H5)(PH3)2]+ (minimized) and the transition state of
NH3 attacking a terminal allyl carbon anti to Pd, [Pd(C3H5)(PH3)2(NH3)]+ (a constrained
C...N scan, then geomeTRIC's TS search from its highest point). Hessians are central finite
differences of the analytic xTB gradients (Hartree/Bohr^2). Writes per structure
``NAME.xyz``, ``NAME-hessian.npy``, ``NAME-frequencies.txt`` and ``metadata.json`` (method,
versions, energies, frequencies, MM3 atom types and bonds, SHA-256 of every file). Needs the
``qm`` extra (tblite, geometric).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.errors import ConvergenceError
from q2mm.model import elements
from q2mm.model.molecule import Bond, Molecule
from q2mm.qm.common import UNITS, fd_hessian_raw, structure_entry, symmetrized, write_metadata, write_structure_files
from q2mm.reference.vibrations import frequencies

METHOD = "GFN2-xTB"
CHARGE = 1
ACCURACY = 0.01  # tblite SCC accuracy (1.0 is its default; tighter for finite differences)
FD_STEP_BOHR = 0.005
OPT_CONVERGENCE = "GAU_TIGHT"
SCAN_CONVERGENCE = "GAU"  # constrained scan points: the flat NH3/PH3 rotations converge slowly
SCAN_MAXITER = 200
SCAN_DISTANCES = (2.6, 2.4, 2.2, 2.0, 1.9, 1.8, 1.7, 1.6)  # C...N, Angstrom

# Pd at the origin, the P atoms trans to the allyl termini, the allyl above (+y).
CORE = (
    ("Pd", (0.0, 0.0, 0.0)),
    ("P", (-1.65, -1.60, 0.0)),
    ("P", (1.65, -1.60, 0.0)),
    ("C", (-1.30, 1.80, -0.25)),  # terminal allyl carbon attacked in the TS (atom 4)
    ("C", (0.0, 2.25, 0.25)),
    ("C", (1.30, 1.80, -0.25)),
    ("H", (-2.20, 1.35, 0.15)),
    ("H", (-1.35, 2.30, -1.20)),
    ("H", (0.0, 2.45, 1.32)),
    ("H", (2.20, 1.35, 0.15)),
    ("H", (1.35, 2.30, -1.20)),
)
PH3_DIRECTIONS = ((-0.5, -0.5, 0.75), (-0.5, -0.5, -0.75), (0.3, -1.0, 0.0))
P_H = 1.42
ATTACKED_C = 3  # 0-based
PD_FORMAL_CHARGE = 1  # MacroModel type 201 (Pd) carries +1 in the Q2MM atom.typ
N_H = 1.02


@dataclass(frozen=True)
class Structure:
    """A converged structure: symbols, coordinates (Angstrom), energy, Hessian, frequencies."""

    name: str
    title: str
    transition_state: bool
    symbols: tuple[str, ...]
    coords: np.ndarray
    energy: float
    hessian: np.ndarray
    frequencies: np.ndarray
    bonds: tuple[Bond, ...]
    atom_types: tuple[str, ...]


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def ground_state_guess() -> tuple[tuple[str, ...], np.ndarray]:
    symbols = [s for s, _ in CORE]
    coords = [np.array(x) for _, x in CORE]
    for p, sign in ((1, -1.0), (2, 1.0)):
        for d in PH3_DIRECTIONS:
            symbols.append("H")
            coords.append(coords[p] + P_H * _unit((sign * -d[0], d[1], d[2])))
    return tuple(symbols), np.array(coords)


def attack_guess(symbols, coords: np.ndarray, distance: float = 2.8) -> tuple[tuple[str, ...], np.ndarray]:
    """The ground state with NH3 placed anti to Pd at ``distance`` from the terminal carbon."""
    carbon, pd = coords[ATTACKED_C], coords[0]
    plane = np.cross(coords[5] - coords[3], coords[4] - coords[3])
    away = _unit(carbon - pd)
    normal = _unit(plane) * np.sign(np.dot(plane, away))
    axis = _unit(away + normal)
    nitrogen = carbon + distance * axis
    side = _unit(np.cross(axis, [0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.cross(axis, [1.0, 0.0, 0.0]))
    other = np.cross(axis, side)
    hydrogens = [
        nitrogen + N_H * _unit(0.33 * axis + 0.94 * (np.cos(a) * side + np.sin(a) * other))
        for a in (0.0, 2.0 * np.pi / 3.0, 4.0 * np.pi / 3.0)
    ]
    return tuple(symbols) + ("N", "H", "H", "H"), np.vstack([coords, nitrogen, *hydrogens])


class XtbPotential:
    """GFN2-xTB energy and gradient (Hartree, Hartree/Bohr) of one composition via tblite."""

    def __init__(self, symbols, charge: int = CHARGE) -> None:
        self.numbers = np.array([elements.ATOMIC_NUMBER[s.upper()] for s in symbols])
        self.charge = charge
        self.evaluations = 0

    def __call__(self, coords_bohr: np.ndarray) -> tuple[float, np.ndarray]:
        from tblite.interface import Calculator

        calc = Calculator(METHOD, self.numbers, np.asarray(coords_bohr).reshape(-1, 3), charge=self.charge)
        calc.set("accuracy", ACCURACY)
        calc.set("verbosity", 0)
        result = calc.singlepoint()
        self.evaluations += 1
        return float(result.get("energy")), np.asarray(result.get("gradient")).ravel()


def _engine(symbols, coords_ang: np.ndarray, potential: XtbPotential):
    import geometric.engine
    import geometric.molecule

    class XtbEngine(geometric.engine.Engine):
        def calc_new(self, coords, dirname):
            energy, gradient = potential(coords)
            return {"energy": energy, "gradient": gradient}

    molecule = geometric.molecule.Molecule()
    molecule.elem = list(symbols)
    molecule.xyzs = [np.array(coords_ang)]
    return XtbEngine(molecule)


def optimize(
    symbols,
    coords_ang: np.ndarray,
    potential: XtbPotential,
    *,
    transition: bool = False,
    constraint: str | None = None,
    convergence: str = OPT_CONVERGENCE,
    maxiter: int = 300,
) -> tuple[np.ndarray, float]:
    """geomeTRIC minimization, constrained minimization or TS search; final coords (A) and energy."""
    import geometric.optimize

    with tempfile.TemporaryDirectory() as tmp:
        options = {
            "customengine": _engine(symbols, coords_ang, potential),
            "input": str(Path(tmp) / "job"),
            "convergence_set": convergence,
            "maxiter": maxiter,
        }
        if constraint:
            (Path(tmp) / "constraints.txt").write_text(constraint)
            options["constraints"] = str(Path(tmp) / "constraints.txt")
        if transition:
            options.update({"transition": True, "hessian": "first"})
        try:
            progress = geometric.optimize.run_optimizer(**options)
        except Exception as exc:  # geomeTRIC raises its own error types on failure
            raise ConvergenceError(
                f"geomeTRIC failed ({'TS search' if transition else 'minimization'}): {exc}"
            ) from exc
    return np.array(progress.xyzs[-1]), float(progress.qm_energies[-1])


def fd_hessian(potential: XtbPotential, coords_ang: np.ndarray, step: float = FD_STEP_BOHR) -> np.ndarray:
    """Central finite differences of analytic gradients, symmetrized (Hartree/Bohr^2)."""
    return symmetrized(fd_hessian_raw(lambda x: potential(x)[1], coords_ang, step))


def structure_bonds(symbols, coords_ang: np.ndarray, partial: tuple[int, int] | None) -> tuple[Bond, ...]:
    """Bonds from distances; Pd-ligand bonds and the forming C...N bond of a TS get order 0.

    Zero order is MacroModel's '.' (dative or partial) bond: the allyl carbons stay sp2 (C2)
    and the substructure pattern of pd-allyl.fld names these bonds with '.'.
    """
    from q2mm.mm3.graph import perceive_bonds

    found = {}
    for bond in perceive_bonds(symbols, coords_ang):
        key = (min(bond.i, bond.j), max(bond.i, bond.j))
        metal = "Pd" in (symbols[bond.i], symbols[bond.j])
        found[key] = Bond(key[0], key[1], 0.0 if metal else bond.order)
    if partial is not None:
        key = (min(partial), max(partial))
        found[key] = Bond(key[0], key[1], 0.0)
    return tuple(found[key] for key in sorted(found))


def mm3_types(symbols, coords_ang: np.ndarray, bonds) -> tuple[str, ...]:
    """MM3 types by element and bonding (q2mm.mm3.typing); Pd is the custom type 'Pd' (atom.typ 201)."""
    from q2mm.mm3.typing import guess_types

    molecule = Molecule("typing", tuple(symbols), coords_ang, bonds=tuple(bonds))
    names = guess_types(molecule).type_names
    return tuple("Pd" if s == "Pd" else name for s, name in zip(symbols, names))


def finish(
    name: str,
    title: str,
    symbols,
    coords: np.ndarray,
    energy: float,
    potential: XtbPotential,
    transition: bool,
    partial: tuple[int, int] | None,
) -> Structure:
    hessian = fd_hessian(potential, coords)
    wavenumbers = frequencies(hessian, np.array([elements.mass(s) for s in symbols]), coords)
    n_imaginary = int((wavenumbers < -30.0).sum())
    if n_imaginary != (1 if transition else 0):
        raise ConvergenceError(f"{name}: {n_imaginary} imaginary modes: {wavenumbers[:4]}")
    bonds = structure_bonds(symbols, coords, partial)
    return Structure(
        name,
        title,
        transition,
        tuple(symbols),
        coords,
        energy,
        hessian,
        wavenumbers,
        bonds,
        mm3_types(symbols, coords, bonds),
    )


def ground_state() -> Structure:
    symbols, guess = ground_state_guess()
    potential = XtbPotential(symbols)
    coords, energy = optimize(symbols, guess, potential)
    return finish("pd-allyl-gs", "[Pd(eta3-C3H5)(PH3)2]+ ground state", symbols, coords, energy, potential, False, None)


def scan_attack(
    symbols, coords: np.ndarray, potential: XtbPotential, nitrogen: int
) -> list[tuple[float, float | None, np.ndarray]]:
    """Constrained minimizations along the C...N distance: (distance, energy or None, coords).

    A point that does not converge in SCAN_MAXITER steps is recorded with energy None and
    the scan goes on from the previous geometry.
    """
    points: list[tuple[float, float | None, np.ndarray]] = []
    for distance in SCAN_DISTANCES:
        constraint = f"$set\ndistance {ATTACKED_C + 1} {nitrogen + 1} {distance}\n"
        try:
            coords, energy = optimize(
                symbols, coords, potential, constraint=constraint, convergence=SCAN_CONVERGENCE, maxiter=SCAN_MAXITER
            )
        except ConvergenceError:
            points.append((distance, None, coords))
            continue
        points.append((distance, energy, coords))
    return points


def attack_transition_state(gs: Structure) -> tuple[Structure, list]:
    symbols, coords = attack_guess(gs.symbols, gs.coords, SCAN_DISTANCES[0])
    nitrogen = len(gs.symbols)
    potential = XtbPotential(symbols)
    scan = scan_attack(symbols, coords, potential, nitrogen)
    converged = [(d, e, c) for d, e, c in scan if e is not None]
    if not converged:
        raise ConvergenceError("no point of the C...N scan converged")
    _, _, start = max(converged, key=lambda point: point[1])
    coords, energy = optimize(symbols, start, potential, transition=True)
    scan_record = [{"distance_angstrom": d, "energy_hartree": e} for d, e, _ in scan]
    return finish(
        "pd-allyl-nh3-ts",
        "NH3 attack on [Pd(eta3-C3H5)(PH3)2]+ (TS)",
        symbols,
        coords,
        energy,
        potential,
        True,
        (ATTACKED_C, nitrogen),
    ), scan_record


def write_structure(out: Path, s: Structure, n_imaginary: int | None = None, **extra: Any) -> dict:
    """The files of a GFN2-xTB structure and its metadata entry (``n_imaginary``: by default the
    frequencies below -30 cm^-1; ``extra``: a generator's own fields)."""
    comment = f"{s.title}; E = {s.energy:.10f} Hartree; {METHOD} (tblite)"
    files = write_structure_files(out, s.name, s.symbols, s.coords, s.hessian, s.frequencies, comment, METHOD)
    return structure_entry(
        s.title,
        CHARGE,
        s.transition_state,
        s.symbols,
        s.atom_types,
        [[b.i, b.j, b.order] for b in s.bonds],
        s.energy,
        s.frequencies,
        int((s.frequencies < -30.0).sum()) if n_imaginary is None else n_imaginary,
        files,
        formal_charges=formal_charges(s.symbols),
        **extra,
    )


def formal_charges(symbols) -> list[int]:
    """MacroModel formal charges: Pd +1 (its type 201 in the Q2MM atom.typ), 0 elsewhere."""
    return [PD_FORMAL_CHARGE if symbol == "Pd" else 0 for symbol in symbols]


def generate(out: Path) -> dict:
    """Generate both structures into ``out`` and write ``metadata.json``; return the metadata."""
    from importlib.metadata import version

    import geometric

    out.mkdir(parents=True, exist_ok=True)
    gs = ground_state()
    ts, scan = attack_transition_state(gs)
    metadata = {
        "system": "pd-allyl-xtb",
        "description": "Pd(eta3-allyl) amination with NH3, PH3 ligands: ground state and attack TS",
        "generator": "python -m q2mm.qm.generate_pd_allyl",
        "level_of_theory": {
            "method": METHOD,
            "program": "tblite",
            "scc_accuracy": ACCURACY,
            "charge": CHARGE,
            "hessian": f"central finite differences of analytic gradients, step {FD_STEP_BOHR} Bohr",
            "optimizer": f"geomeTRIC ({OPT_CONVERGENCE}); TS: constrained C...N scan ({SCAN_CONVERGENCE}, "
            f"{SCAN_MAXITER} steps at most per point), then transition=True from the highest "
            "converged point with a finite-difference first Hessian",
            "masses": "monoisotopic (q2mm.model.elements)",
        },
        "programs": {
            "tblite": version("tblite"),
            "geometric": geometric.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "units": UNITS,
        "structures": {s.name: write_structure(out, s) for s in (gs, ts)},
        "scan": scan,
    }
    write_metadata(out, metadata)
    return metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the generated files")
    metadata = generate(parser.parse_args(argv).out)
    for name, entry in metadata["structures"].items():
        print(f"{name}: E = {entry['energy_hartree']:.8f} Eh, lowest frequencies {entry['frequencies_cm1'][:2]}")


if __name__ == "__main__":
    main()
