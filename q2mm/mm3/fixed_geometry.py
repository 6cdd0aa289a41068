"""The MM3* gradient and Hessian at a FIXED geometry as cheap functions of the parameters.

Every interaction's energy is E(q(x), theta): internal coordinates q of the geometry alone
(bond lengths, angles, dihedrals; a nonbonded pair's nuclear and working distances) and an
energy of those coordinates and the parameters. At a fixed x

    grad_x E = sum_i J_i^T E_q(q_i; theta_i),
    H        = sum_i J_i^T E_qq(q_i; theta_i) J_i + sum_a E_q[a](q_i; theta_i) d2q_i[a],

with J_i = dq_i/dx and d2q_i computed once (``factors``). ``gradient`` and ``hessian`` are
linear in the small per-interaction E_q and E_qq, so their derivatives with respect to
hundreds of parameters (``JaxLoss.residuals_and_jacobian``: the eigenmatrix at the QM
geometry, d(grad_x E)/dp at each minimum) cost a few linear assemblies, not forward mode
through every interaction's Cartesian Hessian. Both equal ``engine.energy``'s gradient and
``hessian.hessian`` at x to rounding (tests/mm3/test_fixed_geometry.py).

The working coordinates (hydrogen reduction) are fixed with x: the results hold the hydrogen
reduction factors at their values in the ``p`` given to ``factors``, so they are right only
while no reduction factor varies (``MM3Model.reduction_slots``; JaxLoss falls back otherwise).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

import q2mm.jaxconfig  # noqa: F401
from q2mm.mm3 import interactions, nonbonded
from q2mm.mm3.hessian import assemble, masked, reduction_matrix, scatter_valence
from q2mm.mm3.topology import Topology


class Coordinates(NamedTuple):
    """Internal coordinates of M interactions and their first and second derivatives with
    respect to the interactions' own Cartesian coordinates (zero on padded rows)."""

    q: jnp.ndarray  # (M, m)
    jac: jnp.ndarray  # (M, m, k, 3)
    curv: jnp.ndarray | None  # (M, m, k, 3, k, 3); None where only the gradient is wanted


class Factors(NamedTuple):
    """Everything geometric at one x: per valence kind (``interactions.VALENCE`` order), the
    pairs' nuclear and working distances (one (P, 3) difference vector each), the hydrogen
    reduction factors and the reduction matrix A (xr = A x)."""

    valence: tuple[Coordinates, ...]
    nuclear: Coordinates  # q (P, 1), jac (P, 1, 1, 3), curv (P, 1, 1, 3, 1, 3)
    working: Coordinates
    factor: jnp.ndarray
    a: jnp.ndarray


def _coordinates(fn, local: jnp.ndarray, params: tuple, mask: jnp.ndarray, second: bool) -> Coordinates:
    if second:
        q, jac, curv = jax.vmap(partial(interactions.coordinate_derivatives, fn))(local, *params)
    else:
        (q, jac), curv = jax.vmap(partial(interactions.coordinate_jacobian, fn))(local, *params), None
    keep = mask[:, None]
    return Coordinates(
        jnp.where(keep, q, 1.0),
        jnp.where(keep[..., None, None], jac, 0.0),
        None if curv is None else jnp.where(keep[..., None, None, None, None], curv, 0.0),
    )


def _pair_curvature(c: Coordinates) -> jnp.ndarray:
    """A pair distance's second derivative in its difference vector, (P, 3, 3)."""
    assert c.curv is not None, "geometric factors made without second derivatives"
    return c.curv[:, 0, 0, :, 0]


def _distance(d: jnp.ndarray) -> jnp.ndarray:
    return nonbonded.pair_distance(d[0])[None]


def factors(x: jnp.ndarray, p: jnp.ndarray, topo: Topology, second: bool = True) -> Factors:
    """The geometric factors at x (Nmax, 3) A; ``p`` supplies only the reduction factors.
    Constant: no derivative flows through them. ``second=False`` leaves out the coordinates'
    second derivatives (``gradient`` needs none; they were most of its tracing)."""
    x, p = jax.lax.stop_gradient(x), jax.lax.stop_gradient(p)
    p_ext = interactions.extend(p)
    xr, factor = interactions.working_coordinates(x, p_ext, topo)
    valence = []
    for kind in interactions.VALENCE:
        block = kind.block(topo)
        params = kind.params(p_ext, topo, factor)
        valence.append(_coordinates(kind.coords, xr[block.atoms], params, block.mask, second))
    i, j = topo.pair.atoms[:, 0], topo.pair.atoms[:, 1]
    mask = topo.pair.mask
    nuclear = _coordinates(_distance, (x[i] - x[j])[:, None], (), mask, second)
    working = _coordinates(_distance, (xr[i] - xr[j])[:, None], (), mask, second)
    return Factors(tuple(valence), nuclear, working, factor, reduction_matrix(topo.parent, factor))


