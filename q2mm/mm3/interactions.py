"""Every MM3* interaction kind as a function of its own atoms only (pure JAX, kcal/mol).

One definition per kind serves twice: ``q2mm.mm3.engine`` sums it over a structure (the
energy) and ``q2mm.mm3.hessian`` differentiates it twice on its few atoms (the Hessian), so
the energy and its Hessian cannot drift apart.

A valence kind's ``local(xl, *params)`` takes one interaction's working coordinates
``xl (arity, 3)`` (hydrogens reduced, see ``terms.reduce_hydrogens``) and its parameters;
``params(p_ext, topo, factor)`` gathers those parameters for every (padded) interaction of a
structure from ``p_ext`` (the parameter vector with a trailing 0 for empty slots).
Nonbonded pairs (``pair_energies``) take the nuclear and the working difference vectors of
the pair, the only geometry they depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jax.numpy as jnp

import q2mm.jaxconfig  # noqa: F401
from q2mm.mm3 import nonbonded, terms
from q2mm.mm3.charges import bond_dipole_charges
from q2mm.mm3.topology import Topology
from q2mm.model.termtable import ENERGY_TERMS  # noqa: F401  (re-exported)


def extend(p: jnp.ndarray) -> jnp.ndarray:
    """p with a trailing 0: the slot of every absent parameter."""
    return jnp.concatenate([p, jnp.zeros(1, p.dtype)])


def working_coordinates(x: jnp.ndarray, p_ext: jnp.ndarray, topo: Topology) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(xr, factor): hydrogens moved toward their parents by their `-6` reduction factors."""
    factor = 1.0 + p_ext[topo.vdw_p[:, 2]]
    return terms.reduce_hydrogens(x, topo.parent, factor), factor


