"""Trust-region Newton minimization with the exact Hessian, rigid-body modes projected out.

Two implementations of the same algorithm:

- ``newton_minimize`` (NumPy driver, one structure, unpadded): the reference objective's
  (``q2mm.objective.objective``) minimizer, calling any energy/gradient/Hessian function.
- ``jax_newton`` (pure JAX, one padded structure, ``lax.while_loop``): used inside the jitted
  loss (``q2mm.objective.jaxloss``), one structure per call; padded atoms are frozen.

Step: with A = P H P + (I - P) (P projects onto the internal, non-rigid displacements of
real atoms), take the Newton step -A^-1 P g (one Cholesky solve) when A is positive definite
and the step fits the trust radius; otherwise eigen-decompose A and take
s(mu) = -sum_i u_i (u_i . P g) / (|l_i| + mu) with the shortest mu > 0 whose step has the
radius's length (bisection; the step shortens monotonically with mu). |l_i| turns negative
curvature into descent. Unlike clipping one fixed step to the radius, this keeps full Newton
steps along stiff modes while a nearly free mode (a rotor with a zero barrier: curvatures of
1e-5 kcal/mol/A^2) still moves a whole radius per step, so such structures converge in tens
of steps, not thousands. Accept when the energy does not rise. Converged when
max |P g| < gtol (kcal/mol/A).

Kinks. MM3*'s softcut makes the vdW energy of a pair continuous but not differentiable at
6 A (``Kinks``: the pairs and the distance), and the derivative jumps up there, so a
structure can settle with a pair exactly on it: a minimum without a zero gradient, where
the trust region only shrinks. When the radius falls below ``STALL_RADIUS`` the closest
pairs within ``PIN_TOLERANCE`` of the kink are pinned: their distance becomes a constraint
(its gradient joins the projected-out directions, its curvature times the Lagrange
multiplier joins the Hessian, a restoring step puts it on the kink) and the constrained
minimum converges like any other. ``make_implicit_minimum`` differentiates the pinned
minimum on the same constraint surface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

BISECTIONS = 60  # halvings of the shift interval: the step length then fits the radius to ~1e-18
ENERGY_SLACK = 1e-10  # relative energy rise still accepted (rounding noise near convergence)
PIN_SLOTS = 2  # pairs that can be pinned on a kink at once
STALL_RADIUS = 1e-5  # A: a trust radius this small with max |P g| >= gtol means no descent is left
PIN_TOLERANCE = 1e-4  # A: pairs this close to the kink distance are pinned when stalled


@dataclass(frozen=True)
class MinimizeOptions:
    """Inner minimization controls (gtol in kcal/mol/A, radii in Angstrom)."""

    gtol: float = 1e-8
    max_iter: int = 60  # from a QM geometry 6-16 steps converge
    initial_radius: float = 0.3
    max_radius: float = 1.0


@dataclass(frozen=True)
class Kinks:
    """Atom pairs (P, 2) whose energy has an upward derivative jump at ``distance`` (A).

    ``mask`` (P,) marks the real pairs of a padded list. For MM3*: every vdW pair, at the
    inner softcut radius (``q2mm.mm3.nonbonded.kinks``).
    """

    pairs: Any
    mask: Any
    distance: float


@dataclass(frozen=True)
class MinimizeResult:
    """Outcome of one minimization: coordinates (N, 3), energy, projected max gradient.

    ``pinned`` lists the atom pairs held on a kink at the minimum (empty for a smooth one).
    """

    x: np.ndarray
    energy: float
    max_gradient: float
    iterations: int
    converged: bool
    message: str
    pinned: tuple[tuple[int, int], ...] = ()


# ----------------------------------------------------------------------------- shared (xp = np or jnp)


def rigid_basis(x, mask, weights=None, xp=np, extra=None):
    """The projector onto internal displacements in thin form: (U, dof) with P = diag(dof) - U U^T.

    x is padded (Nmax, 3); U (3Nmax, 6 + K) has orthonormal columns spanning the rigid
    motions of the real atoms (zero columns for dependent generators: a linear molecule
    has five) and ``extra`` (3Nmax, K) directions also projected out (zero columns are
    ignored); dof (3Nmax,) is 1 on real atoms. ``weights`` (Nmax,) = sqrt(masses) gives the
    mass-weighted rigid basis, None the Cartesian. ``xp`` is the array module (np, or jnp
    inside traced code).
    """
    m = mask.astype(x.dtype)
    w = m if weights is None else weights * m
    centre = xp.sum((w**2)[:, None] * x, axis=0) / xp.sum(w**2)
    centred = (x - centre) * m[:, None]
    eye = xp.eye(3, dtype=x.dtype)
    trans = [xp.broadcast_to(e, x.shape) * w[:, None] for e in eye]
    rots = [xp.cross(e, centred) * w[:, None] for e in eye]
    gens = xp.stack([v.reshape(-1) for v in trans + rots], axis=1)
    if extra is not None:
        gens = xp.concatenate([gens, extra], axis=1)
    u, s, _ = xp.linalg.svd(gens, full_matrices=False)
    keep = (s > 1e-6 * xp.max(s)).astype(x.dtype)
    return u * keep, xp.repeat(m, 3)


def rigid_projector(x, mask, weights=None, xp=np, extra=None):
    """P = diag(dof mask) - U U^T as a dense matrix (``rigid_basis``)."""
    u, dof = rigid_basis(x, mask, weights, xp, extra)
    return xp.diag(dof) - u @ u.T


def project(basis, v):
    """P v for the thin projector ``basis`` = (U, dof)."""
    u, dof = basis
    return dof * v - u @ (u.T @ v)


def regularized(basis, h, xp=np):
    """P H P + (I - P): H on the internal space, the identity on the projected-out one.
    O(n^2 k) with the thin projector instead of two dense n^3 products."""
    u, dof = basis
    hd = h * dof[:, None] * dof[None, :]
    v = hd @ u
    php = hd - v @ u.T - u @ v.T + u @ (u.T @ v) @ u.T
    return php + xp.diag(1.0 - dof) + u @ u.T


def _pin_geometry(x, pins, active, xp):
    """Columns (3N, K) of d r_k / dx for the pinned pairs (zero where inactive), their
    distances r (K,), atom indicators (K, N) (+1 at i, -1 at j) and unit vectors (K, 3)."""
    n, k = x.shape[0], pins.shape[0]
    d = x[pins[:, 0]] - x[pins[:, 1]]
    r = xp.sqrt(xp.sum(d * d, axis=-1))
    r = xp.where(active, r, 1.0)  # an unused slot may hold (0, 0)
    unit = d / r[:, None] * active[:, None].astype(x.dtype)
    atoms = xp.arange(n)[None, :]
    sign = (atoms == pins[:, :1]).astype(x.dtype) - (atoms == pins[:, 1:2]).astype(x.dtype)
    columns = (sign[:, :, None] * unit[:, None, :]).reshape(k, 3 * n).T
    return columns, r, sign, unit


def _pin_gram_inverse(columns, active, xp):
    off = 1.0 - active.astype(columns.dtype)
    return xp.linalg.inv(columns.T @ columns + xp.diag(off))


def pinned_parts(x, g, h, mask, pins, active, distance, xp=np):
    """(P, H_L, gap) with the pinned pairs held on the kink; P in thin form (``rigid_basis``).

    P also projects out the pinned distances' gradients (the columns of A); H_L = H + sum
    lam_k Hess(r_k) with the Lagrange multipliers lam = -(A^T A)^-1 A^T g; ``gap`` (K,) is
    r - distance of the active pins (zero elsewhere). Without pins: (rigid P, H, None).
    """
    if pins is None:
        return rigid_basis(x, mask, xp=xp), h, None
    columns, r, sign, unit = _pin_geometry(x, pins, active, xp)
    proj = rigid_basis(x, mask, xp=xp, extra=columns)
    on = active.astype(x.dtype)
    lam = -(_pin_gram_inverse(columns, active, xp) @ (columns.T @ g)) * on
    curvature = xp.zeros_like(h)
    for k in range(pins.shape[0]):  # PIN_SLOTS, a handful
        block = (xp.eye(3, dtype=x.dtype) - xp.outer(unit[k], unit[k])) * (lam[k] / r[k])
        curvature = curvature + xp.kron(xp.outer(sign[k], sign[k]), block)
    return proj, h + curvature, (r - distance) * on


def _restoring_step(x, h_l, mask, pins, active, gap, radius, xp):
    """The displacement that moves the pinned distances onto the kink (A^T s = -gap) at the
    least curvature energy: s = B^-1 A (A^T B^-1 A)^-1 (-gap), B = P_r H_L P_r + (I - P_r)
    with P_r the rigid projector; the least-norm one where B is not positive definite.
    Shortened to ``radius``."""
    columns = _pin_geometry(x, pins, active, xp)[0]
    off = xp.diag(1.0 - active.astype(x.dtype))
    least_norm = columns @ (xp.linalg.inv(columns.T @ columns + off) @ -gap)
    b = regularized(rigid_basis(x, mask, xp=xp), h_l, xp)
    b_inv_a = _positive_definite_solve(0.5 * (b + b.T), columns, xp)
    ok = xp.all(xp.isfinite(b_inv_a))
    b_inv_a = xp.where(ok, b_inv_a, columns)  # a finite stand-in; the least-norm step replaces it
    step = xp.where(ok, b_inv_a @ (xp.linalg.inv(columns.T @ b_inv_a + off) @ -gap), least_norm)
    length = xp.linalg.norm(step)
    return step * xp.minimum(1.0, radius / xp.where(length > 0, length, 1.0))


def pinned_step(x, g, h_l, proj, mask, pins, active, gap, radius, xp=np):
    """Trust-region step on the constraint surface: the restoring step, then the shifted
    Newton step of the tangent space from the gradient the model predicts after it."""
    if pins is None:
        return _shifted_step(g, h_l, proj, radius, xp)
    normal = _restoring_step(x, h_l, mask, pins, active, gap, radius, xp)
    return normal + _shifted_step(g + h_l @ normal, h_l, proj, radius, xp)


def pin_slots(kinks: Kinks | None) -> int:
    """How many pairs can be pinned at once (0: no kinks to pin)."""
    return 0 if kinks is None else min(PIN_SLOTS, int(kinks.pairs.shape[0]))


def closest_to_kink(x, kinks: Kinks, xp=np):
    """The ``pin_slots`` pairs nearest the kink distance (K, 2) and which of them lie within
    PIN_TOLERANCE of it (K,)."""
    pairs = kinks.pairs
    d = x[pairs[:, 0]] - x[pairs[:, 1]]
    gap = xp.abs(xp.sqrt(xp.sum(d * d, axis=-1)) - kinks.distance)
    gap = xp.where(kinks.mask, gap, xp.inf)
    order = xp.argsort(gap)[: pin_slots(kinks)]
    return pairs[order], gap[order] < PIN_TOLERANCE


def _shifted_step(g, h, proj, radius, xp):
    """The trust-region step of the module docstring with array module ``xp`` (np or jnp)."""
    a = regularized(proj, h, xp)
    a = 0.5 * (a + a.T)
    pg = project(proj, g)
    newton = -_positive_definite_solve(a, pg, xp)
    fits = xp.all(xp.isfinite(newton)) & (xp.linalg.norm(newton) <= radius)
    if xp is np:
        return newton if fits else _eigen_step(a, pg, radius, np)
    import jax

    return jax.lax.cond(fits, lambda: newton, lambda: _eigen_step(a, pg, radius, xp))


def _positive_definite_solve(a, b, xp):
    """a^-1 b by Cholesky; NaN where a is not positive definite (as JAX's factor gives)."""
    if xp is np:
        import scipy.linalg

        try:
            return scipy.linalg.cho_solve(scipy.linalg.cho_factor(a, lower=True), b)
        except np.linalg.LinAlgError:
            return np.full(np.shape(b), np.nan)
    import jax.scipy.linalg

    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a, lower=True), b)


