"""The term table's engine side: every MM3* valence kind, one ``VALENCE`` entry each.

An entry names the `.fld` row kind it reads, its matching (``q2mm.mm3.assign``), its energy
as a function of its own atoms only (pure JAX, kcal/mol) and its parameter slots; its block
of the topology is its position in the table. ``assign_parameters`` runs the matching of
every entry in table order. One energy definition per kind serves twice: ``q2mm.mm3.engine`` sums it over a structure (the
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

import jax
import jax.numpy as jnp

import q2mm.jaxconfig  # noqa: F401
from q2mm.io.atomtyp import AtomTypeTable
from q2mm.mm3 import assign, nonbonded, terms
from q2mm.mm3.charges import bond_dipole_charges
from q2mm.mm3.topology import Interactions, Topology
from q2mm.model.forcefield import ForceField
from q2mm.model.molecule import Molecule
from q2mm.model.termtable import ENERGY_TERMS, ROW_KIND, RowKind  # noqa: F401  (ENERGY_TERMS re-exported)


def extend(p: jnp.ndarray) -> jnp.ndarray:
    """p with a trailing 0: the slot of every absent parameter."""
    return jnp.concatenate([p, jnp.zeros(1, p.dtype)])


def working_coordinates(x: jnp.ndarray, p_ext: jnp.ndarray, topo: Topology) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(xr, factor): hydrogens moved toward their parents by their `-6` reduction factors."""
    factor = 1.0 + p_ext[topo.vdw_p[:, 2]]
    return terms.reduce_hydrogens(x, topo.parent, factor), factor


def coordinate_derivatives(coords: Callable[..., jnp.ndarray], xl: jnp.ndarray, *params) -> tuple:
    """One interaction's internal coordinates q = coords(xl, *params) (m,) and their first and
    second derivatives in its own Cartesian coordinates xl (k, 3): (m, k, 3), (m, k, 3, k, 3)."""
    return coords(xl, *params), jax.jacfwd(coords)(xl, *params), jax.jacfwd(jax.jacfwd(coords))(xl, *params)


def coordinate_jacobian(coords: Callable[..., jnp.ndarray], xl: jnp.ndarray, *params) -> tuple:
    """``coordinate_derivatives`` without the second derivatives: q (m,), dq/dxl (m, k, 3)."""
    return coords(xl, *params), jax.jacfwd(coords)(xl, *params)


def energy_derivatives(energy_q: Callable[..., jnp.ndarray], q: jnp.ndarray, *params) -> tuple:
    """An interaction's E_q (m,) and E_qq (m, m): its energy's derivatives in its coordinates."""
    return jax.jacfwd(energy_q)(q, *params), jax.jacfwd(jax.jacfwd(energy_q))(q, *params)


