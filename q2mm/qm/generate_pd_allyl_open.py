"""Generate the open Pd-allyl amination training set (``pd-allyl-open``) at GFN2-xTB (tblite).

    OMP_NUM_THREADS=1 nice -n 15 python -m q2mm.qm.generate_pd_allyl_open --out q2mm/data/pd-allyl-open
    python -m q2mm.qm.generate_pd_allyl_open --out DIR --only ts-ph3-allyl-nh3   # one structure
    python -m q2mm.qm.generate_pd_allyl_open --list                              # names, sizes

Transition states of outer-sphere amine attack on cationic [Pd(eta3-allyl)L2]+ (the C...N bond
forming anti to Pd) and eta3-allyl ground states, varied as a TSFF training set is: ligands
(PH3, PF3 and PMe3 for donor strength and size, the bidentate H2P(CH2)2PH2, the P,N chelate
H2P-CH2-CH=NH), allyls (parent, 1-methyl, 1,3-dimethyl), amines (NH3, MeNH2, Me2NH), and the
attacked terminus where the two termini differ, so competing TSs form groups.

Each guess is built from the NH3/PH3 TS of ``pd-allyl-xtb`` (its C3 is attacked, trans to P2)
by substituting atoms (PH3 -> PF3/PMe3, chelate bridges, methyls on the allyl and the amine).
A TS is found by a constrained minimization at the template's C...N distance, then geomeTRIC's
TS search (finite-difference first Hessian); if that fails, a short constrained C...N scan gives
the start of a second search; a structure with no TS is dropped and reported. Hessians are
central finite differences of analytic gradients at two steps: the first is shipped, the second
only checks the frequencies. Resumable: a structure whose files match ``metadata.json`` is
skipped. Needs the ``qm`` extra (tblite, geometric).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from q2mm.errors import ConvergenceError
from q2mm.model import elements
from q2mm.qm.common import UNITS, fd_hessian_raw, sha256, symmetrized
from q2mm.qm.generate_pd_allyl import (
    ACCURACY,
    CHARGE,
    METHOD,
    OPT_CONVERGENCE,
    Structure,
    XtbPotential,
    mm3_types,
    optimize,
    structure_bonds,
    write_structure,
)
from q2mm.reference.vibrations import eigenvalues_to_wavenumbers, vibrational_modes

SYSTEM = "pd-allyl-open"
FD_STEPS_BOHR = (0.005, 0.0025)  # the first is shipped; the second checks the frequencies
IMAGINARY_CM1 = -30.0  # below this a frequency counts as imaginary (FD noise on soft modes is smaller)
PRESET_MAXITER = 150
TS_MAXITER = 150
FALLBACK_SCAN = (2.3, 2.15, 2.0, 1.9, 1.8)  # C...N, Angstrom
TS_CN_RANGE = (1.6, 3.0)  # C...N (A) of an attack TS; early TSs (weak donors) reach ~2.7
TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "pd-allyl-xtb" / "pd-allyl-nh3-ts.xyz"
# Template indices (0-based) in pd-allyl-nh3-ts.xyz
PD, P1, P2, C_ATT, C_MID, C_FAR, N = 0, 1, 2, 3, 4, 5, 17
BOND = {
    ("P", "C"): 1.84,
    ("P", "F"): 1.57,
    ("C", "C"): 1.50,
    ("N", "C"): 1.47,
    ("C", "H"): 1.09,
    ("N", "H"): 1.02,
    ("P", "H"): 1.42,
}
RADII = {"H": 0.31, "C": 0.76, "N": 0.71, "P": 1.07, "Pd": 1.39}  # covalent, for the template's bonds


# ---------------------------------------------------------------- geometry building
class Builder:
    """Atoms, coordinates and a neighbour list edited by substitution; deleted atoms are dropped at the end."""

    def __init__(self, symbols, coords, bonds) -> None:
        self.symbols = list(symbols)
        self.coords = [np.asarray(x, dtype=np.float64) for x in coords]
        self.neighbours: dict[int, set[int]] = {i: set() for i in range(len(self.symbols))}
        for i, j in bonds:
            self.neighbours[i].add(j)
            self.neighbours[j].add(i)
        self.deleted: set[int] = set()

    def add(self, symbol: str, xyz, bonded_to: int) -> int:
        self.symbols.append(symbol)
        self.coords.append(np.asarray(xyz, dtype=np.float64))
        k = len(self.symbols) - 1
        self.neighbours[k] = {bonded_to}
        self.neighbours[bonded_to].add(k)
        return k

    def delete(self, k: int) -> None:
        self.deleted.add(k)
        for j in self.neighbours.pop(k):
            self.neighbours[j].discard(k)

    def hydrogens(self, k: int) -> list[int]:
        return sorted(j for j in self.neighbours[k] if self.symbols[j] == "H")

    def set_atom(self, k: int, symbol: str, parent: int) -> None:
        """Turn atom k (bonded to ``parent``) into ``symbol`` at its bond length along the old bond."""
        direction = _unit(self.coords[k] - self.coords[parent])
        self.symbols[k] = symbol
        self.coords[k] = self.coords[parent] + _bond(self.symbols[parent], symbol) * direction

    def methyl(self, h: int) -> int:
        """Replace hydrogen ``h`` by CH3 (staggered against the parent's other neighbours)."""
        (parent,) = self.neighbours[h]
        self.set_atom(h, "C", parent)
        axis = _unit(self.coords[h] - self.coords[parent])
        others = [j for j in self.neighbours[parent] if j != h]
        ref = self.coords[others[0]] - self.coords[parent] if others else _any_perpendicular(axis)
        u = _unit(ref - np.dot(ref, axis) * axis)
        v = np.cross(axis, u)
        for phi in (np.pi / 3.0, np.pi, 5.0 * np.pi / 3.0):
            self.add("H", self.coords[h] + 1.09 * (0.3338 * axis + 0.9426 * (np.cos(phi) * u + np.sin(phi) * v)), h)
        return h

    def complete(self, k: int, symbol: str, want: int, also: tuple[int, ...] = ()) -> None:
        """Add hydrogens to atom k until it has ``want`` neighbours (counting the atoms ``also``, e.g. Pd)."""
        length = _bond(self.symbols[k], symbol)
        vecs = [_unit(self.coords[j] - self.coords[k]) for j in (*self.neighbours[k], *also)]
        missing = want - len(vecs)
        if missing == 1:
            self.add(symbol, self.coords[k] - length * _unit(sum(vecs)), k)
        elif missing == 2 and len(vecs) == 2:
            bisector = -_unit(vecs[0] + vecs[1])
            normal = _unit(np.cross(vecs[0], vecs[1]))
            for sign in (1.0, -1.0):
                self.add(symbol, self.coords[k] + length * (0.5774 * bisector + sign * 0.8165 * normal), k)
        elif missing:
            raise ValueError(f"cannot complete atom {k} with {missing} hydrogens")

    def result(self) -> tuple[tuple[str, ...], np.ndarray, dict[int, int]]:
        keep = [k for k in range(len(self.symbols)) if k not in self.deleted]
        index = {old: new for new, old in enumerate(keep)}
        return tuple(self.symbols[k] for k in keep), np.array([self.coords[k] for k in keep]), index


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _any_perpendicular(axis: np.ndarray) -> np.ndarray:
    trial = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    return trial - np.dot(trial, axis) * axis


def _bond(a: str, b: str) -> float:
    return BOND.get((a, b)) or BOND[(b, a)]


def _template() -> Builder:
    lines = TEMPLATE.read_text().splitlines()
    n = int(lines[0])
    symbols = [line.split()[0] for line in lines[2 : 2 + n]]
    coords = np.array([[float(x) for x in line.split()[1:4]] for line in lines[2 : 2 + n]])
    bonds = []
    for i in range(n):
        for j in range(i + 1, n):
            limit = 1.2 * (RADII[symbols[i]] + RADII[symbols[j]])
            if "Pd" not in (symbols[i], symbols[j]) and np.linalg.norm(coords[i] - coords[j]) < limit:
                bonds.append((i, j))
    return Builder(symbols, coords, bonds)


def _syn_hydrogen(b: Builder, terminal: int) -> int:
    """The terminal allyl H syn to the central C-H: the one farther from the other terminus (anti H's face each other)."""
    other = b.coords[C_FAR if terminal == C_ATT else C_ATT]
    return max(b.hydrogens(terminal), key=lambda h: np.linalg.norm(b.coords[h] - other))


def _exposed_hydrogen(b: Builder, centre: int) -> int:
    """The H on ``centre`` farthest from every atom outside its own group."""
    group = {centre, *b.neighbours[centre]}
    others = [k for k in range(len(b.symbols)) if k not in group and k not in b.deleted]
    return max(b.hydrogens(centre), key=lambda h: min(np.linalg.norm(b.coords[h] - b.coords[k]) for k in others))


def _place_bridge(b: Builder, a1: int, a2: int, sym1: str, sym2: str, link: float) -> tuple[np.ndarray, np.ndarray]:
    """Two bridge atoms closing a five-membered chelate Pd-a1-X1-X2-a2, away from Pd."""
    p, q, pd = b.coords[a1], b.coords[a2], b.coords[PD]
    e = _unit(q - p)
    w = (p + q) / 2.0 - pd
    w = _unit(w - np.dot(w, e) * e)
    n = np.cross(e, w)
    r1, r2 = _bond(b.symbols[a1], sym1), _bond(b.symbols[a2], sym2)

    def residual(x):
        x1, x2 = x[:3], x[3:]
        return [
            np.linalg.norm(x1 - p) - r1,
            np.linalg.norm(x2 - q) - r2,
            np.linalg.norm(x1 - x2) - link,
            (np.linalg.norm(x1 - pd) - 2.95) * 0.3,
            (np.linalg.norm(x2 - pd) - 2.95) * 0.3,
        ]

    mid = (p + q) / 2.0 + 1.4 * w
    start = np.concatenate([mid - 0.75 * e + 0.3 * n, mid + 0.75 * e - 0.3 * n])
    x = least_squares(residual, start).x
    return x[:3], x[3:]


def _diphosphine(b: Builder) -> None:
    """(PH3)2 -> H2P-CH2-CH2-PH2: one H per P becomes a bridge CH2."""
    c1, c2 = _place_bridge(b, P1, P2, "C", "C", 1.53)
    for p in (P1, P2):
        for h in b.hydrogens(p):
            b.delete(h)
    k1, k2 = b.add("C", c1, P1), b.add("C", c2, P2)
    b.neighbours[k1].add(k2)
    b.neighbours[k2].add(k1)
    for k in (k1, k2):
        b.complete(k, "H", 4)
    for p in (P1, P2):
        b.complete(p, "H", 4, also=(PD,))


def _phosphinoimine(b: Builder, nitrogen_site: int) -> None:
    """(PH3)2 -> H2P-CH2-CH=NH with the imine N at ``nitrogen_site`` (P1 or P2)."""
    p_site = P2 if nitrogen_site == P1 else P1
    for h in b.hydrogens(nitrogen_site):
        b.delete(h)
    b.symbols[nitrogen_site] = "N"
    b.coords[nitrogen_site] = b.coords[PD] + 2.12 * _unit(b.coords[nitrogen_site] - b.coords[PD])
    c_p, c_n = _place_bridge(b, p_site, nitrogen_site, "C", "C", 1.50)
    for h in b.hydrogens(p_site):
        b.delete(h)
    k1, k2 = b.add("C", c_p, p_site), b.add("C", c_n, nitrogen_site)
    b.neighbours[k1].add(k2)
    b.neighbours[k2].add(k1)
    b.complete(k1, "H", 4)
    b.complete(k2, "H", 3)
    b.complete(p_site, "H", 4, also=(PD,))
    # imine N-H in the chelate plane, away from Pd and the ring carbon
    pd_dir, c_dir = _unit(b.coords[PD] - b.coords[nitrogen_site]), _unit(b.coords[k2] - b.coords[nitrogen_site])
    b.add("H", b.coords[nitrogen_site] - 1.02 * _unit(pd_dir + c_dir), nitrogen_site)


LIGANDS = ("ph3", "pf3ph3", "ph3pf3", "pme3ph3", "ph3pme3", "dppe", "pn", "np")
ALLYLS = ("allyl", "crotyl-sub", "crotyl-unsub", "dimethylallyl")
AMINES = ("nh3", "menh2", "me2nh")


def build(ligand: str, allyl: str, amine: str | None) -> tuple[tuple[str, ...], np.ndarray, tuple[int, int] | None]:
    """Guess geometry for one complex: ligand code (site P1 first, P2 trans to the attacked C),
    allyl ('crotyl-sub': methyl on the attacked carbon), amine (None: ground state, no amine).

    Returns symbols, coordinates (Angstrom) and the (attacked C, N) pair of a TS.
    """
    b = _template()
    # allyl methyls first: the syn H of each substituted terminus
    if allyl in ("crotyl-sub", "dimethylallyl"):
        b.methyl(_syn_hydrogen(b, C_ATT))
    if allyl in ("crotyl-unsub", "dimethylallyl"):
        b.methyl(_syn_hydrogen(b, C_FAR))
    if amine is None:
        for h in b.hydrogens(N):
            b.delete(h)
        b.delete(N)
    else:
        for _ in range({"nh3": 0, "menh2": 1, "me2nh": 2}[amine]):
            b.methyl(_exposed_hydrogen(b, N))
    donors = {
        "ph3": ("H", "H"),
        "pf3ph3": ("F", "H"),
        "ph3pf3": ("H", "F"),
        "pme3ph3": ("Me", "H"),
        "ph3pme3": ("H", "Me"),
    }
    if ligand in donors:
        for site, substituent in zip((P1, P2), donors[ligand]):
            for h in b.hydrogens(site):
                if substituent == "F":
                    b.set_atom(h, "F", site)
                elif substituent == "Me":
                    b.methyl(h)
    elif ligand == "dppe":
        _diphosphine(b)
    elif ligand in ("pn", "np"):
        _phosphinoimine(b, P1 if ligand == "pn" else P2)
    else:
        raise ValueError(f"unknown ligand {ligand!r}; known: {LIGANDS}")
    symbols, coords, index = b.result()
    return symbols, coords, (None if amine is None else (index[C_ATT], index[N]))


# ---------------------------------------------------------------- the set
@dataclass(frozen=True)
class Target:
    name: str
    title: str
    ligand: str
    allyl: str
    amine: str | None
    group: str | None = None  # competing TSs share a group (same reactants, different products)

    @property
    def transition_state(self) -> bool:
        return self.amine is not None


_LIG = {
    "ph3": "(PH3)2",
    "pf3ph3": "(PF3)(PH3), attack trans to PH3",
    "ph3pf3": "(PH3)(PF3), attack trans to PF3",
    "pme3ph3": "(PMe3)(PH3), attack trans to PH3",
    "ph3pme3": "(PH3)(PMe3), attack trans to PMe3",
    "dppe": "H2P(CH2)2PH2",
    "pn": "H2PCH2CH=NH, attack trans to P",
    "np": "H2PCH2CH=NH, attack trans to N",
}
_ALL = {
    "allyl": "C3H5",
    "crotyl-sub": "1-methylallyl, attack at C1 (branched)",
    "crotyl-unsub": "1-methylallyl, attack at C3 (linear)",
    "dimethylallyl": "1,3-dimethylallyl",
}
_AM = {"nh3": "NH3", "menh2": "MeNH2", "me2nh": "Me2NH"}


def _ts(ligand: str, allyl: str, amine: str, group: str | None = None) -> Target:
    name = f"ts-{ligand}-{allyl}-{amine}"
    return Target(name, f"{_AM[amine]} attack on [Pd({_ALL[allyl]}){_LIG[ligand]}]+ (TS)", ligand, allyl, amine, group)


def _gs(ligand: str, allyl: str) -> Target:
    return Target(
        f"gs-{ligand}-{allyl}",
        f"[Pd(eta3-{_ALL[allyl].split(',')[0]}){_LIG[ligand].split(',')[0]}]+ ground state",
        ligand,
        allyl,
        None,
    )


# Order = generation priority: competing pairs next to each other, small structures first.
TARGETS: tuple[Target, ...] = (
    _gs("ph3", "allyl"),
    _ts("ph3", "allyl", "nh3"),
    _ts("ph3", "crotyl-sub", "nh3", "ph3-crotyl-nh3"),
    _ts("ph3", "crotyl-unsub", "nh3", "ph3-crotyl-nh3"),
    _ts("ph3pf3", "allyl", "nh3", "pf3-allyl-nh3"),
    _ts("pf3ph3", "allyl", "nh3", "pf3-allyl-nh3"),
    _gs("pf3ph3", "allyl"),
    _ts("pn", "allyl", "nh3", "pn-allyl-nh3"),
    _ts("np", "allyl", "nh3", "pn-allyl-nh3"),
    _gs("pn", "allyl"),
    _ts("dppe", "allyl", "nh3"),
    _gs("dppe", "allyl"),
    _ts("ph3", "allyl", "menh2"),
    _ts("ph3", "allyl", "me2nh"),
    _ts("ph3pme3", "allyl", "nh3", "pme3-allyl-nh3"),
    _ts("pme3ph3", "allyl", "nh3", "pme3-allyl-nh3"),
    _ts("dppe", "crotyl-sub", "nh3", "dppe-crotyl-nh3"),
    _ts("dppe", "crotyl-unsub", "nh3", "dppe-crotyl-nh3"),
    _gs("ph3", "crotyl-sub"),
    _ts("ph3", "dimethylallyl", "nh3"),
    _ts("pn", "dimethylallyl", "nh3", "pn-dimethylallyl-nh3"),
    _ts("np", "dimethylallyl", "nh3", "pn-dimethylallyl-nh3"),
    _ts("ph3", "crotyl-sub", "menh2", "ph3-crotyl-menh2"),
    _ts("ph3", "crotyl-unsub", "menh2", "ph3-crotyl-menh2"),
    _ts("dppe", "allyl", "menh2"),
)


# ---------------------------------------------------------------- QM
@dataclass(frozen=True)
class Result:
    target: Target
    symbols: tuple[str, ...]
    coords: np.ndarray
    energy: float
    hessian: np.ndarray
    frequencies: np.ndarray
    checks: dict
    bonds: tuple
    atom_types: tuple[str, ...]


def _distance(coords, pair) -> float:
    return float(np.linalg.norm(coords[pair[0]] - coords[pair[1]]))


def search_ts(
    symbols, guess: np.ndarray, potential: XtbPotential, pair: tuple[int, int], log, verify
) -> tuple[np.ndarray, float, str, tuple]:
    """Preset at the template's C...N distance, then a TS search; a short C...N scan and a second
    search if the first fails, leaves the attack or ``verify`` (the Hessian checks) rejects it.

    Returns the TS coordinates, energy, the route taken and what ``verify`` returned.
    """
    constraint = lambda d: f"$set\ndistance {pair[0] + 1} {pair[1] + 1} {d:.3f}\n"  # noqa: E731
    d0 = _distance(guess, pair)
    coords, _ = optimize(
        symbols, guess, potential, constraint=constraint(d0), convergence="GAU", maxiter=PRESET_MAXITER
    )
    try:
        ts, energy = optimize(symbols, coords, potential, transition=True, maxiter=TS_MAXITER)
        if not TS_CN_RANGE[0] <= _distance(ts, pair) <= TS_CN_RANGE[1]:
            raise ConvergenceError(f"the TS search left the attack (C...N {_distance(ts, pair):.2f} A)")
        return ts, energy, f"preset C...N {d0:.3f} A, TS search", verify(ts)
    except ConvergenceError as exc:
        log(f"  first TS search rejected ({str(exc)[:100]}); scanning")
    points = []
    for d in FALLBACK_SCAN:
        try:
            coords, e = optimize(
                symbols, coords, potential, constraint=constraint(d), convergence="GAU", maxiter=PRESET_MAXITER
            )
            points.append((e, d, coords))
        except ConvergenceError:
            continue
    if not points:
        raise ConvergenceError("no point of the fallback C...N scan converged")
    _, d_best, start = max(points, key=lambda p: p[0])
    ts, energy = optimize(symbols, start, potential, transition=True, maxiter=TS_MAXITER)
    if not TS_CN_RANGE[0] <= _distance(ts, pair) <= TS_CN_RANGE[1]:
        raise ConvergenceError(f"TS search ended at C...N {_distance(ts, pair):.2f} A, not an attack TS")
    return ts, energy, f"preset, rejected search, scan {FALLBACK_SCAN} (highest {d_best} A), TS search", verify(ts)


def check_hessians(symbols, coords, potential, transition: bool, pair) -> tuple[np.ndarray, np.ndarray, dict]:
    """Hessians at both FD steps; symmetry, imaginary count, step agreement, C...N character of the TS mode."""
    masses = np.array([elements.mass(s) for s in symbols])
    raw = [fd_hessian_raw(lambda x: potential(x)[1], coords, step) for step in FD_STEPS_BOHR]
    asymmetry = float(np.max(np.abs(raw[0] - raw[0].T)) / np.max(np.abs(raw[0])))
    hessians = [symmetrized(h) for h in raw]
    values, vectors = zip(*(vibrational_modes(h, masses, coords) for h in hessians))
    freqs = [eigenvalues_to_wavenumbers(v) for v in values]
    n_imag = int((freqs[0] < IMAGINARY_CM1).sum())
    expected = 1 if transition else 0
    checks = {
        "fd_steps_bohr": list(FD_STEPS_BOHR),
        "max_relative_asymmetry": asymmetry,
        "max_frequency_difference_cm1": float(np.max(np.abs(freqs[0] - freqs[1]))),
        "n_imaginary": n_imag,
        "n_imaginary_other_step": int((freqs[1] < IMAGINARY_CM1).sum()),
    }
    if transition:
        mode = vectors[0][:, 0] / np.repeat(np.sqrt(masses), 3)
        mode = (mode / np.linalg.norm(mode)).reshape(-1, 3)
        i, j = pair
        e = _unit(coords[j] - coords[i])
        stretch = abs(np.dot(mode[j] - mode[i], e))
        # compare with every other bonded-distance change of the mode
        others = [
            abs(np.dot(mode[b] - mode[a], _unit(coords[b] - coords[a])))
            for a in range(len(symbols))
            for b in range(a + 1, len(symbols))
            if (a, b) != (min(pair), max(pair)) and np.linalg.norm(coords[a] - coords[b]) < 2.6
        ]
        checks["ts_mode_cn_stretch"] = float(stretch)
        checks["ts_mode_largest_other_stretch"] = float(max(others))
        checks["cn_distance_angstrom"] = _distance(coords, pair)
        if stretch < max(others):
            raise ConvergenceError(f"the imaginary mode is not the C...N stretch ({stretch:.3f} < {max(others):.3f})")
    if n_imag != expected or checks["n_imaginary_other_step"] != expected:
        raise ConvergenceError(f"{n_imag} imaginary modes (expected {expected}): {freqs[0][:3]}")
    return hessians[0], freqs[0], checks


def run_target(target: Target, log=print) -> tuple[Result, dict]:
    """Optimize one structure, compute and check its Hessians; returns the result and its timing."""
    start, clock = time.time(), time.process_time()
    symbols, guess, pair = build(target.ligand, target.allyl, target.amine)
    potential = XtbPotential(symbols, charge=CHARGE)

    def verify(coords):
        return check_hessians(symbols, coords, potential, target.transition_state, pair)

    if target.transition_state:
        assert pair is not None  # build() names the forming C...N pair of every TS
        coords, energy, route, (hessian, freqs, checks) = search_ts(symbols, guess, potential, pair, log, verify)
    else:
        coords, energy = optimize(symbols, guess, potential)
        route = f"minimization ({OPT_CONVERGENCE})"
        hessian, freqs, checks = verify(coords)
    bonds = structure_bonds(symbols, coords, pair)
    types = mm3_types(symbols, coords, bonds)
    timing = {
        "wall_s": round(time.time() - start, 1),
        "cpu_s": round(time.process_time() - clock, 1),
        "gradients_total": potential.evaluations,
        "route": route,
    }
    return Result(target, symbols, coords, energy, hessian, freqs, checks, bonds, types), timing


# ---------------------------------------------------------------- files
def write_result(out: Path, r: Result, timing: dict) -> dict:
    t = r.target
    s = Structure(
        t.name,
        t.title,
        t.transition_state,
        r.symbols,
        r.coords,
        r.energy,
        r.hessian,
        r.frequencies,
        r.bonds,
        r.atom_types,
    )
    extra = {"ligand": t.ligand, "allyl": t.allyl, "amine": t.amine, "group": t.group}
    return write_structure(out, s, r.checks["n_imaginary"], **extra, checks=r.checks, timing=timing)


def header() -> dict:
    from importlib.metadata import version

    import geometric

    return {
        "system": SYSTEM,
        "description": "Outer-sphere amine attack on cationic [Pd(eta3-allyl)L2]+: TSs and eta3-allyl ground states "
        "(GFN2-xTB, an open stand-in for a DFT TSFF training set)",
        "generator": "python -m q2mm.qm.generate_pd_allyl_open",
        "level_of_theory": {
            "method": METHOD,
            "program": "tblite",
            "scc_accuracy": ACCURACY,
            "charge": CHARGE,
            "hessian": f"central finite differences of analytic gradients, step {FD_STEPS_BOHR[0]} Bohr, symmetrized "
            f"(checked against step {FD_STEPS_BOHR[1]} Bohr)",
            "optimizer": f"geomeTRIC: minima {OPT_CONVERGENCE}; TS: constrained minimization at the template's C...N "
            f"distance (GAU), then transition=True ({OPT_CONVERGENCE}) with a finite-difference first "
            f"Hessian; fallback constrained scan {list(FALLBACK_SCAN)} A",
            "masses": "monoisotopic (q2mm.model.elements)",
            "imaginary_threshold_cm1": IMAGINARY_CM1,
        },
        "programs": {
            "tblite": version("tblite"),
            "geometric": geometric.__version__,
            "numpy": np.__version__,
            "scipy": version("scipy"),
            "python": platform.python_version(),
        },
        "units": UNITS,
        "structures": {},
        "dropped": {},
    }


@contextmanager
def locked_metadata(out: Path):
    """Read-modify-write of metadata.json under a file lock (parallel workers share it)."""
    lock = (out / ".metadata.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        path = out / "metadata.json"
        metadata = json.loads(path.read_text()) if path.is_file() else header()
        yield metadata
        order = [t.name for t in TARGETS]
        metadata["structures"] = {k: metadata["structures"][k] for k in sorted(metadata["structures"], key=order.index)}
        groups: dict[str, list[str]] = {}
        for name, entry in metadata["structures"].items():
            if entry.get("group"):
                groups.setdefault(entry["group"], []).append(name)
        metadata["groups"] = {g: names for g, names in groups.items() if len(names) > 1}
        metadata["pending"] = [
            t.name for t in TARGETS if t.name not in metadata["structures"] and t.name not in metadata["dropped"]
        ]
        path.write_text(json.dumps(metadata, indent=2) + "\n")
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def is_done(out: Path, name: str) -> bool:
    path = out / "metadata.json"
    if not path.is_file():
        return False
    entry = json.loads(path.read_text())["structures"].get(name)
    return bool(entry) and all((out / f).is_file() and sha256(out / f) == h for f, h in entry["files"].items())


def generate(
    out: Path, names: list[str] | None = None, shard: tuple[int, int] = (0, 1), retry_dropped: bool = False
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    chosen = [t for t in TARGETS if not names or t.name in names]
    chosen = [t for k, t in enumerate(chosen) if k % shard[1] == shard[0]]
    for k, target in enumerate(chosen, 1):
        if is_done(out, target.name):
            print(f"[{k}/{len(chosen)}] {target.name}: done, skipped", flush=True)
            continue
        meta = out / "metadata.json"
        if (
            not retry_dropped
            and not names
            and meta.is_file()
            and target.name in json.loads(meta.read_text()).get("dropped", {})
        ):
            print(f"[{k}/{len(chosen)}] {target.name}: dropped earlier, skipped", flush=True)
            continue
        print(f"[{k}/{len(chosen)}] {target.name} ({target.title}) ...", flush=True)
        try:
            result, timing = run_target(target, log=lambda m: print(m, flush=True))
        except (ConvergenceError, ValueError, np.linalg.LinAlgError) as exc:
            print(f"  DROPPED {target.name}: {exc}", flush=True)
            with locked_metadata(out) as metadata:
                metadata["dropped"][target.name] = str(exc)[:300]
            continue
        with locked_metadata(out) as metadata:
            metadata["structures"][target.name] = write_result(out, result, timing)
            metadata["dropped"].pop(target.name, None)
        c = result.checks
        print(
            f"  {len(result.symbols)} atoms, E = {result.energy:.8f} Eh, lowest {result.frequencies[:2].round(1)} cm^-1, "
            f"FD-step max diff {c['max_frequency_difference_cm1']:.2f} cm^-1, {timing['wall_s']} s "
            f"({timing['gradients_total']} gradients)",
            flush=True,
        )


def print_status(out: Path) -> None:
    """One line per planned structure: done (atoms, lowest frequency, CPU time), dropped (why) or pending."""
    if not (out / "metadata.json").is_file():
        print(f"{out}: nothing generated yet")
        return
    with locked_metadata(out) as metadata:  # also brings 'groups' and 'pending' up to date
        pass
    for t in TARGETS:
        entry, why = metadata["structures"].get(t.name), metadata["dropped"].get(t.name)
        if entry:
            state = (
                f"done     {len(entry['elements']):2d} atoms, lowest {entry['frequencies_cm1'][0]:8.1f} cm^-1, "
                f"{entry['timing']['cpu_s']:6.1f} s CPU"
            )
        else:
            state = f"dropped  {why}" if why else "pending"
        print(f"{t.name:30s} {state}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory for the generated files (resumable)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="generate only these structures (again if done)")
    parser.add_argument("--shard", default="0/1", help="I/N: this worker takes every N-th structure from I")
    parser.add_argument("--list", action="store_true", help="print the structures and their sizes")
    parser.add_argument("--status", action="store_true", help="print what --out holds (done, dropped, pending)")
    args = parser.parse_args(argv)
    if args.list:
        for t in TARGETS:
            symbols, _, _ = build(t.ligand, t.allyl, t.amine)
            print(f"{t.name:34s} {len(symbols):3d} atoms  {t.group or '':22s} {t.title}")
        return
    if args.out is None:
        parser.error("--out is required")
    if args.status:
        print_status(args.out)
        return
    if args.only:
        unknown = set(args.only) - {t.name for t in TARGETS}
        if unknown:
            parser.error(f"unknown structures {sorted(unknown)}; see --list")
        metadata = args.out / "metadata.json"
        if metadata.is_file():
            with locked_metadata(args.out) as m:
                for name in args.only:
                    m["structures"].pop(name, None)
    i, n = (int(x) for x in args.shard.split("/"))
    generate(args.out, args.only, (i, n))


if __name__ == "__main__":
    main()