def _eigen_step(a, pg, radius, xp):
    values, vectors = xp.linalg.eigh(a)
    coef = vectors.T @ pg
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


def _new_radius(radius, rho, length, opts: MinimizeOptions, xp):
    grow = (rho > 0.75) & (length > 0.99 * radius)
    return xp.where(rho < 0.25, 0.25 * length, xp.where(grow, xp.minimum(2.0 * radius, opts.max_radius), radius))


# ----------------------------------------------------------------------------- NumPy version


def _projector_np(x: np.ndarray) -> np.ndarray:
    return rigid_projector(x, np.ones(len(x), dtype=bool))


def newton_minimize(
    egh: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
    x0: np.ndarray,
    opts: MinimizeOptions = MinimizeOptions(),
    kinks: Kinks | None = None,
) -> MinimizeResult:
    """Minimize from x0 (N, 3); ``egh(x)`` returns energy, gradient (3N,) and Hessian (3N, 3N).

    ``kinks`` (pairs of x's atoms) lets a minimum that settles on a kink be pinned there.
    """
    x = np.array(x0, dtype=np.float64)
    mask = np.ones(len(x), dtype=bool)
    energy, g, h = egh(x)
    radius = opts.initial_radius
    pins = active = None
    if pin_slots(kinks) == 0:
        kinks = None
    else:
        pins, active = np.zeros((pin_slots(kinks), 2), dtype=np.int64), np.zeros(pin_slots(kinks), dtype=bool)
    distance = kinks.distance if kinks is not None else 0.0
    for it in range(opts.max_iter + 1):
        live = pins if active is not None and active.any() else None  # skip the pin algebra until pinned
        proj, h_l, gap = pinned_parts(x, g, h, mask, live, active, distance)
        gmax = float(np.max(np.abs(project(proj, g))))
        if not np.isfinite(energy) or not np.isfinite(gmax):
            return MinimizeResult(x, float(energy), gmax, it, False, "non-finite energy or gradient")
        if kinks is not None and radius < STALL_RADIUS and gmax >= opts.gtol:
            candidates, near = closest_to_kink(x, kinks)
            if near.any():
                pins, active, radius = candidates, near, opts.initial_radius
                live = pins
                proj, h_l, gap = pinned_parts(x, g, h, mask, live, active, distance)
                gmax = float(np.max(np.abs(project(proj, g))))
        pinned = _pinned_list(pins, active)
        if gmax < opts.gtol:
            on_kink = f" with atom pairs {list(pinned)} (0-based) on the {distance:g} A kink" if pinned else ""
            message = "converged" + on_kink
            return MinimizeResult(x, float(energy), gmax, it, True, message, pinned)
        if it == opts.max_iter:
            break
        step = pinned_step(x, g, h_l, proj, mask, live, active, gap, radius)
        predicted = float(g @ step + 0.5 * step @ h_l @ step)
        trial = x + step.reshape(x.shape)
        e_t, g_t, h_t = egh(trial)
        actual = float(e_t - energy)
        length = float(np.linalg.norm(step))
        accepted = np.isfinite(e_t) and actual <= ENERGY_SLACK * (1.0 + abs(energy))
        rho = actual / predicted if predicted < 0 else (1.0 if accepted else 0.0)
        radius = float(_new_radius(radius, rho if accepted else 0.0, length, opts, np))
        if accepted:
            x, energy, g, h = trial, e_t, g_t, h_t
    return MinimizeResult(
        x,
        float(energy),
        gmax,
        opts.max_iter,
        False,
        f"not converged in {opts.max_iter} iterations (max |g| {gmax:.3e} kcal/mol/A)",
        _pinned_list(pins, active),
    )