def charges(p_ext: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """Partial charges (e) of one structure from formal charges and bond dipoles."""
    stretch = topo.stretch
    return bond_dipole_charges(topo.formal, stretch.atoms, p_ext[stretch.p[:, 2]], p_ext[stretch.p[:, 0]], stretch.mask)


class Slots(Protocol):
    """Where an interaction's parameters sit in the flat vector (``MM3Model.build``); -1 = none."""

    def ref(self, ref: Any) -> int: ...

    def r0(self, atoms: Sequence[int]) -> int: ...

    def theta0(self, atoms: Sequence[int]) -> int: ...


@dataclass(frozen=True)
class ValenceKind:
    """One valence interaction kind: the table entry of an energy term on the engine side.

    ``name`` is the kind of ``q2mm.mm3.assign`` (its `.fld` rows: ``q2mm.model.termtable``)
    and the ``Topology`` field; ``term`` the energy term it adds to (``ENERGY_TERMS``);
    ``arity`` atoms and ``width`` parameter slots per interaction; ``slots(interaction,
    where)`` the interaction's slots (``Slots``), which ``params`` gathers back.

    The energy is split in two: ``coords(xl, *params)`` gives the interaction's internal
    coordinates (bond lengths in A, angles in degrees, dihedrals in radians; only the hydrogen
    reduction factors among ``params`` enter them) and ``energy_q(q, *params)`` the energy of
    those coordinates. ``local`` is their composition; ``q2mm.mm3.hessian.hessian_dot`` uses
    the split to differentiate Hessian contractions with respect to parameters cheaply.
    """

    name: str
    term: str
    arity: int
    width: int
    slots: Callable[[Any, Slots], list[int]]
    coords: Callable[..., jnp.ndarray]
    energy_q: Callable[..., jnp.ndarray]
    params: Callable[[jnp.ndarray, Topology, jnp.ndarray], tuple]

    def local(self, xl: jnp.ndarray, *params) -> jnp.ndarray:
        """Energy (kcal/mol) of one interaction from its working coordinates ``xl (arity, 3)``."""
        return self.energy_q(self.coords(xl, *params), *params)


def _slots(p_ext: jnp.ndarray, topo: Topology, name: str, *columns: int) -> tuple[jnp.ndarray, ...]:
    slots = topo.interactions(name).p
    return tuple(p_ext[slots[:, c]] for c in columns)


def _bond(xl, f, i, j):
    return terms.bond_length(xl[i], xl[j], f[i], f[j])


def _one(value):
    return jnp.stack([value])


VALENCE = (
    ValenceKind(
        "stretch",
        "stretch",
        2,
        3,
        lambda it, at: [at.ref(it.refs[0]), at.ref(it.refs[1]), at.ref(it.refs[2]) if len(it.refs) > 2 else -1],
        lambda xl, f, r0, k: _one(_bond(xl, f, 0, 1)),
        lambda q, f, r0, k: terms.stretch(q[0], r0, k),
        lambda p, t, f: (f[t.stretch.atoms], *_slots(p, t, "stretch", 0, 1)),
    ),
    ValenceKind(
        "bend",
        "bend",
        3,
        2,
        lambda it, at: [at.ref(r) for r in it.refs[:2]],
        lambda xl, theta0, k: _one(terms.angle_deg(xl[0], xl[1], xl[2])),
        lambda q, theta0, k: terms.bend(q[0], theta0, k),
        lambda p, t, f: _slots(p, t, "bend", 0, 1),
    ),
    ValenceKind(
        "stretch_bend",
        "stretch_bend",
        3,
        4,
        lambda it, at: [at.ref(it.refs[0]), at.r0(it.atoms[:2]), at.r0(it.atoms[1:]), at.theta0(it.atoms)],
        lambda xl, f, ksb, r01, r02, theta0: jnp.stack(
            [_bond(xl, f, 0, 1), _bond(xl, f, 1, 2), terms.angle_deg(xl[0], xl[1], xl[2])]
        ),
        lambda q, f, ksb, r01, r02, theta0: terms.stretch_bend(q[0] - r01, q[1] - r02, q[2] - theta0, ksb),
        lambda p, t, f: (f[t.stretch_bend.atoms], *_slots(p, t, "stretch_bend", 0, 1, 2, 3)),
    ),
    ValenceKind(
        "bend_bend",
        "bend_bend",
        5,
        4,
        lambda it, at: [
            at.ref(it.refs[0]),
            at.ref(it.refs[1]),
            at.theta0((it.atoms[1], it.atoms[0], it.atoms[2])),
            at.theta0((it.atoms[3], it.atoms[0], it.atoms[4])),
        ],
        lambda xl, theta01, theta02, kbb: jnp.stack(
            [terms.angle_deg(xl[1], xl[0], xl[2]), terms.angle_deg(xl[3], xl[0], xl[4])]
        ),
        lambda q, theta01, theta02, kbb: terms.bend_bend(q[0] - theta01, q[1] - theta02, kbb),
        lambda p, t, f: (*_slots(p, t, "bend_bend", 2, 3), p[t.bend_bend.p[:, 0]] * p[t.bend_bend.p[:, 1]]),
    ),
    ValenceKind(
        "torsion",
        "torsion",
        4,
        6,
        lambda it, at: [at.ref(r) for r in it.refs] + [-1] * (6 - len(it.refs)),
        lambda xl, v: _one(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3])),
        lambda q, v: terms.torsion(q[0], v),
        lambda p, t, f: (p[t.torsion.p],),
    ),
    ValenceKind(
        "torsion_stretch",
        "torsion_stretch",
        4,
        2,
        lambda it, at: [at.ref(it.refs[0]), at.r0(it.atoms[1:3])],
        lambda xl, f, kts, r0_central: jnp.stack([terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3]), _bond(xl, f, 1, 2)]),
        lambda q, f, kts, r0_central: terms.torsion_stretch(q[0], q[1] - r0_central, kts),
        lambda p, t, f: (f[t.torsion_stretch.atoms], *_slots(p, t, "torsion_stretch", 0, 1)),
    ),
    ValenceKind(
        "improper",
        "out_of_plane",
        4,
        1,
        lambda it, at: [at.ref(it.refs[-1])],
        lambda xl, k: _one(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3])),
        lambda q, k: terms.out_of_plane(q[0], k),
        lambda p, t, f: _slots(p, t, "improper", 0),
    ),
)


# ---------------------------------------------------------------------------------------------
# nonbonded pairs
# ---------------------------------------------------------------------------------------------
def pair_params(p_ext: jnp.ndarray, topo: Topology, charges: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """(rv, eps, q_i q_j, mask) of every padded pair: combined per-atom values unless a
    special pair row overrides both."""
    i, j = topo.pair.atoms[:, 0], topo.pair.atoms[:, 1]
    radius, eps = p_ext[topo.vdw_p[:, 0]], p_ext[topo.vdw_p[:, 1]]
    over = topo.pair.p
    special = over[:, 0] < p_ext.shape[0] - 1
    rv = jnp.where(special, p_ext[over[:, 0]], radius[i] + radius[j])
    eps_ij = jnp.where(special, p_ext[over[:, 1]], jnp.sqrt(eps[i] * eps[j]))
    return rv, eps_ij, charges[i] * charges[j], topo.pair.mask


def pair_energies(d_nuclear, d_working, rv, eps, qq, mask) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(van der Waals, electrostatic) of pairs from their nuclear and working difference vectors.

    vdW: softcut(nuclear distance) x Buckingham(working distance); electrostatics on the
    working distance, dropped beyond the nuclear cutoff; both 0 where ``mask`` is False.
    """
    r_nuc = nonbonded.pair_distance(d_nuclear)
    r = nonbonded.pair_distance(d_working)
    vdw = nonbonded.softcut(r_nuc) * nonbonded.buckingham(r, rv, eps)
    inside = mask & (r_nuc <= nonbonded.ELECTROSTATIC_CUTOFF)
    return jnp.where(mask, vdw, 0.0), jnp.where(inside, nonbonded.coulomb(r, qq), 0.0)