def _energy_derivatives(energy, q: jnp.ndarray, params: tuple, second: bool):
    """(E_q, E_qq or None) of every interaction (rows of q and params)."""
    if second:
        return jax.vmap(partial(interactions.energy_derivatives, energy))(q, *params)
    return jax.vmap(jax.grad(energy))(q, *params), None


def _valence_derivatives(f: Factors, p_ext: jnp.ndarray, topo: Topology, second: bool):
    """Per valence kind, (E_q (M, m), E_qq (M, m, m) or None) of each interaction, unweighted."""
    return [
        _energy_derivatives(kind.energy_q, c.q, kind.params(p_ext, topo, f.factor), second)
        for kind, c in zip(interactions.VALENCE, f.valence)
    ]


def _pair_energy(r: jnp.ndarray, *params) -> jnp.ndarray:
    vdw, ele = interactions.pair_energies_of_distances(r[0], r[1], *params)
    return vdw + ele


def _pair_derivatives(f: Factors, p_ext: jnp.ndarray, topo: Topology, second: bool):
    """E_q (P, 2) and E_qq (P, 2, 2) (or None) of the pairs in (nuclear, working) distance."""
    params = interactions.pair_params(p_ext, topo, interactions.charges(p_ext, topo))
    r = jnp.concatenate([f.nuclear.q, f.working.q], axis=1)
    return _energy_derivatives(_pair_energy, r, params, second)