def _pinned_list(pins, active) -> tuple[tuple[int, int], ...]:
    if pins is None:
        return ()
    return tuple((int(i), int(j)) for (i, j), on in zip(np.asarray(pins), np.asarray(active)) if on)


# ----------------------------------------------------------------------------- JAX version


def jax_projector(x, mask, weights=None):
    """``rigid_projector`` on JAX arrays (traceable)."""
    import jax.numpy as jnp

    return rigid_projector(x, mask, weights, jnp)


class TrustRegionState(NamedTuple):
    """The state of the JAX trust-region loop between steps (arrays; a NamedTuple is a pytree)."""

    x: Any  # current point, padded (Nmax, 3) A
    e: Any  # its energy (kcal/mol)
    g: Any  # gradient (3Nmax,)
    h: Any  # exact Hessian (3Nmax, 3Nmax)
    proj: Any  # rigid (and pinned-pair) projector in thin form (basis, diagonal)
    h_l: Any  # the Hessian of the Lagrangian where pairs are pinned, else h
    gap: Any  # pinned pairs' distance to the kink (K,)
    pins: Any  # candidate pinned pairs (K, 2)
    active: Any  # which of them are pinned (K,)
    radius: Any  # trust radius (A)
    it: Any  # iterations done (the first pass, it = 0, only evaluates x0)
    gmax: Any  # max |P g| at x


