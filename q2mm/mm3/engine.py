"""The compiled MM3* engine: every structure of a training set as padded JAX arrays.

``MM3Model.build(molecules, ff)`` assigns parameters (``q2mm.mm3.assign``) and turns every
interaction into index arrays: atom indices, indices into the flat parameter vector ``p``
(``p0`` = every `.fld` value used, identified by ``param_refs``), per-slot scales and masks,
with a leading structure axis padded to a common size. ``energy(x, p, topo)`` is pure JAX for
one structure (kcal/mol); ``jax.vmap(model.energy, in_axes=(0, None, 0))`` evaluates them all,
and changing ``p`` never recompiles. Padded entries point at real atoms of their structure
(so no gradient is NaN) and are switched off by masks.

Hydrogen bonds (MacroModel's 10-12 term) are not evaluated: ``hydrogen_bond`` is always 0.
MacroModel reports 0 for every rh-enamide structure, so there is no reference to check a
10-12 implementation against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import q2mm.jaxconfig  # noqa: F401
from q2mm.errors import ParameterAssignmentError
from q2mm.mm3 import fixed_geometry, interactions, nonbonded, terms
from q2mm.mm3.assign import Assignment
from q2mm.mm3.hessian import energy_gradient_hessian, hessian, hessian_dot
from q2mm.mm3.topology import Interactions, Topology
from q2mm.model.forcefield import ForceField, ParamRef
from q2mm.model.molecule import Molecule

TERMS = tuple(name for name, _label in interactions.ENERGY_TERMS)


# ---------------------------------------------------------------------------------------------
# building (numpy, once)
# ---------------------------------------------------------------------------------------------
class _ParamIndex:
    """Flat parameter vector: one slot per ParamRef in (line, field) order; -1 = constant zero."""

    def __init__(self, ff: ForceField, assignments: Sequence[Assignment]):
        self.ff = ff
        refs = sorted({r for a in assignments for items in a.interactions.values() for it in items for r in it.refs})
        self.slot: dict[ParamRef, int] = {r: n for n, r in enumerate(refs)}

    def __call__(self, ref: ParamRef | None) -> int:
        return -1 if ref is None else self.slot[ref]

    def finish(self) -> tuple[tuple[ParamRef, ...], np.ndarray]:
        refs = tuple(self.slot)
        return refs, np.array([self.ff.value(r) for r in refs], dtype=np.float64)


def _reduction_parents(mol: Molecule) -> np.ndarray:
    """Each atom's parent for the hydrogen reduction: the neighbour of highest bond order."""
    best: dict[int, tuple[float, int, int]] = {}
    for n, b in enumerate(mol.bonds):
        for a, other in ((b.i, b.j), (b.j, b.i)):
            key = (b.order, -n)
            if a not in best or key > best[a][0:2]:
                best[a] = (b.order, -n, other)
    return np.array([best[a][2] if a in best else a for a in range(mol.n_atoms)], dtype=np.int32)


def _angle_key(a: Sequence[int]) -> tuple[int, int, int]:
    return (a[0], a[1], a[2]) if a[0] <= a[2] else (a[2], a[1], a[0])


class _Built(NamedTuple):
    """One structure's arrays before padding: valence kinds and pairs by kind name, per-atom data."""

    rows: dict[str, Interactions]  # kind -> (atoms, p with -1 = absent, scale, mask all True)
    vdw_p: np.ndarray
    parent: np.ndarray
    formal: np.ndarray


def _rows(atoms, params, scale=None) -> Interactions:
    n = len(atoms)
    return Interactions(
        np.array(atoms, dtype=np.int32),
        np.array(params, dtype=np.int32),
        np.array(scale if scale is not None else [1.0] * n, dtype=np.float64),
        np.ones(n, dtype=bool),
    )


class _Where:
    """``interactions.Slots`` of one structure: a ref's slot, and the slots of the r0 of a bond
    and the theta0 of an angle as its stretch and bend interactions use them."""

    def __init__(self, asg: Assignment, pindex: _ParamIndex):
        self.ref = pindex
        self._r0 = {frozenset(it.atoms): pindex(it.refs[0]) for it in asg.of("stretch")}
        self._theta0 = {_angle_key(it.atoms): pindex(it.refs[0]) for it in asg.of("bend")}

    def r0(self, atoms: Sequence[int]) -> int:
        return self._r0[frozenset(atoms)]

    def theta0(self, atoms: Sequence[int]) -> int:
        return self._theta0[_angle_key(atoms)]


