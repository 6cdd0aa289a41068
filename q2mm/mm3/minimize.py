"""Trust-region Newton minimization with the exact Hessian, rigid-body modes projected out.

Two implementations of the same algorithm:

- ``newton_minimize`` (NumPy driver, one structure, unpadded): the reference objective's
  (``q2mm.objective.objective``) minimizer, calling any energy/gradient/Hessian function.
- ``jax_newton`` (pure JAX, one padded structure, ``lax.while_loop``): used inside the jitted
  loss (``q2mm.objective.jaxloss``), one structure per call; padded atoms are frozen.

Step: eigen-decompose A = P H P + (I - P) (P projects onto the internal, non-rigid
displacements of real atoms) and take s(mu) = -sum_i u_i (u_i . P g) / (|l_i| + mu): the
Newton step where it fits the trust radius (mu = 0), else the shortest mu > 0 whose step has
the radius's length (bisection; the step shortens monotonically with mu). |l_i| turns
negative curvature into descent. Unlike clipping one fixed step to the radius, this keeps
full Newton steps along stiff modes while a nearly free mode (a rotor with a zero barrier:
curvatures of 1e-5 kcal/mol/A^2) still moves a whole radius per step, so such structures
converge in tens of steps, not thousands. Accept when the energy does not rise.
Converged when max |P g| < gtol (kcal/mol/A).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

BISECTIONS = 60  # halvings of the shift interval: the step length then fits the radius to ~1e-18
ENERGY_SLACK = 1e-10  # relative energy rise still accepted (rounding noise near convergence)


@dataclass(frozen=True)
class MinimizeOptions:
    """Inner minimization controls (gtol in kcal/mol/A, radii in Angstrom)."""

    gtol: float = 1e-8
    max_iter: int = 60  # from a QM geometry 6-16 steps converge; a structure stalled on the 6 A vdW
                        # softcut kink (no zero-gradient point) would otherwise spend them all
    initial_radius: float = 0.3
    max_radius: float = 1.0


@dataclass(frozen=True)
class MinimizeResult:
    """Outcome of one minimization: coordinates (N, 3), energy, projected max gradient."""

    x: np.ndarray
    energy: float
    max_gradient: float
    iterations: int
    converged: bool
    message: str


def _projector_np(x: np.ndarray) -> np.ndarray:
    return rigid_projector(x, np.ones(len(x), dtype=bool))


def _shifted_step(g, h, proj, radius, xp):
    """The trust-region step s(mu) of the module docstring with array module ``xp`` (np or jnp)."""
    a = proj @ h @ proj + (xp.eye(g.size, dtype=g.dtype) - proj)
    values, vectors = xp.linalg.eigh(0.5 * (a + a.T))
    coef = vectors.T @ (proj @ g)
    curvature = xp.abs(values)

    def components(mu):
        denom = curvature + mu
        safe = xp.where(denom > 0, denom, 1.0)
        return xp.where(denom > 0, coef / safe, xp.where(coef == 0, 0.0, xp.inf))

    def too_long(mu):
        return xp.sum(components(mu) ** 2) > radius**2

    def halve(_, bracket):
        low, high = bracket
        mid = 0.5 * (low + high)
        longer = too_long(mid)
        return (xp.where(longer, mid, low), xp.where(longer, high, mid))

    bracket = (0.0 * radius, xp.sqrt(xp.sum(coef**2)) / radius)  # the step at the upper end fits
    if xp is np:
        for i in range(BISECTIONS):
            bracket = halve(i, bracket)
    else:
        import jax

        bracket = jax.lax.fori_loop(0, BISECTIONS, halve, bracket)
    mu = xp.where(too_long(0.0 * radius), bracket[1], 0.0)
    return -vectors @ components(mu)


def _newton_step_np(g: np.ndarray, h: np.ndarray, proj: np.ndarray, radius: float) -> np.ndarray:
    return _shifted_step(g, h, proj, radius, np)


def _update_radius(radius: float, rho: float, length: float, opts: MinimizeOptions) -> float:
    if rho < 0.25:
        return 0.25 * length
    if rho > 0.75 and length > 0.99 * radius:
        return min(2.0 * radius, opts.max_radius)
    return radius


def newton_minimize(egh: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
                    x0: np.ndarray, opts: MinimizeOptions = MinimizeOptions()) -> MinimizeResult:
    """Minimize from x0 (N, 3); ``egh(x)`` returns energy, gradient (3N,) and Hessian (3N, 3N)."""
    x = np.array(x0, dtype=np.float64)
    energy, g, h = egh(x)
    radius = opts.initial_radius
    for it in range(opts.max_iter + 1):
        proj = _projector_np(x)
        gmax = float(np.max(np.abs(proj @ g)))
        if not np.isfinite(energy) or not np.isfinite(gmax):
            return MinimizeResult(x, float(energy), gmax, it, False, "non-finite energy or gradient")
        if gmax < opts.gtol:
            return MinimizeResult(x, float(energy), gmax, it, True, "converged")
        if it == opts.max_iter:
            break
        step = _newton_step_np(g, h, proj, radius)
        predicted = float(g @ step + 0.5 * step @ h @ step)
        trial = x + step.reshape(x.shape)
        e_t, g_t, h_t = egh(trial)
        actual = float(e_t - energy)
        length = float(np.linalg.norm(step))
        accepted = np.isfinite(e_t) and actual <= ENERGY_SLACK * (1.0 + abs(energy))
        rho = actual / predicted if predicted < 0 else (1.0 if accepted else 0.0)
        radius = _update_radius(radius, rho if accepted else 0.0, length, opts)
        if accepted:
            x, energy, g, h = trial, e_t, g_t, h_t
    return MinimizeResult(x, float(energy), gmax, opts.max_iter, False,
                          f"not converged in {opts.max_iter} iterations (max |g| {gmax:.3e} kcal/mol/A)")


# ----------------------------------------------------------------------------- JAX version

def rigid_projector(x, mask, weights=None, xp=np):
    """P = diag(dof mask) - B B^T for padded x (Nmax, 3); B spans rigid motions of real atoms.

    ``weights`` (Nmax,) = sqrt(masses) gives the mass-weighted rigid basis, None the Cartesian.
    Dependent generators (linear molecules) are dropped by their singular values. ``xp`` is
    the array module (np, or jnp inside traced code).
    """
    m = mask.astype(x.dtype)
    w = m if weights is None else weights * m
    centre = xp.sum((w**2)[:, None] * x, axis=0) / xp.sum(w**2)
    centred = (x - centre) * m[:, None]
    eye = xp.eye(3, dtype=x.dtype)
    trans = [xp.broadcast_to(e, x.shape) * w[:, None] for e in eye]
    rots = [xp.cross(e, centred) * w[:, None] for e in eye]
    gens = xp.stack([v.reshape(-1) for v in trans + rots], axis=1)
    u, s, _ = xp.linalg.svd(gens, full_matrices=False)
    keep = (s > 1e-6 * xp.max(s)).astype(x.dtype)
    dof = xp.repeat(m, 3)
    return xp.diag(dof) - (u * keep) @ u.T


def jax_projector(x, mask, weights=None):
    """``rigid_projector`` on JAX arrays (traceable)."""
    import jax.numpy as jnp

    return rigid_projector(x, mask, weights, jnp)


def _jax_step(g, h, proj, radius):
    import jax.numpy as jnp

    return _shifted_step(g, h, proj, radius, jnp)


def _jax_trust_region(evaluate, x0, mask, opts: MinimizeOptions, max_iter, h0):
    """The trust-region loop; ``evaluate(x)`` returns energy, gradient and exact Hessian. The
    first pass evaluates x0 with a zero step, so ``evaluate`` is traced once. Returns the
    final loop state."""
    import jax
    import jax.numpy as jnp

    shape, n = x0.shape, x0.size

    def cond(state):
        it, gmax = state[-2], state[-1]
        return (it == 0) | ((it <= max_iter) & (gmax >= opts.gtol) & jnp.isfinite(gmax))

    def body(state):
        x, e, g, h, proj, radius, it, _ = state
        first = it == 0
        step = jnp.where(first, 0.0, _jax_step(g, h, proj, radius))
        predicted = g @ step + 0.5 * step @ h @ step
        trial = x + step.reshape(shape)
        e_t, g_t, h_t = evaluate(trial)
        actual = e_t - e
        length = jnp.linalg.norm(step)
        ok = jnp.isfinite(e_t) & (first | (actual <= ENERGY_SLACK * (1.0 + jnp.abs(e))))
        rho = jnp.where(predicted < 0, actual / jnp.where(predicted < 0, predicted, -1.0), 1.0)
        rho = jnp.where(ok, rho, 0.0)
        grow = (rho > 0.75) & (length > 0.99 * radius)
        new_radius = jnp.where(rho < 0.25, 0.25 * length, jnp.where(grow, jnp.minimum(2 * radius, opts.max_radius), radius))
        radius = jnp.where(first, radius, new_radius)
        x, e, g, h = [jnp.where(ok, new, old) for new, old in ((trial, x), (e_t, e), (g_t, g), (h_t, h))]
        proj = jax_projector(x, mask)
        gmax = jnp.where(jnp.isfinite(e), jnp.max(jnp.abs(proj @ g)), jnp.inf)
        return x, e, g, h, proj, radius, it + 1, gmax

    eye = jnp.eye(n, dtype=x0.dtype)
    init = (x0, jnp.asarray(jnp.inf, x0.dtype), jnp.zeros(n, x0.dtype), h0, eye,
            jnp.asarray(opts.initial_radius, x0.dtype), jnp.asarray(0), jnp.asarray(jnp.inf, x0.dtype))
    return jax.lax.while_loop(cond, body, init)


def jax_newton(energy_fn, x0, p, topo, mask, opts: MinimizeOptions = MinimizeOptions(), hessian_fn=None):
    """Minimize ``energy_fn(x, p, topo)`` over real atoms of padded x0 (Nmax, 3), pure JAX.

    Returns (x_min, energy, max projected gradient, Newton iterations, converged, Hessian at
    x_min (3Nmax, 3Nmax), for the implicit derivative). Same algorithm as ``newton_minimize``;
    not differentiable itself (see ``make_implicit_minimum``). ``hessian_fn`` (the engine's
    assembled Hessian) replaces ``jax.hessian(energy_fn)`` where the model has one.
    """
    import jax
    import jax.numpy as jnp

    n = x0.size
    hess = hessian_fn or jax.hessian(energy_fn)

    def egh(x):
        e, g = jax.value_and_grad(energy_fn)(x, p, topo)
        return e, g.reshape(-1), hess(x, p, topo).reshape(n, n)

    x, e, _, h, _, _, it, gmax = _jax_trust_region(egh, x0, mask, opts, opts.max_iter, jnp.eye(n, dtype=x0.dtype))
    return x, e, gmax, it - 1, (gmax < opts.gtol) & jnp.isfinite(e), h


def make_implicit_minimum(energy_fn):
    """x* with derivatives by implicit differentiation: ``implicit_minimum(p, x_star, h_star, topo, mask)``.

    Forward: returns the converged x_star unchanged. Backward: dx*/dp = -H^+ d(grad_x E)/dp with
    H^+ the inverse of the Hessian ``h_star`` (the minimizer's, at x_star; (3Nmax, 3Nmax), not
    differentiated) on the internal (non-rigid, real-atom) subspace.
    """
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def implicit_minimum(p, x_star, h_star, topo, mask):
        return x_star

    def fwd(p, x_star, h_star, topo, mask):
        return x_star, (p, x_star, h_star, topo, mask)

    def bwd(res, x_bar):
        p, xs, h, topo, mask = res
        n = xs.size
        proj = jax_projector(xs, mask)
        a = proj @ h @ proj + (jnp.eye(n, dtype=xs.dtype) - proj)
        w = jnp.linalg.solve(0.5 * (a + a.T), proj @ x_bar.reshape(-1)).reshape(xs.shape)
        _, vjp = jax.vjp(lambda q: jax.grad(energy_fn)(xs, q, topo), p)
        (p_bar,) = vjp(w)
        return -p_bar, jnp.zeros_like(xs), jnp.zeros_like(h), None, None

    implicit_minimum.defvjp(fwd, bwd)
    return implicit_minimum