class Proposal(NamedTuple):
    """The loop's next trial point x + s, the quadratic model's predicted energy change and |s|."""

    trial: Any  # (Nmax, 3) A
    predicted: Any
    length: Any


def trust_region_start(x0, opts: MinimizeOptions, kinks: Kinks | None, xp=np) -> tuple[TrustRegionState, Proposal]:
    """The loop's first state and proposal (x0 itself, a zero step) for padded x0 (Nmax, 3),
    as ``xp`` arrays (np: host arrays for a compiled ``TrustRegion.advance``)."""
    n, dtype, slots = x0.size, x0.dtype, pin_slots(kinks)
    zero = xp.asarray(0.0, dtype)
    state = TrustRegionState(
        x=x0,
        e=xp.asarray(np.inf, dtype),
        g=xp.zeros(n, dtype),
        h=xp.eye(n, dtype=dtype),
        proj=(xp.zeros((n, 6 + slots), dtype), xp.zeros(n, dtype)),
        h_l=xp.eye(n, dtype=dtype),
        gap=xp.zeros(slots, dtype),
        pins=xp.zeros((slots, 2), dtype=kinks.pairs.dtype if kinks is not None and slots else np.int32),
        active=xp.zeros(slots, dtype=bool),
        radius=xp.asarray(opts.initial_radius, dtype),
        it=xp.asarray(0),
        gmax=xp.asarray(np.inf, dtype),
    )
    return state, Proposal(x0, zero, zero)