def _structure_arrays(mol: Molecule, asg: Assignment, pindex: _ParamIndex) -> _Built:
    """Index arrays of one structure (unpadded); parameter slots via ``pindex``."""
    where = _Where(asg, pindex)
    out = {
        kind.name: _rows(
            [it.atoms for it in asg.of(kind.name)],
            [kind.slots(it, where) for it in asg.of(kind.name)],
            [it.scale for it in asg.of(kind.name)],
        )
        for kind in interactions.VALENCE
    }
    return _vdw_arrays(mol, asg, pindex, out)


def _vdw_arrays(mol: Molecule, asg: Assignment, pindex: _ParamIndex, out: dict[str, Interactions]) -> _Built:
    vdw = sorted(asg.of("vdw"), key=lambda it: it.atoms[0])
    if [it.atoms[0] for it in vdw] != list(range(mol.n_atoms)):
        raise ParameterAssignmentError(f"{mol.title}: van der Waals parameters missing for some atoms")
    vdw_p = np.array(
        [[pindex(it.refs[0]), pindex(it.refs[1]), pindex(it.refs[2]) if len(it.refs) > 2 else -1] for it in vdw],
        dtype=np.int32,
    )
    pairs = nonbonded.nonbonded_pairs(mol.n_atoms, [(b.i, b.j) for b in mol.bonds])
    special = {frozenset(it.atoms): it for it in asg.interactions.get("vdw_pair", [])}
    override = [
        [pindex(special[frozenset(p)].refs[0]), pindex(special[frozenset(p)].refs[1])]
        if frozenset(p) in special
        else [-1, -1]
        for p in pairs.tolist()
    ]
    out["pair"] = _rows(pairs, np.array(override, dtype=np.int32).reshape(-1, 2))
    formal = mol.formal_charges or (0,) * mol.n_atoms
    return _Built(out, vdw_p, _reduction_parents(mol), np.array(formal, dtype=np.float64))


# kind -> (atoms per interaction, parameter slots per interaction)
_SHAPES = {kind.name: (kind.arity, kind.width) for kind in interactions.VALENCE} | {"pair": (2, 2)}


def _filler(built: _Built, arity: int) -> np.ndarray:
    """Atoms of a real interaction of the structure (non-degenerate geometry) to pad with."""
    for kind in ("stretch", "bend", "torsion", "bend_bend"):
        atoms = built.rows[kind].atoms
        if len(atoms) and atoms.shape[1] >= arity:
            return atoms[0, :arity]
    return np.arange(arity, dtype=np.int32)


def _pad_kind(per_structure: list[_Built], kind: str, zero_slot: int) -> Interactions:
    """One kind's rows of every structure, padded to the most any structure has. A kind no
    structure has gets zero rows, so XLA drops its work: sn2 (no torsions, out-of-plane rows
    or pairs) compiled its JaxLoss in 18.7 s instead of 42.5 s with one padded row each."""
    arity, width = _SHAPES[kind]
    size = max(len(s.rows[kind].atoms) for s in per_structure)
    atoms, params, scale, mask = [], [], [], []
    for s in per_structure:
        rows = s.rows[kind]
        n = len(rows.atoms)
        filler = np.tile(_filler(s, arity), (size - n, 1))
        atoms.append(np.vstack([rows.atoms.reshape(n, arity), filler]))
        slots = np.full((size, width), zero_slot, dtype=np.int32)
        slots[:n] = np.where(rows.p < 0, zero_slot, rows.p).reshape(n, width)
        params.append(slots)
        scale.append(np.concatenate([rows.scale, np.zeros(size - n)]))
        mask.append(np.arange(size) < n)
    return Interactions(*(jnp.asarray(np.stack(a)) for a in (atoms, params, scale, mask)))


def _pad(per_structure: list[_Built], zero_slot: int, n_max: int) -> Topology:
    """Stack the structures' arrays with a leading structure axis, padded to common sizes."""
    blocks = {kind: _pad_kind(per_structure, kind, zero_slot) for kind in _SHAPES}
    valence = tuple(blocks[kind.name] for kind in interactions.VALENCE)
    n_s = len(per_structure)
    vdw_p = np.full((n_s, n_max, 3), zero_slot, dtype=np.int32)
    parent = np.tile(np.arange(n_max, dtype=np.int32), (n_s, 1))
    formal = np.zeros((n_s, n_max))
    atom_mask = np.zeros((n_s, n_max), dtype=bool)
    for k, s in enumerate(per_structure):
        n = len(s.parent)
        vdw_p[k, :n] = np.where(s.vdw_p < 0, zero_slot, s.vdw_p)
        parent[k, :n], formal[k, :n], atom_mask[k, :n] = s.parent, s.formal, True
    return Topology(
        valence=valence,
        pair=blocks["pair"],
        vdw_p=jnp.asarray(vdw_p),
        parent=jnp.asarray(parent),
        formal=jnp.asarray(formal),
        pair_slot=jnp.asarray(_pair_slots(per_structure, n_max, blocks["pair"].atoms.shape[1])),
        atom_mask=jnp.asarray(atom_mask),
    )