def charges(p_ext: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """Partial charges (e) of one structure from formal charges and bond dipoles."""
    stretch = STRETCH.block(topo)
    return bond_dipole_charges(topo.formal, stretch.atoms, p_ext[stretch.p[:, 2]], p_ext[stretch.p[:, 0]], stretch.mask)


class Slots(Protocol):
    """Where an interaction's parameters sit in the flat vector (``MM3Model.build``); -1 = none."""

    def ref(self, ref: Any) -> int: ...

    def r0(self, atoms: Sequence[int]) -> int: ...

    def theta0(self, atoms: Sequence[int]) -> int: ...


@dataclass(frozen=True)
class ValenceKind:
    """One valence interaction kind: the entry of an energy term in the term table.

    ``name`` names the kind in ``Assignment.interactions``; ``row`` is the `.fld` row kind it
    reads (``q2mm.model.termtable``; bend-bend reads the angle rows); ``term`` the energy term
    it adds to (``ENERGY_TERMS``); ``assign(ctx, result)`` its matching (``q2mm.mm3.assign``)
    appends its interactions to ``result.interactions[name]``; its block of the topology is
    ``Topology.valence[position in VALENCE]`` (``block``). ``arity`` atoms and ``width``
    parameter slots per interaction; ``slots(interaction, where)`` the interaction's slots
    (``Slots``), which ``gather(p_ext, rows, factor)`` gathers back for every (padded) row of
    the kind's block ``rows`` (``params(p_ext, topo, factor)``: from a structure's topology).

    The energy is split in two: ``coords(xl, *params)`` gives the interaction's internal
    coordinates (bond lengths in A, angles in degrees, dihedrals in radians; only the hydrogen
    reduction factors among ``params`` enter them) and ``energy_q(q, *params)`` the energy of
    those coordinates. ``local`` is their composition; ``q2mm.mm3.hessian.hessian_dot`` uses
    the split to differentiate Hessian contractions with respect to parameters cheaply.
    """

    name: str
    row: RowKind
    term: str
    assign: Callable[[assign.Context, assign.Assignment], None]
    arity: int
    width: int
    slots: Callable[[Any, Slots], list[int]]
    coords: Callable[..., jnp.ndarray]
    energy_q: Callable[..., jnp.ndarray]
    gather: Callable[[jnp.ndarray, Interactions, jnp.ndarray], tuple]

    def local(self, xl: jnp.ndarray, *params) -> jnp.ndarray:
        """Energy (kcal/mol) of one interaction from its working coordinates ``xl (arity, 3)``."""
        return self.energy_q(self.coords(xl, *params), *params)

    def block(self, topo: Topology) -> Interactions:
        """This kind's interactions in a topology."""
        return topo.valence[_POSITION[self.name]]

    def params(self, p_ext: jnp.ndarray, topo: Topology, factor: jnp.ndarray) -> tuple:
        """The parameters of every (padded) interaction of the kind in one structure."""
        return self.gather(p_ext, self.block(topo), factor)


def _slots(p_ext: jnp.ndarray, rows: Interactions, *columns: int) -> tuple[jnp.ndarray, ...]:
    return tuple(p_ext[rows.p[:, c]] for c in columns)


def _bond(xl, f, i, j):
    return terms.bond_length(xl[i], xl[j], f[i], f[j])


def _one(value):
    return jnp.stack([value])


VALENCE = (
    ValenceKind(
        "stretch",
        ROW_KIND["bond"],
        "stretch",
        assign.stretches,
        2,
        3,
        lambda it, at: [at.ref(it.refs[0]), at.ref(it.refs[1]), at.ref(it.refs[2]) if len(it.refs) > 2 else -1],
        lambda xl, f, r0, k: _one(_bond(xl, f, 0, 1)),
        lambda q, f, r0, k: terms.stretch(q[0], r0, k),
        lambda p, r, f: (f[r.atoms], *_slots(p, r, 0, 1)),
    ),
    ValenceKind(
        "bend",
        ROW_KIND["angle"],
        "bend",
        assign.bends,
        3,
        2,
        lambda it, at: [at.ref(r) for r in it.refs[:2]],
        lambda xl, theta0, k: _one(terms.angle_deg(xl[0], xl[1], xl[2])),
        lambda q, theta0, k: terms.bend(q[0], theta0, k),
        lambda p, r, f: _slots(p, r, 0, 1),
    ),
    ValenceKind(
        "stretch_bend",
        ROW_KIND["stretch_bend"],
        "stretch_bend",
        assign.stretch_bends,
        3,
        4,
        lambda it, at: [at.ref(it.refs[0]), at.r0(it.atoms[:2]), at.r0(it.atoms[1:]), at.theta0(it.atoms)],
        lambda xl, f, ksb, r01, r02, theta0: jnp.stack(
            [_bond(xl, f, 0, 1), _bond(xl, f, 1, 2), terms.angle_deg(xl[0], xl[1], xl[2])]
        ),
        lambda q, f, ksb, r01, r02, theta0: terms.stretch_bend(q[0] - r01, q[1] - r02, q[2] - theta0, ksb),
        lambda p, r, f: (f[r.atoms], *_slots(p, r, 0, 1, 2, 3)),
    ),
    ValenceKind(
        "bend_bend",
        ROW_KIND["angle"],
        "bend_bend",
        assign.bend_bends,
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
        lambda p, r, f: (*_slots(p, r, 2, 3), p[r.p[:, 0]] * p[r.p[:, 1]]),
    ),
    ValenceKind(
        "torsion",
        ROW_KIND["torsion"],
        "torsion",
        assign.torsions,
        4,
        6,
        lambda it, at: [at.ref(r) for r in it.refs] + [-1] * (6 - len(it.refs)),
        lambda xl, v: _one(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3])),
        lambda q, v: terms.torsion(q[0], v),
        lambda p, r, f: (p[r.p],),
    ),
    ValenceKind(
        "torsion_stretch",
        ROW_KIND["torsion_stretch"],
        "torsion_stretch",
        assign.torsion_stretches,
        4,
        2,
        lambda it, at: [at.ref(it.refs[0]), at.r0(it.atoms[1:3])],
        lambda xl, f, kts, r0_central: jnp.stack([terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3]), _bond(xl, f, 1, 2)]),
        lambda q, f, kts, r0_central: terms.torsion_stretch(q[0], q[1] - r0_central, kts),
        lambda p, r, f: (f[r.atoms], *_slots(p, r, 0, 1)),
    ),
    ValenceKind(
        "improper",
        ROW_KIND["improper"],
        "out_of_plane",
        assign.impropers,
        4,
        1,
        lambda it, at: [at.ref(it.refs[-1])],
        lambda xl, k: _one(terms.dihedral_rad(xl[0], xl[1], xl[2], xl[3])),
        lambda q, k: terms.out_of_plane(q[0], k),
        lambda p, r, f: _slots(p, r, 0),
    ),
)
_POSITION = {kind.name: n for n, kind in enumerate(VALENCE)}
STRETCH = VALENCE[_POSITION["stretch"]]  # its rows carry the bond dipoles (``charges``)