class TrustRegion:
    """The JAX trust-region loop one step at a time (traceable, padded atoms frozen by ``mask``).

    ``advance(state, proposal, e, g, h)`` takes the energy, gradient and Hessian at
    ``proposal.trial``, accepts or rejects it, updates the radius, the projector and the
    pins, and returns the new state, the next proposal and whether to go on. ``jax_newton``
    runs it in a ``lax.while_loop``; a caller can instead run it as one compiled program per
    step from a host loop and evaluate the engine between steps with programs of its own
    (``JaxLoss``: the engine's Hessian compiled once for both objectives).
    """

    def __init__(self, mask, opts: MinimizeOptions, max_iter: int, kinks: Kinks | None):
        self.mask, self.opts, self.max_iter = mask, opts, max_iter
        self.slots = pin_slots(kinks)
        self.kinks = kinks if self.slots else None
        self.distance = kinks.distance if kinks is not None else 0.0

    def _parts(self, x, g, h, pins, active):
        import jax
        import jax.numpy as jnp

        n, mask = x.size, self.mask

        def free():  # the unpinned projector keeps the pinned one's shape (zero extra columns are dropped)
            basis = rigid_basis(x, mask, xp=jnp, extra=jnp.zeros((n, self.slots), x.dtype))
            return basis, h, jnp.zeros(self.slots, x.dtype)

        if self.kinks is None:
            return free()
        pinned = lambda: pinned_parts(x, g, h, mask, pins, active, self.distance, jnp)  # noqa: E731
        return jax.lax.cond(jnp.any(active), pinned, free)

    def propose(self, state: TrustRegionState) -> Proposal:
        """The trust-region step from ``state`` (``pinned_step`` where pairs are pinned)."""
        import jax
        import jax.numpy as jnp

        x, g, h_l, proj, radius = state.x, state.g, state.h_l, state.proj, state.radius
        free = lambda: _shifted_step(g, h_l, proj, radius, jnp)  # noqa: E731
        if self.kinks is None:
            step = free()
        else:
            pinned = lambda: pinned_step(  # noqa: E731
                x, g, h_l, proj, self.mask, state.pins, state.active, state.gap, radius, jnp
            )
            step = jax.lax.cond(jnp.any(state.active), pinned, free)
        predicted = g @ step + 0.5 * step @ h_l @ step
        return Proposal(x + step.reshape(x.shape), predicted, jnp.linalg.norm(step))

    def accept(self, state: TrustRegionState, proposal: Proposal, e_t, g_t, h_t) -> TrustRegionState:
        """The state after evaluating ``proposal`` (energy, gradient (Nmax, 3) or (3Nmax,),
        Hessian in either layout); the first pass (it = 0) takes x0 as it is."""
        import jax
        import jax.numpy as jnp

        opts, n = self.opts, state.x.size
        x, e, g, h, it, pins, active = state.x, state.e, state.g, state.h, state.it, state.pins, state.active
        first = it == 0
        g_t, h_t = g_t.reshape(n), h_t.reshape(n, n)
        actual = e_t - e
        predicted = proposal.predicted
        ok = jnp.isfinite(e_t) & (first | (actual <= ENERGY_SLACK * (1.0 + jnp.abs(e))))
        rho = jnp.where(predicted < 0, actual / jnp.where(predicted < 0, predicted, -1.0), 1.0)
        rho = jnp.where(ok, rho, 0.0)
        radius = jnp.where(first, state.radius, _new_radius(state.radius, rho, proposal.length, opts, jnp))
        trial = proposal.trial
        x, e, g, h = [jnp.where(ok, new, old) for new, old in ((trial, x), (e_t, e), (g_t, g), (h_t, h))]
        proj, h_l, gap = self._parts(x, g, h, pins, active)
        gmax = jnp.where(jnp.isfinite(e), jnp.max(jnp.abs(project(proj, g))), jnp.inf)
        if self.kinks is not None:
            stalled = (radius < STALL_RADIUS) & (gmax >= opts.gtol)
            kinks = self.kinks
            candidates, near = jax.lax.cond(
                stalled, lambda: closest_to_kink(x, kinks, jnp), lambda: (pins, jnp.zeros_like(active))
            )
            pin = stalled & jnp.any(near)
            pins = jnp.where(pin, candidates, pins)
            active = jnp.where(pin, near, active)
            radius = jnp.where(pin, opts.initial_radius, radius)
            proj, h_l, gap = jax.lax.cond(pin, lambda: self._parts(x, g, h, pins, active), lambda: (proj, h_l, gap))
            gmax = jnp.where(jnp.isfinite(e), jnp.max(jnp.abs(project(proj, g))), jnp.inf)
        return TrustRegionState(x, e, g, h, proj, h_l, gap, pins, active, radius, it + 1, gmax)

    def running(self, state: TrustRegionState):
        """Whether another step is due: not converged, finite, iterations left."""
        import jax.numpy as jnp

        gmax = state.gmax
        return (state.it <= self.max_iter) & (gmax >= self.opts.gtol) & jnp.isfinite(gmax)

    def advance(self, state: TrustRegionState, proposal: Proposal, e_t, g_t, h_t):
        """One step: (new state, next proposal, go on)."""
        state = self.accept(state, proposal, e_t, g_t, h_t)
        return state, self.propose(state), self.running(state)


