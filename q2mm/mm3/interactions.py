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

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp

import q2mm.jaxconfig  # noqa: F401
from q2mm.mm3 import nonbonded, terms
from q2mm.mm3.charges import bond_dipole_charges

Topology = dict


def extend(p: jnp.ndarray) -> jnp.ndarray:
    """p with a trailing 0: the slot of every absent parameter."""
    return jnp.concatenate([p, jnp.zeros(1, p.dtype)])


def working_coordinates(x: jnp.ndarray, p_ext: jnp.ndarray, topo: Topology) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(xr, factor): hydrogens moved toward their parents by their `-6` reduction factors."""
    factor = 1.0 + p_ext[topo["vdw_p"][:, 2]]
    return terms.reduce_hydrogens(x, topo["parent"], factor), factor


def charges(p_ext: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """Partial charges (e) of one structure from formal charges and bond dipoles."""
    stretch = topo["stretch_p"]
    return bond_dipole_charges(
        topo["formal"], topo["stretch_atoms"], p_ext[stretch[:, 2]], p_ext[stretch[:, 0]], topo["stretch_mask"]
    )


@dataclass(frozen=True)
class ValenceKind:
    """One valence interaction kind: topology prefix, energy term, atoms per interaction.

    The energy is split in two: ``coords(xl, *params)`` gives the interaction's internal
    coordinates (bond lengths in A, angles in degrees, dihedrals in radians; only the hydrogen
    reduction factors among ``params`` enter them) and ``energy_q(q, *params)`` the energy of
    those coordinates. ``local`` is their composition; ``q2mm.mm3.hessian.hessian_dot`` uses
    the split to differentiate Hessian contractions with respect to parameters cheaply.
    """

    name: str
    term: str
    arity: int
    coords: Callable[..., jnp.ndarray]
    energy_q: Callable[..., jnp.ndarray]
    params: Callable[[jnp.ndarray, Topology, jnp.ndarray], tuple]

    def local(self, xl: jnp.ndarray, *params) -> jnp.ndarray:
        """Energy (kcal/mol) of one interaction from its working coordinates ``xl (arity, 3)``."""
        return self.energy_q(self.coords(xl, *params), *params)


def _slots(p_ext: jnp.ndarray, topo: Topology, name: str, *columns: int) -> tuple[jnp.ndarray, ...]:
    return tuple(p_ext[topo[name + "_p"][:, c]] for c in columns)


def _bond(xl, f, i, j):
    return terms.bond_length(xl[i], xl[j], f[i], f[j])


def _one(value):
    return jnp.stack([value])


VALENCE = (
    ValenceKind(
        "stretch",
        "stretch",
        2,
        lambda xl, f, r0, k: _one(_bond(xl, f, 0, 1)),
        lambda q, f, r0, k: terms.stretch(q[0], r0, k),
        lambda p, t, f: (f[t["stretch_atoms"]], *_slots(p, t, "stretch", 0, 1)),
    ),
    ValenceKind(
        "bend",
        "bend",
        3,
        lambda xl, theta0, k: _one(terms.angle_deg(xl[0], xl[1], xl[2])),
        lambda q, theta0, k: terms.bend(q[0], theta0, k),
        lambda p, t, f: _slots(p, t, "bend", 0, 1),
    ),
    ValenceKind(
        "stretch_bend",
        "stretch_bend",
        3,
        lambda xl, f, ksb, r01, r02, theta0: jnp.stack(
            [_bond(xl, f, 0, 1), _bond(xl, f, 1, 2), terms.angle_deg(xl[0], xl[1], xl[2])]
        ),
        lambda q, f, ksb, r01, r02, theta0: terms.stretch_bend(q[0] - r01, q[1] - r02, q[2] - theta0, ksb),
        lambda p, t, f: (f[t["stretch_bend_atoms"]], *_slots(p, t, "stretch_bend", 0, 1, 2, 3)),
    ),
    ValenceKind(
        "bend_bend",
        "bend_bend",
        5,
        lambda xl, theta01, theta02, kbb: jnp.stack(
            [terms.angle_deg(xl[1], xl[0], xl[2]), terms.angle_deg(xl[3], xl[0], xl[4])]
        ),
        lambda q, theta01, theta02, kbb: terms.bend_bend(q[0] - theta01, q[1] - theta02, kbb),
        lambda p, t, f: (*_slots(p, t, "bend_bend", 2, 3), p[t["bend_bend_p"][:, 0]] * p[t["bend_bend_p"][:, 1]]),
    ),
    ValenceKind(
        "torsion",
        "torsion",
        4,
        lambda xl, v: _one(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3])),
        lambda q, v: terms.torsion(q[0], v),
        lambda p, t, f: (p[t["torsion_p"]],),
    ),
    ValenceKind(
        "torsion_stretch",
        "torsion_stretch",
        4,
        lambda xl, f, kts, r0_central: jnp.stack([terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3]), _bond(xl, f, 1, 2)]),
        lambda q, f, kts, r0_central: terms.torsion_stretch(q[0], q[1] - r0_central, kts),
        lambda p, t, f: (f[t["torsion_stretch_atoms"]], *_slots(p, t, "torsion_stretch", 0, 1)),
    ),
    ValenceKind(
        "improper",
        "out_of_plane",
        4,
        lambda xl, k: _one(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3])),
        lambda q, k: terms.out_of_plane(q[0], k),
        lambda p, t, f: _slots(p, t, "improper", 0),
    ),
)


def weights(topo: Topology, name: str) -> jnp.ndarray:
    """Per-interaction multiplier: the interaction's scale, 0 for padding."""
    return topo[name + "_mask"] * topo[name + "_scale"]


# ---------------------------------------------------------------------------------------------
# nonbonded pairs
# ---------------------------------------------------------------------------------------------
def pair_params(p_ext: jnp.ndarray, topo: Topology, charges: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """(rv, eps, q_i q_j, mask) of every padded pair: combined per-atom values unless a
    special pair row overrides both."""
    pairs = topo["pair_atoms"]
    i, j = pairs[:, 0], pairs[:, 1]
    radius, eps = p_ext[topo["vdw_p"][:, 0]], p_ext[topo["vdw_p"][:, 1]]
    over = topo["pair_p"]
    special = over[:, 0] < p_ext.shape[0] - 1
    rv = jnp.where(special, p_ext[over[:, 0]], radius[i] + radius[j])
    eps_ij = jnp.where(special, p_ext[over[:, 1]], jnp.sqrt(eps[i] * eps[j]))
    return rv, eps_ij, charges[i] * charges[j], topo["pair_mask"]


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
