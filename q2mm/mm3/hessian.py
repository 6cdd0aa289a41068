"""The exact Cartesian MM3* Hessian assembled from per-interaction pieces (pure JAX).

``jax.hessian(energy)`` pushes 3N tangents through the reverse pass of the whole structure;
here each interaction is differentiated twice on its own few atoms instead
(``q2mm.mm3.interactions``, the same functions the energy sums), and the pieces are added up:

* valence terms depend on working coordinates only: a (3k x 3k) Hessian per interaction of k
  atoms, scattered into 3x3 atom blocks;
* a nonbonded pair depends on its nuclear and working difference vectors only: one 6x6
  Hessian per pair gives the off-diagonal atom blocks (minus it) and, summed, the diagonal;
* working coordinates are linear in the nuclear ones, xr = A x (A: each hydrogen's reduction
  toward its parent), so H = H_nn + C A + (C A)^T + A^T H_rr A (C the nuclear-working block).

The result equals ``jax.hessian(energy)`` to rounding and stays differentiable in x and p.
``energy_gradient_hessian`` returns the energy and its gradient from the same per-interaction
pass (each Newton step needs all three).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import q2mm.jaxconfig  # noqa: F401
from q2mm.mm3 import interactions
from q2mm.mm3.topology import Topology


def masked(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """``values`` with the rows (leading axes of ``mask``) where ``mask`` is False set to 0."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim)), values, 0.0)


def _valence_blocks(xr: jnp.ndarray, p_ext: jnp.ndarray, topo: Topology, factor: jnp.ndarray) -> jnp.ndarray:
    """Sum of every valence interaction's Hessian in working coordinates, (N, N, 3, 3) blocks."""
    per_kind = []
    for kind in interactions.VALENCE:
        atoms = kind.block(topo).atoms
        per_kind.append(jax.vmap(jax.hessian(kind.local))(xr[atoms], *kind.params(p_ext, topo, factor)))
    return scatter_valence(per_kind, topo, xr.shape[0])


def scatter_valence(per_kind: list[jnp.ndarray], topo: Topology, n: int) -> jnp.ndarray:
    """(N, N, 3, 3) sum of per-interaction Hessians (M, k, 3, k, 3), one array per valence kind
    (``interactions.VALENCE`` order), scaled and masked like the energy."""
    rows, cols, blocks = [], [], []
    for kind, h in zip(interactions.VALENCE, per_kind):
        block = kind.block(topo)
        atoms = block.atoms
        h = masked(h * block.scale[:, None, None, None, None], block.mask)
        k = kind.arity
        rows.append(jnp.broadcast_to(atoms[:, :, None], (atoms.shape[0], k, k)).reshape(-1))
        cols.append(jnp.broadcast_to(atoms[:, None, :], (atoms.shape[0], k, k)).reshape(-1))
        blocks.append(h.transpose(0, 1, 3, 2, 4).reshape(-1, 3, 3))
    out = jnp.zeros((n, n, 3, 3), blocks[0].dtype)
    return out.at[jnp.concatenate(rows), jnp.concatenate(cols)].add(jnp.concatenate(blocks))


def _pair_total(d_nuclear, d_working, *params):
    """One nonbonded pair's energy (vdW + electrostatic) from its nuclear and working difference vectors."""
    vdw, ele = interactions.pair_energies(d_nuclear, d_working, *params)
    return vdw + ele


def _pair_hessians(x, xr, p_ext, topo, charges):
    """Per-pair second derivatives wrt (nuclear, working) difference vectors: three (P, 3, 3)."""
    i, j = topo.pair.atoms[:, 0], topo.pair.atoms[:, 1]
    params = interactions.pair_params(p_ext, topo, charges)
    (nn, nr), (_, rr) = jax.vmap(jax.hessian(_pair_total, argnums=(0, 1)))(x[i] - x[j], xr[i] - xr[j], *params)
    return nn, nr, rr


