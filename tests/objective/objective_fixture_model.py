"""Test fixture: a small, real force field satisfying the engine protocol, and QM loaders.

HarmonicModel: harmonic bonds and angles (MM3 units: k in mdyn/A and mdyn A/rad^2, times
143.88) and three-fold cosine torsions, parameters shared by element pattern. It implements
the engine contract (q2mm.objective.contract.Engine: p0, coords, atom_mask, topology with a
leading structure axis, pure-JAX energy(x, p, topo) in kcal/mol) and inherits its defaults. Not product code.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

import q2mm.jaxconfig  # noqa: F401  (float64)
from q2mm.model.forcefield import ParamRef
from q2mm.model.molecule import Bond, Molecule
from q2mm.model.units import BOHR_IN_ANGSTROM
from q2mm.objective.contract import Engine
from q2mm.reference.geometry import angle_values, angles_from_bonds, torsions_from_bonds

MDYN_A = 143.88
# padded interactions point at four fixed, non-degenerate ghost points appended to x
GHOST = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [1.5, 1.0, 0.0], [2.4, 1.2, 0.9]]) + 50.0


def _key(elements, idx):
    names = [elements[i] for i in idx]
    return "-".join(min(names, names[::-1]))


class HarmonicModel(Engine):
    """Bonds + angles + V3 torsions, parameters per element pattern, padded over structures."""

    def __init__(
        self,
        molecules: list[Molecule],
        bond_k=4.5,
        angle_k=0.5,
        torsion_v3=0.3,
        r0_shift=0.01,
        theta0_shift=1.0,
        skip_angles_above=170.0,
    ):
        self.n_max = max(m.n_atoms for m in molecules)
        terms = [self._terms(m, skip_angles_above) for m in molecules]
        self._params: dict[tuple[str, str, int], float] = {}
        starts = dict(bond=(r0_shift, bond_k), angle=(theta0_shift, angle_k))
        for mol, t in zip(molecules, terms):
            for kind, rows, values in (("bond", t[0], t[3]), ("angle", t[1], t[4])):
                for row, value in zip(rows, values):
                    key = (kind, _key(mol.elements, row))
                    self._params.setdefault((*key, 1), []).append(value)
                    self._params.setdefault((*key, 2), [starts[kind][1]])
            for row in t[2]:
                self._params.setdefault(("torsion", _key(mol.elements, row), 3), [torsion_v3])
        names = sorted(self._params)
        self.names = names
        self.p0 = np.array([np.mean(self._params[n]) + (starts[n[0]][0] if n[2] == 1 else 0.0) for n in names])
        self.param_refs = tuple(ParamRef(line=i + 1, field=n[2]) for i, n in enumerate(names))
        index = {n: i for i, n in enumerate(names)}
        self.coords = np.zeros((len(molecules), self.n_max, 3))
        self.atom_mask = np.zeros((len(molecules), self.n_max), dtype=bool)
        for s, mol in enumerate(molecules):
            self.coords[s, : mol.n_atoms] = mol.coords
            self.atom_mask[s, : mol.n_atoms] = True
        self.topology = self._pack(molecules, terms, index)

    @staticmethod
    def _terms(mol, skip_above):
        bonds = mol.bond_pairs()
        angles = angles_from_bonds(mol.n_atoms, bonds)
        angles = angles[angle_values(mol.coords, angles) < skip_above] if len(angles) else angles
        torsions = torsions_from_bonds(mol.n_atoms, bonds)
        lengths = np.linalg.norm(mol.coords[bonds[:, 1]] - mol.coords[bonds[:, 0]], axis=1)
        return bonds, angles, torsions, lengths, angle_values(mol.coords, angles)

    def _pack(self, molecules, terms, index):
        sizes = [max(len(t[k]) for t in terms) or 1 for k in range(3)]
        kinds = ("bond", "angle", "torsion")
        topo = {}
        for k, (kind, size) in enumerate(zip(kinds, sizes)):
            width = k + 2
            idx = np.tile(self.n_max + np.arange(width), (len(molecules), size, 1))
            par = np.zeros((len(molecules), size, 2), dtype=np.int64)
            mask = np.zeros((len(molecules), size))
            for s, (mol, t) in enumerate(zip(molecules, terms)):
                for r, row in enumerate(t[k]):
                    key = _key(mol.elements, row)
                    idx[s, r] = row
                    fields = (1, 2) if kind != "torsion" else (3, 3)
                    par[s, r] = [index[(kind, key, f)] for f in fields]
                    mask[s, r] = 1.0
            topo[kind] = {"idx": jnp.asarray(idx), "par": jnp.asarray(par), "mask": jnp.asarray(mask)}
        return topo

    @staticmethod
    def energy(x, p, topo):
        """Energy (kcal/mol) of one padded structure x (Nmax, 3) in Angstrom."""
        xe = jnp.concatenate([x, jnp.asarray(GHOST)], axis=0)
        b, a, t = topo["bond"], topo["angle"], topo["torsion"]
        r = _norm(xe[b["idx"][:, 1]] - xe[b["idx"][:, 0]])
        e_bond = 0.5 * MDYN_A * p[b["par"][:, 1]] * (r - p[b["par"][:, 0]]) ** 2
        u = xe[a["idx"][:, 0]] - xe[a["idx"][:, 1]]
        v = xe[a["idx"][:, 2]] - xe[a["idx"][:, 1]]
        theta = jnp.arctan2(_norm(jnp.cross(u, v)), jnp.sum(u * v, axis=-1))
        e_angle = 0.5 * MDYN_A * p[a["par"][:, 1]] * (theta - jnp.radians(p[a["par"][:, 0]])) ** 2
        b1 = xe[t["idx"][:, 1]] - xe[t["idx"][:, 0]]
        b2 = xe[t["idx"][:, 2]] - xe[t["idx"][:, 1]]
        b3 = xe[t["idx"][:, 3]] - xe[t["idx"][:, 2]]
        n1, n2 = jnp.cross(b1, b2), jnp.cross(b2, b3)
        omega = jnp.arctan2(_norm(b2) * jnp.sum(b1 * n2, axis=-1), jnp.sum(n1 * n2, axis=-1))
        e_tors = 0.5 * p[t["par"][:, 0]] * (1.0 + jnp.cos(3.0 * omega))
        return jnp.sum(b["mask"] * e_bond) + jnp.sum(a["mask"] * e_angle) + jnp.sum(t["mask"] * e_tors)


def _norm(v):
    sq = jnp.sum(v * v, axis=-1)
    return jnp.sqrt(jnp.where(sq > 0, sq, 1.0)) * (sq > 0)


# ----------------------------------------------------------------------------- QM loaders


def read_xyz(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    lines = Path(path).read_text().splitlines()
    n = int(lines[0])
    rows = [ln.split() for ln in lines[2 : 2 + n]]
    return tuple(r[0] for r in rows), np.array([[float(v) for v in r[1:4]] for r in rows])


def _energy_txt(path: Path) -> float:
    return float([ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")][0])


def sn2_molecules(sn2_dir: Path) -> list[Molecule]:
    """The sn2 TS (F-C-F bonds included) and CH3F with their QM Hessians and energies."""
    out = []
    for stem, bonds in (
        ("sn2-ts", [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]),
        ("ch3f", [(0, 1), (0, 2), (0, 3), (0, 4)]),
    ):
        elems, coords = read_xyz(sn2_dir / f"{stem}-optimized.xyz")
        out.append(
            Molecule(
                title=stem,
                elements=elems,
                coords=coords,
                bonds=tuple(Bond(i, j) for i, j in bonds),
                hessian=np.load(sn2_dir / f"{stem}-hessian.npy"),
                energy=_energy_txt(sn2_dir / f"{stem}-energy.txt"),
                source=str(sn2_dir),
            )
        )
    return out


def _fchk_array(lines: list[str], label: str) -> np.ndarray:
    start = next(i for i, ln in enumerate(lines) if ln.startswith(label))
    count = int(lines[start].split()[-1])
    values: list[float] = []
    i = start + 1
    while len(values) < count:
        values.extend(float(v) for v in lines[i].split())
        i += 1
    return np.array(values)


def ethane_molecules(ethane_dir: Path) -> list[Molecule]:
    """Ethane GS and eclipsed TS from the .fchk (Bohr -> A) with bonds from the .mol2."""
    from q2mm.model.elements import symbol_from_number

    out = []
    for stem in ("GS", "TS"):
        lines = (ethane_dir / f"{stem}.fchk").read_text().splitlines()
        z = _fchk_array(lines, "Atomic numbers").astype(int)
        coords = _fchk_array(lines, "Current cartesian coordinates").reshape(-1, 3) * BOHR_IN_ANGSTROM
        n3 = 3 * len(z)
        lower = _fchk_array(lines, "Cartesian Force Constants")
        hess = np.zeros((n3, n3))
        hess[np.tril_indices(n3)] = lower
        hess = hess + np.tril(hess, -1).T
        energy = float(next(ln for ln in lines if ln.startswith("Total Energy")).split()[-1])
        mol2 = (ethane_dir / f"{stem}.mol2").read_text().split("@<TRIPOS>BOND")[1].split("@<TRIPOS>")[0]
        bonds = tuple(Bond(int(r.split()[1]) - 1, int(r.split()[2]) - 1) for r in mol2.strip().splitlines())
        out.append(
            Molecule(
                title=f"ethane-{stem}",
                elements=tuple(symbol_from_number(int(a)) for a in z),
                coords=coords,
                bonds=bonds,
                hessian=hess,
                energy=energy,
                source=str(ethane_dir),
            )
        )
    return out
