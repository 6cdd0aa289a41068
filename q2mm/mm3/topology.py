"""The engine's typed topology: index and parameter-slot arrays of a training set (a pytree).

``Topology`` is a ``NamedTuple`` (so a JAX pytree: ``jax.tree.map``, ``vmap`` and slicing see
its arrays) with a leading structure axis; ``MM3Model.structure(k)`` slices one structure.
Each valence kind (``valence``, in the order of the term table) and the nonbonded pairs
(``pair``) are an ``Interactions`` block: atom indices, slots
into the flat parameter vector (the slot ``len(p)`` is the constant 0 of ``extend(p)``), a
per-interaction scale and the mask of real (unpadded) rows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Array = Any  # a jax or numpy array


class Interactions(NamedTuple):
    """One interaction kind of one structure (or all structures, leading axis S)."""

    atoms: Array  # (M, arity) int: atom indices (padding points at real atoms)
    p: Array  # (M, width) int: slots into p_ext
    scale: Array  # (M,) float: per-interaction multiplier (torsion shares, 1 otherwise)
    mask: Array  # (M,) bool: real rows

    def weights(self) -> Array:
        """Per-interaction multiplier of the energy: the scale, 0 for padding."""
        return self.mask * self.scale


class Topology(NamedTuple):
    """Everything ``energy(x, p, topo)`` needs besides x and p, for one or all structures.

    ``valence`` holds one block per kind of the term table, in its order
    (``q2mm.mm3.interactions.VALENCE``; ``ValenceKind.block(topo)`` picks a kind's).
    """

    valence: tuple[Interactions, ...]
    pair: Interactions  # nonbonded pairs; p = special vdW pair row slots (radius, epsilon)
    vdw_p: Array  # (N, 3) per-atom slots: vdW radius, epsilon, hydrogen reduction
    parent: Array  # (N,) the atom each hydrogen is reduced toward (itself otherwise)
    formal: Array  # (N,) formal charges (e)
    pair_slot: Array  # (N, N) row of pair (a, b) in ``pair``, P where none
    atom_mask: Array  # (N,) real atoms