def _pair_slots(per_structure: list[_Built], n_max: int, n_pairs: int) -> np.ndarray:
    """(S, Nmax, Nmax): row of pair (a, b) in the structure's pair list, ``n_pairs`` if none."""
    slots = np.full((len(per_structure), n_max, n_max), n_pairs, dtype=np.int32)
    for k, s in enumerate(per_structure):
        pairs = s.rows["pair"].atoms
        i, j = pairs[:, 0], pairs[:, 1]
        rows = np.arange(len(i), dtype=np.int32)
        slots[k, i, j] = rows
        slots[k, j, i] = rows
    return slots


# ---------------------------------------------------------------------------------------------
# energy (pure JAX, one structure)
# ---------------------------------------------------------------------------------------------
def atom_charges(p: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """Partial charges (e) of one structure from formal charges and bond dipoles."""
    return interactions.charges(interactions.extend(p), topo)


def energy_terms(x: jnp.ndarray, p: jnp.ndarray, topo: Topology) -> dict[str, jnp.ndarray]:
    """Every MM3* term of one structure in kcal/mol (x: (Nmax, 3) A, nuclear positions)."""
    p_ext = interactions.extend(p)
    xr, factor = interactions.working_coordinates(x, p_ext, topo)
    e = {}
    for kind in interactions.VALENCE:
        rows = kind.block(topo)
        local = jax.vmap(kind.local)(xr[rows.atoms], *kind.params(p_ext, topo, factor))
        e[kind.term] = jnp.sum(rows.weights() * local)
    i, j = topo.pair.atoms[:, 0], topo.pair.atoms[:, 1]
    params = interactions.pair_params(p_ext, topo, interactions.charges(p_ext, topo))
    vdw, ele = interactions.pair_energies(x[i] - x[j], xr[i] - xr[j], *params)
    e["vdw"], e["electrostatic"] = jnp.sum(vdw), jnp.sum(ele)
    e["hydrogen_bond"] = jnp.zeros((), x.dtype)
    return e


def energy(x: jnp.ndarray, p: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """Total MM3* energy of one structure in kcal/mol."""
    return sum(energy_terms(x, p, topo).values(), jnp.zeros((), x.dtype))


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
@dataclass
class MM3Model:
    """A training set compiled for MM3* evaluation (see module docstring)."""

    molecules: tuple[Molecule, ...]
    ff: ForceField
    assignments: tuple[Assignment, ...]
    param_refs: tuple[ParamRef, ...]
    p0: np.ndarray
    topology: Topology
    atom_mask: jnp.ndarray
    coords: jnp.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    _jitted: dict[str, Callable] = field(default_factory=dict, repr=False)
    has_charges: ClassVar[bool] = True  # the engine contract (q2mm.objective.contract.Engine)

    @classmethod
    def build(
        cls,
        molecules: Sequence[Molecule],
        ff: ForceField,
        allow_missing: bool = False,
        assignments: Sequence[Assignment] | None = None,
    ) -> MM3Model:
        """Assign parameters to every structure and build padded index arrays (no compilation)."""
        molecules = tuple(molecules)
        if assignments is None:
            assignments = [interactions.assign_parameters(m, ff, allow_missing=allow_missing) for m in molecules]
        pindex = _ParamIndex(ff, assignments)
        per_structure = [_structure_arrays(m, a, pindex) for m, a in zip(molecules, assignments)]
        refs, p0 = pindex.finish()
        n_max = max(m.n_atoms for m in molecules)
        topo = _pad(per_structure, len(refs), n_max)
        coords = np.zeros((len(molecules), n_max, 3))
        for k, m in enumerate(molecules):
            coords[k, : m.n_atoms] = m.coords
            coords[k, m.n_atoms :] = 1.0e3 + 10.0 * np.arange(n_max - m.n_atoms)[:, None] * np.array([1.0, 2.0, 3.0])
        return cls(molecules, ff, tuple(assignments), refs, p0, topo, topo.atom_mask, jnp.asarray(coords))

    # -- pure functions (static: usable under jit/vmap/grad) --------------------------------
    energy = staticmethod(energy)
    hessian = staticmethod(hessian)
    energy_gradient_hessian = staticmethod(energy_gradient_hessian)
    hessian_dot = staticmethod(hessian_dot)
    kinks = staticmethod(nonbonded.kinks)
    at_geometry = staticmethod(fixed_geometry.at_geometry)

    def reduction_slots(self) -> np.ndarray:
        """Indices into p of the hydrogen reduction factors the structures use."""
        slots = np.unique(np.asarray(self.topology.vdw_p)[..., 2])
        return slots[slots < len(self.p0)]

    energy_terms = staticmethod(energy_terms)
    atom_charges = staticmethod(atom_charges)

    # -- conveniences -------------------------------------------------------------------
    @property
    def n_structures(self) -> int:
        return len(self.molecules)

    def structure(self, k: int) -> Topology:
        """One structure's slice of the topology (0-based k)."""
        return jax.tree_util.tree_map(lambda a: a[k], self.topology)

    def compiled(self, name: str) -> Callable:
        """Jitted pure function by name: energy, gradient, hessian, terms, charges (one structure;
        args x, p, topo) or energy_all, gradient_all, hessian_all (vmapped over structures)."""
        if name not in self._jitted:
            e = energy
            grad = jax.grad(e)
            hess = hessian
            table = {
                "energy": jax.jit(e),
                "gradient": jax.jit(grad),
                "hessian": jax.jit(hess),
                "terms": jax.jit(energy_terms),
                "charges": jax.jit(atom_charges),
                "energy_all": jax.jit(jax.vmap(e, in_axes=(0, None, 0))),
                "gradient_all": jax.jit(jax.vmap(grad, in_axes=(0, None, 0))),
                "hessian_all": jax.jit(jax.vmap(hess, in_axes=(0, None, 0))),
            }
            self._jitted[name] = table[name]
        return self._jitted[name]

    def arguments(self, k: int, x=None, p=None) -> tuple[jnp.ndarray, jnp.ndarray, Topology]:
        """(x, p, topo) of structure k for the pure functions; x padded, defaults filled in."""
        x = self.coords[k] if x is None else _pad_coords(x, self.coords[k])
        return x, jnp.asarray(self.p0 if p is None else p), self.structure(k)

    def energy_of(self, k: int, x=None, p=None) -> float:
        """Total energy (kcal/mol) of structure k (0-based) at x (default: input geometry)."""
        return float(self._timed("energy", *self.arguments(k, x, p)))

    def gradient_of(self, k: int, x=None, p=None) -> np.ndarray:
        """Gradient (kcal/mol/A), shape (n_atoms, 3)."""
        n = self.molecules[k].n_atoms
        return np.asarray(self._timed("gradient", *self.arguments(k, x, p)))[:n]

    def hessian_of(self, k: int, x=None, p=None) -> np.ndarray:
        """Cartesian Hessian (kcal/mol/A^2), shape (3n, 3n)."""
        n = self.molecules[k].n_atoms
        h = np.asarray(self._timed("hessian", *self.arguments(k, x, p)))[:n, :, :n, :]
        return h.reshape(3 * n, 3 * n)

    def energies(self, x=None, p=None) -> np.ndarray:
        """Energies (kcal/mol) of all structures at once (x: (S, Nmax, 3), default input)."""
        x = self.coords if x is None else jnp.asarray(x)
        return np.asarray(self._timed("energy_all", x, jnp.asarray(self.p0 if p is None else p), self.topology))

    def charges(self, k: int, p=None) -> np.ndarray:
        n = self.molecules[k].n_atoms
        _, pp, topo = self.arguments(k, None, p)
        return np.asarray(self.compiled("charges")(pp, topo))[:n]

    def breakdown(self, k: int, x=None, p=None) -> dict[str, float]:
        """MacroModel-style per-term energies of structure k (0-based) in kJ/mol."""
        parts = self._timed("terms", *self.arguments(k, x, p))
        return {name: float(parts[name]) * terms.KJ_PER_KCAL for name in TERMS}

    def _timed(self, name: str, *args):
        fn = self.compiled(name)
        first = f"{name}_first_s" not in self.timings
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self.timings[f"{name}_first_s" if first else f"{name}_warm_s"] = time.perf_counter() - start
        return out


def _pad_coords(x, template: jnp.ndarray) -> jnp.ndarray:
    x = jnp.asarray(x, dtype=jnp.float64)
    if x.shape == template.shape:
        return x
    return template.at[: x.shape[0]].set(x)