def assign_parameters(
    molecule: Molecule, ff: ForceField, allow_missing: bool = False, types: AtomTypeTable | Sequence[str] | None = None
) -> assign.Assignment:
    """Assign MM3* parameters from ``ff`` to every interaction of ``molecule``: each ``VALENCE``
    kind's matching in table order, then the vdW table and special pair rows (``q2mm.mm3.assign``).

    ``types`` is either the type names themselves or an atom.typ table used to look up the
    molecule's type numbers (default: the standard MacroModel table). A stretch, bend or
    atom without a row (vdW) raises ParameterAssignmentError (atoms 1-based, with types)
    unless ``allow_missing``; then it is listed in ``Assignment.missing`` and skipped.
    Torsions, cross terms and out-of-plane terms without a row are not terms: MacroModel
    lists no torsion without a row (nor one whose row is all zero; those are kept here).
    """
    kinds = [kind.name for kind in VALENCE] + list(assign.NONBONDED_KINDS)
    ctx, result = assign.start(molecule, ff, kinds, types)
    for kind in VALENCE:
        kind.assign(ctx, result)
    assign.vdw(ctx, result)
    assign.vdw_pairs(ctx, result)
    assign.check_complete(molecule, result, allow_missing)
    return result


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
    return pair_energies_of_distances(
        nonbonded.pair_distance(d_nuclear), nonbonded.pair_distance(d_working), rv, eps, qq, mask
    )


def pair_energies_of_distances(r_nuc, r, rv, eps, qq, mask) -> tuple[jnp.ndarray, jnp.ndarray]:
    """``pair_energies`` from the pairs' nuclear and working distances (A), its only geometry."""
    vdw = nonbonded.softcut(r_nuc) * nonbonded.buckingham(r, rv, eps)
    inside = mask & (r_nuc <= nonbonded.ELECTROSTATIC_CUTOFF)
    return jnp.where(mask, vdw, 0.0), jnp.where(inside, nonbonded.coulomb(r, qq), 0.0)