def _jax_trust_region(evaluate, x0, mask, opts: MinimizeOptions, max_iter, kinks: Kinks | None, iterate=True):
    """The trust-region loop in a ``lax.while_loop``; ``evaluate(x)`` returns energy, gradient
    and exact Hessian (traced once). Returns the final ``TrustRegionState``. ``iterate`` (a
    traced bool) False stops after the first pass, which only evaluates x0: the state then
    holds the energy, gradient and Hessian at x0. The next step is proposed only while the
    loop goes on (the last state's proposal was never used)."""
    import jax
    import jax.numpy as jnp

    loop = TrustRegion(mask, opts, max_iter, kinks)
    state, proposal = trust_region_start(x0, opts, kinks, jnp)

    def no_step(state: TrustRegionState) -> Proposal:
        zero = jnp.zeros((), x0.dtype)
        return Proposal(state.x, zero, zero)

    def body(carry):
        state, proposal, _ = carry
        state = loop.accept(state, proposal, *evaluate(proposal.trial))
        go = loop.running(state) & iterate
        return state, jax.lax.cond(go, loop.propose, no_step, state), go

    return jax.lax.while_loop(lambda carry: carry[2], body, (state, proposal, jnp.asarray(True)))[0]


def minimum_of(state: TrustRegionState, opts: MinimizeOptions) -> JaxMinimum:
    """The loop's final state as a ``JaxMinimum``."""
    import jax.numpy as jnp

    converged = (state.gmax < opts.gtol) & jnp.isfinite(state.e)
    return JaxMinimum(state.x, state.e, state.gmax, state.it - 1, converged, state.h_l, state.pins, state.active)


