"""MM3* nonbonded terms as MacroModel evaluates them (pure JAX, float64, kcal/mol).

Checked against MacroModel's `.mmo` pair tables (rh-enamide, six structures):

* van der Waals: MM3 Buckingham on the distance between *working* coordinates (hydrogens
  moved toward their parent by the `-6` reduction, 0.923 for H1), rv = r_i + r_j,
  eps = sqrt(eps_i eps_j) unless a `6` pair row overrides both.
* "Softcut": the pair's epsilon is scaled by S = (r_off^2 - r^2) / (r_off^2 - r_on^2),
  clipped to [0, 1], with r the *nuclear* distance, r_on = 6 and r_off = 8 A (the printed
  7 A cutoff +- 1 A). Every printed epsilon between 6 and 8 A follows this to 4 digits.
* Electrostatics: 1389.5 / 4.184 q_i q_j / r kcal/mol (constant dielectric 1), r between
  working coordinates; pairs beyond 12 A (nuclear) are dropped.
* 1-2 and 1-3 pairs (over every bond, zero-order ones included) are excluded, 1-4 pairs
  count fully.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

import q2mm.jaxconfig  # noqa: F401
from q2mm.mm3.minimize import Kinks
from q2mm.mm3.terms import KJ_PER_KCAL
from q2mm.mm3.topology import Topology

BUCK_A = 1.84e5
BUCK_B = 12.0
BUCK_C = 2.25
# MM3 guard against the collapse of exp-6 at short range: for rv/r > 3.311 use 336.176 eps (rv/r)^2.
BUCK_GUARD_RATIO = 3.311
BUCK_GUARD_SCALE = 336.176
VDW_CUTOFF = 7.0  # A, MacroModel's "Maximum van der Waals distance"
VDW_SOFTCUT_WIDTH = 1.0  # A on each side of the cutoff
ELECTROSTATIC_FACTOR = 1389.5 / KJ_PER_KCAL  # ELE factor of the -1 table, kcal A / (mol e^2)
ELECTROSTATIC_CUTOFF = 12.0  # A
SOFTCUT_KINK = VDW_CUTOFF - VDW_SOFTCUT_WIDTH  # A: the softcut's derivative jumps up here
_EPS = 1e-300


def buckingham(r: jnp.ndarray, rv: jnp.ndarray, eps: jnp.ndarray) -> jnp.ndarray:
    """MM3 exp-6: eps (1.84e5 exp(-12 r/rv) - 2.25 (rv/r)^6), guarded at very short range."""
    ratio = rv / r
    regular = eps * (BUCK_A * jnp.exp(-BUCK_B / ratio) - BUCK_C * ratio**6)
    guarded = eps * BUCK_GUARD_SCALE * ratio**2
    return jnp.where(ratio > BUCK_GUARD_RATIO, guarded, regular)


def softcut(r_nuclear: jnp.ndarray, cutoff: float = VDW_CUTOFF, width: float = VDW_SOFTCUT_WIDTH) -> jnp.ndarray:
    """MacroModel's softcut scale of vdW epsilon: 1 below cutoff-width, 0 beyond cutoff+width."""
    on2, off2 = (cutoff - width) ** 2, (cutoff + width) ** 2
    return jnp.clip((off2 - r_nuclear**2) / (off2 - on2), 0.0, 1.0)


def kinks(topo: Topology) -> Kinks:
    """The vdW pairs of one (padded) structure, whose energy has a kink at SOFTCUT_KINK: the
    softcut scale starts to fall there, so the derivative jumps up and a minimum can sit on it."""
    return Kinks(topo.pair.atoms, topo.pair.mask, SOFTCUT_KINK)


def coulomb(r: jnp.ndarray, qq: jnp.ndarray) -> jnp.ndarray:
    """Point charges, constant dielectric 1: 332.098 q_i q_j / r (kcal/mol)."""
    return ELECTROSTATIC_FACTOR * qq / r


def pair_distance(d: jnp.ndarray) -> jnp.ndarray:
    """Length of difference vectors d (..., 3)."""
    return jnp.sqrt(jnp.sum(d * d, axis=-1) + _EPS)


def pair_distances(x: jnp.ndarray, pairs: jnp.ndarray) -> jnp.ndarray:
    """Distances between the atoms of each pair (P, 2) of x (N, 3)."""
    return pair_distance(x[pairs[..., 0]] - x[pairs[..., 1]])


def nonbonded_pairs(n_atoms: int, bonds: list[tuple[int, int]]) -> np.ndarray:
    """All atom pairs i < j that are neither 1-2 nor 1-3 over the bond graph, shape (P, 2)."""
    neighbours: list[set[int]] = [set() for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[i].add(j)
        neighbours[j].add(i)
    excluded: set[tuple[int, int]] = set()
    for centre, nbrs in enumerate(neighbours):
        for a in nbrs:
            excluded.add((min(a, centre), max(a, centre)))
        for a, b in itertools.combinations(sorted(nbrs), 2):
            excluded.add((a, b))
    pairs = [p for p in itertools.combinations(range(n_atoms), 2) if p not in excluded]
    return np.array(pairs, dtype=np.int32).reshape(-1, 2)