def gradient(f: Factors, p: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """grad_x E (Nmax, 3) at the factors' geometry, kcal/mol/A: sum_i J_i^T E_q."""
    p_ext = interactions.extend(p)
    n = f.a.shape[0]
    rows, values = [], []
    for kind, c, (e_q, _) in zip(interactions.VALENCE, f.valence, _valence_derivatives(f, p_ext, topo, False)):
        block = kind.block(topo)
        e_q = jnp.where(block.mask[:, None], e_q, 0.0)
        rows.append(block.atoms.reshape(-1))
        values.append(jnp.einsum("m,ma,maku->mku", block.scale, e_q, c.jac).reshape(-1, 3))
    e_q, _ = _pair_derivatives(f, p_ext, topo, False)
    i, j = topo.pair.atoms[:, 0], topo.pair.atoms[:, 1]
    pair_n = e_q[:, 0:1] * f.nuclear.jac[:, 0, 0]  # (P, 3) wrt the nuclear difference vector
    pair_r = e_q[:, 1:2] * f.working.jac[:, 0, 0]
    working = jnp.zeros((n, 3), pair_r.dtype).at[jnp.concatenate(rows)].add(jnp.concatenate(values))
    working = working.at[i].add(pair_r).at[j].add(-pair_r)
    nuclear = jnp.zeros((n, 3), pair_n.dtype).at[i].add(pair_n).at[j].add(-pair_n)
    return nuclear + jnp.einsum("ba,bu->au", f.a, working)


def hessian(f: Factors, p: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """The Cartesian Hessian (Nmax, 3, Nmax, 3) at the factors' geometry, kcal/mol/A^2:
    sum_i J_i^T E_qq J_i + E_q . d2q_i, assembled like ``hessian.hessian``."""
    p_ext = interactions.extend(p)
    per_kind = [
        jnp.einsum("maiu,mab,mbjv->miujv", c.jac, e_qq, c.jac) + jnp.einsum("ma,maiujv->miujv", e_q, c.curv)
        for c, (e_q, e_qq) in zip(f.valence, _valence_derivatives(f, p_ext, topo, True))
    ]
    e_q, e_qq = _pair_derivatives(f, p_ext, topo, True)
    u_n, u_r = f.nuclear.jac[:, 0, 0], f.working.jac[:, 0, 0]  # (P, 3)
    outer = jnp.einsum("pu,pv->puv", u_n, u_r)
    nn = e_qq[:, 0, 0, None, None] * u_n[:, :, None] * u_n[:, None, :] + e_q[:, 0, None, None] * _pair_curvature(
        f.nuclear
    )
    rr = e_qq[:, 1, 1, None, None] * u_r[:, :, None] * u_r[:, None, :] + e_q[:, 1, None, None] * _pair_curvature(
        f.working
    )
    nr = e_qq[:, 0, 1, None, None] * outer
    return assemble(scatter_valence(per_kind, topo, f.a.shape[0]), (nn, nr, rr), topo, f.a)


def _valence_forms(c: Coordinates, loc: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(P P^T (M, d, m, m), Q (M, d, m)) of displacements ``loc`` (M, k, 3, d): P = J u, Q = u^T d2q u."""
    p = jnp.einsum("maku,mkud->mda", c.jac, loc)
    q = jnp.einsum("makujv,mkud,mjvd->mda", c.curv, loc, loc)
    return p[..., :, None] * p[..., None, :], q


def _displacement_forms(f: Factors, vectors: jnp.ndarray, topo: Topology) -> tuple[list, tuple]:
    """The fixed forms of the columns u_k of ``vectors`` (3 Nmax, d): per valence kind
    (weights (M,), P P^T, Q) of the working displacements A u_k (``_valence_forms``), and the
    pairs' (P_n, Q_n, P_r, Q_r) (P, d) of their nuclear and working distances."""
    n = f.a.shape[0]
    u = jax.lax.stop_gradient(vectors).reshape(n, 3, -1)
    ur = jnp.einsum("ba,aud->bud", f.a, u)  # dxr = A dx
    valence = []
    for kind, c in zip(interactions.VALENCE, f.valence):
        block = kind.block(topo)
        valence.append((jnp.where(block.mask, block.scale, 0.0), *_valence_forms(c, ur[block.atoms])))
    i, j = topo.pair.atoms[:, 0], topo.pair.atoms[:, 1]
    pairs: list[jnp.ndarray] = []
    for c, disp in ((f.nuclear, u[i] - u[j]), (f.working, ur[i] - ur[j])):  # (P, 3, d)
        pairs.append(jnp.einsum("pu,pud->pd", c.jac[:, 0, 0], disp))
        pairs.append(jnp.einsum("puv,pud,pvd->pd", _pair_curvature(c), disp, disp))
    return valence, tuple(pairs)


def _pair_rows(e_q: jnp.ndarray, e_qq: jnp.ndarray, forms: tuple) -> jnp.ndarray:
    """Each pair's u_k^T H u_k (P, d) from its E_q (P, 2), E_qq (P, 2, 2) in (nuclear, working)
    distance and the forms of ``_displacement_forms``."""
    pn, qn, pr, qr = forms
    return (
        e_qq[:, 0, 0, None] * pn**2
        + 2.0 * e_qq[:, 0, 1, None] * pn * pr
        + e_qq[:, 1, 1, None] * pr**2
        + e_q[:, 0, None] * qn
        + e_q[:, 1, None] * qr
    )


def diagonal(f: Factors, vectors: jnp.ndarray, p: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """u_k^T H u_k (d,) for the columns u_k of ``vectors`` (3 Nmax, d): per interaction
    P^T E_qq P + Q . E_q with P = J u_k and Q = u_k^T d2q u_k (displacements of the working
    coordinates for valence terms), never the (3N, 3N) Hessian or its p-derivative."""
    valence, pair_forms = _displacement_forms(f, vectors, topo)
    p_ext = interactions.extend(p)
    total = jnp.zeros(vectors.shape[-1], vectors.dtype)
    for kind, (w, pp, q), (e_q, e_qq) in zip(interactions.VALENCE, valence, _valence_derivatives(f, p_ext, topo, True)):
        mask = kind.block(topo).mask
        total = total + jnp.einsum("m,mdab,mab->d", w, pp, masked(e_qq, mask))
        total = total + jnp.einsum("m,mda,ma->d", w, q, masked(e_q, mask))
    e_q, e_qq = _pair_derivatives(f, p_ext, topo, True)
    return total + jnp.sum(_pair_rows(e_q, e_qq, pair_forms), axis=0)


def _parameter_derivatives(energy, q: jnp.ndarray, params: tuple, fixed: tuple = ()) -> tuple[tuple, tuple]:
    """Per interaction, d(E_q)/d(theta_j) and d(E_qq)/d(theta_j) for each of its own parameter
    arrays theta_j (``params``, one row per interaction; ``fixed`` rows follow, not
    differentiated): forward mode over a few local values."""

    derivatives = partial(interactions.energy_derivatives, energy)
    return jax.vmap(jax.jacfwd(derivatives, argnums=tuple(range(1, len(params) + 1))))(q, *params, *fixed)


def _local_parameters(p: jnp.ndarray, f: Factors, topo: Topology) -> tuple:
    """Every interaction's parameter arrays as functions of p: per valence kind its ``params``,
    then the pairs' (rv, eps, q_i q_j); the reduction factors held at f's."""
    p_ext = interactions.extend(p)
    factor = jax.lax.stop_gradient(f.factor)
    pairs = interactions.pair_params(p_ext, topo, interactions.charges(p_ext, topo))[:3]
    return tuple(kind.params(p_ext, topo, factor) for kind in interactions.VALENCE) + (pairs,)


def diagonal_jacobian(f: Factors, vectors: jnp.ndarray, p: jnp.ndarray, topo: Topology) -> jnp.ndarray:
    """d(u_k^T H u_k)/dp (d, P) of ``diagonal`` (reduction factors held). Each row is a sum over
    interactions of fixed forms times E_q, E_qq, which depend on a few parameters of that
    interaction: forward mode over those (a handful per interaction), the forms contracted in,
    then one pull-back through the gathering of parameters (d rows): d * interactions * width,
    where forward mode through ``diagonal`` costs d * interactions per column of p."""
    valence, pair_forms = _displacement_forms(f, vectors, topo)
    theta, pull = jax.vjp(lambda q: _local_parameters(q, f, topo), p)
    rows = []
    for kind, c, (w, pp, q), params in zip(interactions.VALENCE, f.valence, valence, theta):
        mask = kind.block(topo).mask
        d_eq, d_eqq = _parameter_derivatives(kind.energy_q, c.q, params)
        rows.append(
            tuple(
                jnp.einsum("m,mdab,mab...->dm...", w, pp, masked(b, mask))
                + jnp.einsum("m,mda,ma...->dm...", w, q, masked(a, mask))
                for a, b in zip(d_eq, d_eqq)
            )
        )
    r = jnp.concatenate([f.nuclear.q, f.working.q], axis=1)
    mask = topo.pair.mask
    d_eq, d_eqq = _parameter_derivatives(_pair_energy, r, theta[-1], (mask,))
    rows.append(tuple(jnp.where(mask, _pair_rows(a, b, pair_forms).T, 0.0) for a, b in zip(d_eq, d_eqq)))
    return jax.vmap(pull)(tuple(rows))[0]


class AtGeometry:
    """``MM3Model.at_geometry``: the gradient and Hessian at one x as functions of p. The
    geometric factors are made on first use, without second derivatives while only the
    gradient is asked for."""

    def __init__(self, x: jnp.ndarray, p: jnp.ndarray, topo: Topology):
        self.x, self.p, self.topo = x, p, topo
        self._first: Factors | None = None
        self._second: Factors | None = None

    def factors(self, second: bool) -> Factors:
        """The factors at x, with second derivatives if ``second`` (made once each)."""
        if second and self._second is None:
            self._second = factors(self.x, self.p, self.topo)
        if self._second is not None:
            return self._second
        if self._first is None:
            self._first = factors(self.x, self.p, self.topo, second=False)
        return self._first

    def gradient(self, p: jnp.ndarray) -> jnp.ndarray:
        return gradient(self.factors(False), p, self.topo)

    def hessian(self, p: jnp.ndarray) -> jnp.ndarray:
        return hessian(self.factors(True), p, self.topo)

    def diagonal(self, vectors: jnp.ndarray, p: jnp.ndarray) -> jnp.ndarray:
        return diagonal(self.factors(True), vectors, p, self.topo)

    def diagonal_jacobian(self, vectors: jnp.ndarray, p: jnp.ndarray) -> jnp.ndarray:
        return diagonal_jacobian(self.factors(True), vectors, p, self.topo)


def at_geometry(x: jnp.ndarray, p: jnp.ndarray, topo: Topology) -> AtGeometry:
    """The gradient and Hessian at x as functions of p (reduction factors held at p's)."""
    return AtGeometry(x, p, topo)