@dataclass(frozen=True)
class JaxMinimum:
    """``jax_newton``'s result (JAX arrays): minimum, energy, max |P g|, iterations, converged,
    the Hessian for the implicit derivative (of the Lagrangian where pairs are pinned) and the
    pinned pairs (K, 2), K = ``pin_slots(kinks)``, with their active flags."""

    x: Any
    energy: Any
    max_gradient: Any
    iterations: Any
    converged: Any
    hessian: Any
    pins: Any
    active: Any


def jax_newton(
    energy_fn,
    x0,
    p,
    topo,
    mask,
    opts: MinimizeOptions = MinimizeOptions(),
    derivatives_fn=None,
    kinks: Kinks | None = None,
) -> JaxMinimum:
    """Minimize ``energy_fn(x, p, topo)`` over real atoms of padded x0 (Nmax, 3), pure JAX.

    Same algorithm as ``newton_minimize``; not differentiable itself (see
    ``make_implicit_minimum``). ``derivatives_fn(x, p, topo)`` (the engine's
    ``energy_gradient_hessian``) gives the energy, gradient and Hessian where the model has
    it; by default autodiff of ``energy_fn``.
    """
    return minimum_of(jax_newton_state(energy_fn, x0, p, topo, mask, opts, derivatives_fn, kinks), opts)


def jax_newton_state(
    energy_fn, x0, p, topo, mask, opts: MinimizeOptions, derivatives_fn=None, kinks: Kinks | None = None, iterate=True
) -> TrustRegionState:
    """``jax_newton``'s final loop state; ``iterate`` False: the energy, gradient and Hessian
    at x0 alone (``_jax_trust_region``)."""
    import jax

    n = x0.size

    def autodiff(x, p, topo):
        e, g = jax.value_and_grad(energy_fn)(x, p, topo)
        return e, g, jax.hessian(energy_fn)(x, p, topo)

    derivatives = derivatives_fn or autodiff

    def egh(x):
        e, g, h = derivatives(x, p, topo)
        return e, g.reshape(-1), h.reshape(n, n)

    return _jax_trust_region(egh, x0, mask, opts, opts.max_iter, kinks, iterate)


