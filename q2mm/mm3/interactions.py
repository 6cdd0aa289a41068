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

from dataclasses import dataclass
from typing import Callable

import q2mm.jaxconfig  # noqa: F401
import jax.numpy as jnp

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
    return bond_dipole_charges(topo["formal"], topo["stretch_atoms"], p_ext[stretch[:, 2]], p_ext[stretch[:, 0]],
                               topo["stretch_mask"])


@dataclass(frozen=True)
class ValenceKind:
    """One valence interaction kind: topology prefix, energy term, atoms per interaction."""

    name: str
    term: str
    arity: int
    local: Callable[..., jnp.ndarray]
    params: Callable[[jnp.ndarray, Topology, jnp.ndarray], tuple]


def _slots(p_ext: jnp.ndarray, topo: Topology, name: str, *columns: int) -> tuple[jnp.ndarray, ...]:
    return tuple(p_ext[topo[name + "_p"][:, c]] for c in columns)


def _stretch(xl, f, r0, k):
    return terms.stretch(terms.bond_length(xl[0], xl[1], f[0], f[1]), r0, k)


def _bend(xl, theta0, k):
    return terms.bend(terms.angle_deg(xl[0], xl[1], xl[2]), theta0, k)


def _stretch_bend(xl, f, ksb, r01, r02, theta0):
    dr1 = terms.bond_length(xl[0], xl[1], f[0], f[1]) - r01
    dr2 = terms.bond_length(xl[1], xl[2], f[1], f[2]) - r02
    return terms.stretch_bend(dr1, dr2, terms.angle_deg(xl[0], xl[1], xl[2]) - theta0, ksb)


def _bend_bend(xl, theta01, theta02, kbb):
    d1 = terms.angle_deg(xl[1], xl[0], xl[2]) - theta01
    d2 = terms.angle_deg(xl[3], xl[0], xl[4]) - theta02
    return terms.bend_bend(d1, d2, kbb)


def _torsion(xl, v):
    return terms.torsion(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3]), v)


def _torsion_stretch(xl, f, kts, r0_central):
    dr = terms.bond_length(xl[1], xl[2], f[1], f[2]) - r0_central
    return terms.torsion_stretch(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3]), dr, kts)


def _out_of_plane(xl, k):
    return terms.out_of_plane(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3]), k)


VALENCE = (
    ValenceKind("stretch", "stretch", 2, _stretch,
                lambda p, t, f: (f[t["stretch_atoms"]], *_slots(p, t, "stretch", 0, 1))),
    ValenceKind("bend", "bend", 3, _bend, lambda p, t, f: _slots(p, t, "bend", 0, 1)),
    ValenceKind("stretch_bend", "stretch_bend", 3, _stretch_bend,
                lambda p, t, f: (f[t["stretch_bend_atoms"]], *_slots(p, t, "stretch_bend", 0, 1, 2, 3))),
    ValenceKind("bend_bend", "bend_bend", 5, _bend_bend,
                lambda p, t, f: (*_slots(p, t, "bend_bend", 2, 3),
                                 p[t["bend_bend_p"][:, 0]] * p[t["bend_bend_p"][:, 1]])),
    ValenceKind("torsion", "torsion", 4, _torsion, lambda p, t, f: (p[t["torsion_p"]],)),
    ValenceKind("torsion_stretch", "torsion_stretch", 4, _torsion_stretch,
                lambda p, t, f: (f[t["torsion_stretch_atoms"]], *_slots(p, t, "torsion_stretch", 0, 1))),
    ValenceKind("improper", "out_of_plane", 4, _out_of_plane, lambda p, t, f: _slots(p, t, "improper", 0)),
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