def _pair_blocks(per_pair: jnp.ndarray, slot: jnp.ndarray) -> jnp.ndarray:
    """(N, N, 3, 3) blocks of pair functions of x_i - x_j: -M off the diagonal, the row sums on it.

    ``slot[a, b]`` is the pair (a, b)'s row of ``per_pair``, or P (no pair) for a zero block.
    """
    padded = jnp.concatenate([per_pair, jnp.zeros((1, 3, 3), per_pair.dtype)])
    off = padded[slot]
    n = slot.shape[0]
    diagonal = jnp.eye(n, dtype=per_pair.dtype)[:, :, None, None] * jnp.sum(off, axis=1)[:, None]
    return diagonal - off


def reduction_matrix(parent: jnp.ndarray, factor: jnp.ndarray) -> jnp.ndarray:
    """A (N, N) with xr = A x: row i is f_i at i plus (1 - f_i) at parent(i)."""
    n = parent.shape[0]
    eye = jnp.eye(n, dtype=factor.dtype)
    return factor[:, None] * eye + (1.0 - factor)[:, None] * eye[parent]


def hessian(x: jnp.ndarray, p: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """Cartesian Hessian (kcal/mol/A^2) of one padded structure, shape (Nmax, 3, Nmax, 3)
    like ``jax.hessian(engine.energy)(x, p, topo)``."""
    p_ext = interactions.extend(p)
    xr, factor = interactions.working_coordinates(x, p_ext, topo)
    a = reduction_matrix(topo.parent, factor)
    pairs = _pair_hessians(x, xr, p_ext, topo, interactions.charges(p_ext, topo))
    return assemble(_valence_blocks(xr, p_ext, topo, factor), pairs, topo, a)


def assemble(valence_rr: jnp.ndarray, pairs: tuple, topo: Topology, a: jnp.ndarray) -> jnp.ndarray:
    """The Cartesian Hessian (Nmax, 3, Nmax, 3) from the valence blocks in working coordinates
    (N, N, 3, 3), the pairs' (nuclear-nuclear, nuclear-working, working-working) (P, 3, 3)
    second derivatives and the reduction matrix A."""
    nuclear, pair_rr = _pair_parts(pairs, topo, a)
    h = nuclear + jnp.einsum("ba,bduv,dc->acuv", a, valence_rr + pair_rr, a)
    return h.transpose(0, 2, 1, 3)


def _pair_parts(pairs: tuple, topo: Topology, a) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The nonbonded pairs' (N, N, 3, 3) blocks: the part in nuclear coordinates (nuclear-nuclear
    plus both cross terms) and the working-working part (still to be taken through A)."""
    nn, nr, rr = pairs
    slot = topo.pair_slot
    cross = jnp.einsum("abuv,bc->acuv", _pair_blocks(nr, slot), a)
    return _pair_blocks(nn, slot) + cross + cross.transpose(1, 0, 3, 2), _pair_blocks(rr, slot)


def _local_derivatives(f, argnums=0):
    """``f``'s value, gradient and Hessian in the arguments ``argnums`` from one forward pass
    over its reverse-mode gradient (``jax.hessian`` is the same pass without the other two)."""

    def gradient_with_value(*args):
        value, gradient = jax.value_and_grad(f, argnums)(*args)
        return gradient, (value, gradient)

    def derivatives(*args):
        hessian, (value, gradient) = jax.jacfwd(gradient_with_value, argnums, has_aux=True)(*args)
        return value, gradient, hessian

    return derivatives


def energy_gradient_hessian(x: jnp.ndarray, p: jnp.ndarray, topo: Topology) -> tuple:
    """(E, dE/dx (Nmax, 3), Hessian (Nmax, 3, Nmax, 3)) of one padded structure from the
    per-interaction derivatives ``hessian`` assembles: each interaction's value and gradient
    come with its Hessian, so the energy and its gradient cost a sum and a scatter more, not a
    reverse pass of their own. Equal to ``energy``, ``jax.grad(energy)`` and ``hessian`` to
    rounding (tests/mm3/test_perf_invariants.py)."""
    p_ext = interactions.extend(p)
    xr, factor = interactions.working_coordinates(x, p_ext, topo)
    n = x.shape[0]
    energy = jnp.zeros((), x.dtype)
    gradient_r = jnp.zeros_like(x)
    per_kind = []
    for kind in interactions.VALENCE:
        block = kind.block(topo)
        values, gradients, hessians = jax.vmap(_local_derivatives(kind.local))(
            xr[block.atoms], *kind.params(p_ext, topo, factor)
        )
        energy = energy + jnp.sum(masked(values * block.scale, block.mask))
        gradient_r = gradient_r.at[block.atoms].add(masked(gradients * block.scale[:, None, None], block.mask))
        per_kind.append(hessians)
    i, j = topo.pair.atoms[:, 0], topo.pair.atoms[:, 1]
    params = interactions.pair_params(p_ext, topo, interactions.charges(p_ext, topo))
    values, (g_n, g_r), ((nn, nr), (_, rr)) = jax.vmap(_local_derivatives(_pair_total, (0, 1)))(
        x[i] - x[j], xr[i] - xr[j], *params
    )
    energy = energy + jnp.sum(values)
    gradient_r = gradient_r.at[i].add(g_r).at[j].add(-g_r)
    gradient_n = jnp.zeros_like(x).at[i].add(g_n).at[j].add(-g_n)
    a = reduction_matrix(topo.parent, factor)
    hess = assemble(scatter_valence(per_kind, topo, n), (nn, nr, rr), topo, a)
    return energy, gradient_n + a.T @ gradient_r, hess


def _valence_dot(
    xr: jnp.ndarray, p_ext: jnp.ndarray, topo: Topology, factor: jnp.ndarray, g_rr: jnp.ndarray
) -> jnp.ndarray:
    """sum(g_rr * valence blocks) through each interaction's internal coordinates q:
    h = J^T E_qq J + sum_a E_q[a] d2q_a, with J and d2q of the (fixed) working coordinates, so
    a parameter gradient differentiates only E(q, params), never the geometry twice more."""
    total = jnp.zeros((), xr.dtype)
    for kind in interactions.VALENCE:
        block = kind.block(topo)
        atoms = block.atoms
        blocks = g_rr[atoms[:, :, None], atoms[:, None, :]]  # (M, k, k, 3, 3)

        def contract(xl, gl, *params, kind=kind):
            fixed = [jax.lax.stop_gradient(v) for v in params]
            q, jac, curv = interactions.coordinate_derivatives(kind.coords, xl, *fixed)
            e_q, e_qq = interactions.energy_derivatives(kind.energy_q, q, *params)
            return jnp.sum(e_qq * jnp.einsum("aiu,ijuv,bjv->ab", jac, gl, jac)) + jnp.sum(
                e_q * jnp.einsum("aiujv,ijuv->a", curv, gl)
            )

        values = jax.vmap(contract)(xr[atoms], blocks, *kind.params(p_ext, topo, factor))
        total = total + jnp.sum(block.weights() * values)
    return total


def hessian_dot(x: jnp.ndarray, p: jnp.ndarray, topo: Topology, g: jnp.ndarray) -> jnp.ndarray:
    """sum(g * hessian(x, p, topo)) for g shaped like the Hessian (Nmax, 3, Nmax, 3).

    Equal to contracting ``hessian``; its gradient with respect to p (the eigenmatrix score's
    gradient, with g the score's cotangent on the Hessian) compiles several times faster than
    reverse mode through ``hessian``: the valence terms go through their internal coordinates
    (``_valence_dot``). The hydrogen reduction factors are held fixed here, so the p-gradient
    leaves out their own effect: use it only when no reduction factor is being fitted.
    """
    p_ext = interactions.extend(p)
    xr, factor = interactions.working_coordinates(x, p_ext, topo)
    xr, factor = jax.lax.stop_gradient(xr), jax.lax.stop_gradient(factor)
    a = reduction_matrix(topo.parent, factor)
    blocks = g.transpose(0, 2, 1, 3)  # (N, N, 3, 3) like the assembly
    g_rr = jnp.einsum("ba,acuv,dc->bduv", a, blocks, a)
    nuclear, pair_rr = _pair_parts(_pair_hessians(x, xr, p_ext, topo, interactions.charges(p_ext, topo)), topo, a)
    return jnp.sum(blocks * nuclear) + jnp.sum(g_rr * pair_rr) + _valence_dot(xr, p_ext, topo, factor, g_rr)