def stepwise_newton(advance, evaluate, start: tuple[TrustRegionState, Proposal]) -> TrustRegionState:
    """``jax_newton``'s loop driven from the host: ``evaluate(x)`` gives the energy, gradient
    and Hessian at each trial point, ``advance`` is ``TrustRegion.advance`` (compiled once by
    the caller); one host synchronization per step (whether to go on)."""
    state, proposal = start
    while True:
        state, proposal, go = advance(state, proposal, *evaluate(proposal.trial))
        if not bool(go):
            return state


def make_implicit_minimum(energy_fn, gradient_fn=None):
    """x* with derivatives by implicit differentiation:
    ``implicit_minimum(p, x_star, h_star, topo, mask, pins, active)``.

    Forward: returns the converged x_star unchanged. Backward: dx*/dp = -H^+ d(grad_x E)/dp with
    H^+ the inverse of the Hessian ``h_star`` (the minimizer's, at x_star; (3Nmax, 3Nmax), not
    differentiated) on the internal (non-rigid, real-atom) subspace, less the directions of
    the pinned pairs' distances (``pins`` (K, 2), ``active`` (K,); the kink holds them).
    ``gradient_fn(x, p, topo)`` (default ``jax.grad(energy_fn)``) gives grad_x E, e.g. one
    cheaper to differentiate in p.
    """
    import jax
    import jax.numpy as jnp

    gradient_fn = gradient_fn or jax.grad(energy_fn)

    @jax.custom_vjp
    def implicit_minimum(p, x_star, h_star, topo, mask, pins, active):
        return x_star

    def fwd(p, x_star, h_star, topo, mask, pins, active):
        return x_star, (p, x_star, h_star, topo, mask, pins, active)

    def bwd(res, x_bar):
        p, xs, h, topo, mask, pins, active = res
        columns = _pin_geometry(xs, pins, active, jnp)[0]
        proj = rigid_basis(xs, mask, xp=jnp, extra=columns)
        a = regularized(proj, h, jnp)
        w = jnp.linalg.solve(0.5 * (a + a.T), project(proj, x_bar.reshape(-1))).reshape(xs.shape)
        _, vjp = jax.vjp(lambda q: gradient_fn(xs, q, topo), p)
        (p_bar,) = vjp(w)
        return -p_bar, jnp.zeros_like(xs), jnp.zeros_like(h), None, None, None, None

    implicit_minimum.defvjp(fwd, bwd)
    return implicit_minimum


def make_implicit_minimum_jvp(energy_fn, gradient_fn=None):
    """``make_implicit_minimum`` for Jacobians: the same x* with a forward-mode rule,
    dx* = -H^+ P d(grad_x E)/dp . dp, linear in dp, so ``jax.jacfwd`` pushes every parameter
    direction through one factorization of the Hessian (a batched right-hand side) and
    ``jax.jacrev`` transposes it (one cotangent per residual row). ``gradient_fn(x, p, topo)``
    (default ``jax.grad(energy_fn)``) gives grad_x E, e.g. one cheaper to differentiate in p."""
    import jax
    import jax.numpy as jnp

    gradient_fn = gradient_fn or jax.grad(energy_fn)

    @jax.custom_jvp
    def implicit_minimum(p, x_star, h_star, topo, mask, pins, active):
        return x_star

    @implicit_minimum.defjvp
    def jvp(primals, tangents):
        p, xs, h, topo, mask, pins, active = primals
        columns = _pin_geometry(xs, pins, active, jnp)[0]
        proj = rigid_basis(xs, mask, xp=jnp, extra=columns)
        a = regularized(proj, h, jnp)
        _, dg = jax.jvp(lambda q: gradient_fn(xs, q, topo).reshape(-1), (p,), (tangents[0],))
        dx = -jnp.linalg.solve(0.5 * (a + a.T), project(proj, dg))
        return xs, dx.reshape(xs.shape)

    return implicit_minimum
