"""Bound-constrained Levenberg-Marquardt in a trust region (the least-squares method's ``lm`` solver).

Minimizes |r(z)|^2 over the unit box 0 <= z <= 1. At z, with the Jacobian J, each trial step is
the exact minimizer of the damped Gauss-Newton model inside the box,

    s(lam) = argmin |r + J s|^2 + lam |D s|^2   subject to   0 <= z + s <= 1,

a bounded-variable least-squares problem (SciPy's ``lsq_linear``, ``method="bvls"``) solved on
the small triangle R of J = Q R (|r + J s|^2 = |Q^T r + R s|^2 + const). D is Moré's scaling
(each column's largest norm seen), so steps do not depend on parameter units. The subproblem's
own active set holds a variable on its bound while the model pushes it outward and frees it
when the model's gradient turns: variables reach their bounds in one step (an interior method
such as SciPy's ``trf`` shrinks steps towards a bound it nears), so fits whose optimum has many
parameters at a bound converge in a few iterations. Clipping the unbounded step to the box, as
this solver did before, can make a step its own model says raises the score (8 of 21 rejected
steps from rh-enamide's published start).

The damping follows Moré's trust region (J. J. Moré, "The Levenberg-Marquardt algorithm:
implementation and theory", Lecture Notes in Mathematics 630, 1978, as in MINPACK's lmder):
lam is where |D s(lam)| is within 10 % of the radius Delta (|D s(lam)| falls monotonically with
lam, also inside a box, so a bracketing search in log lam finds it), or ~0 where the undamped
bounded step is shorter. A step is judged by rho = actual / predicted reduction and taken for
rho > 1e-4. Where rho < 0.25, Delta becomes t |D s|, t the minimizer of the quadratic through
f(z), the slope of f along s and f(z + s), clamped to [0.1, 0.5] (0.5 where the score fell);
where rho > 0.75 it grows to 2 |D s|. One rejection thus shortens the step 2-10x; doubling
lam instead (Nielsen's rule, used before) barely shortens it while lam lies below the large
squared singular values of the scaled J (condition ~1e14 on rh-enamide), so a step across a
cliff in the score (a structure whose minimization switches minimum) cost several rejections
in a row. The first trial takes lam = 1e-3 (the scaled J's columns have norm <= 1); its length
is the first radius.

Stops (SciPy ``least_squares``' meanings): ``ftol`` an accepted step lowered the score by
less than ftol (relative) with rho > 0.25 (the Jacobian there is not computed: the caller
asks for it if it needs it); ``xtol`` the step is below xtol (|z| + xtol); ``gtol`` every
free column is within gtol of orthogonal to r (MINPACK's cosine test); ``max_nfev`` residual
evaluations; no acceptable step (damping above 1e16).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize

LAMBDA0 = 1e-3  # the first trial's damping relative to the scaled J^T J (columns of norm <= 1)
LAMBDA_MIN = 1e-12  # the "undamped" step's damping: keeps the bounded subproblem well posed
LAMBDA_MAX = 1e16  # no acceptable step below this damping: stop
RHO_ACCEPT = 1e-4  # a step is taken when it realizes this fraction of its predicted reduction
RHO_FTOL = 0.25  # ftol stops only where the model agreed this well (SciPy's rule)
RHO_SHRINK, RHO_GROW = 0.25, 0.75  # below: the radius shrinks; above: it grows (Moré)
SHRINK_MIN, SHRINK_MAX = 0.1, 0.5  # the clamp of the quadratic-interpolation factor
RADIUS_RTOL = 0.1  # |D s| within this fraction of the radius is a step for that radius
RADIUS_SOLVES = 30  # bounded subproblems solved at most to find lam for one radius


@dataclass(frozen=True)
class LMResult:
    """Where the iterations ended and why."""

    x: np.ndarray
    score: float
    message: str
    nfev: int
    njev: int
    iterations: int


class _Model:
    """The damped Gauss-Newton model |r + J s|^2 + lam |D s|^2 at z, minimized over the box."""

    def __init__(self, jac: np.ndarray, r: np.ndarray, z: np.ndarray, d: np.ndarray):
        self.z, self.d = z, d
        self.seen = np.linalg.norm(jac, axis=0) > 0.0  # a column the data do not see never moves
        q, self.tri = np.linalg.qr(jac[:, self.seen] / d[self.seen])
        self.c = q.T @ r
        self.lower, self.upper = -z[self.seen] * d[self.seen], (1.0 - z[self.seen]) * d[self.seen]

    def step(self, lam: float) -> tuple[np.ndarray, float]:
        """The trial point z + s(lam) (inside the box, exactly on a bound where held) and |D s|."""
        k = self.tri.shape[1]
        a = np.vstack([self.tri, math.sqrt(lam) * np.eye(k)])
        b = -np.concatenate([self.c, np.zeros(k)])
        y = scipy.optimize.lsq_linear(a, b, bounds=(self.lower, self.upper), method="bvls", tol=1e-12).x
        trial = self.z.copy()
        trial[self.seen] += y / self.d[self.seen]
        width = self.upper - self.lower
        trial[self.seen] = np.where(y <= self.lower + 1e-12 * width, 0.0, trial[self.seen])
        trial[self.seen] = np.where(y >= self.upper - 1e-12 * width, 1.0, trial[self.seen])
        trial = np.clip(trial, 0.0, 1.0)
        return trial, float(np.linalg.norm(self.d * (trial - self.z)))

    def step_in_radius(self, radius: float, lam: float) -> tuple[np.ndarray, float, float]:
        """The step whose length is within RADIUS_RTOL of ``radius`` (or the undamped one where that
        is shorter), searched from ``lam`` by bracketing and log-log interpolation: (trial, length, lam)."""
        too_long: tuple[float, float] | None = None  # (log lam, log length) of a step longer than wanted
        too_short: tuple[float, float] | None = None
        target = math.log(radius)
        for _ in range(RADIUS_SOLVES):
            trial, length = self.step(lam)
            if abs(length - radius) <= RADIUS_RTOL * radius or length == 0.0:
                break
            if length < radius and lam <= LAMBDA_MIN or length > radius and lam > LAMBDA_MAX:
                break
            here = (math.log(lam), math.log(length))
            if length > radius:
                too_long = here
            else:
                too_short = here
            if too_long is not None and too_short is not None:
                (x0, y0), (x1, y1) = too_long, too_short
                t = (y0 - target) / (y0 - y1) if y0 > y1 else 0.5
                lam = math.exp(x0 + min(max(t, 0.1), 0.9) * (x1 - x0))
            else:  # far from lam >> s^2, |D s| falls like 1/lam: at least 4x per solve
                factor = max(4.0, (length / radius) ** 2, (radius / length) ** 2)
                lam = lam * factor if length > radius else max(lam / factor, LAMBDA_MIN)
        return trial, length, lam


def _shrink_factor(f: float, f_trial: float, slope: float) -> float:
    """Where the quadratic through f(z), its slope along s and f(z + s) has its minimum (in
    units of s), clamped to [SHRINK_MIN, SHRINK_MAX]; SHRINK_MAX where the score fell."""
    curvature = f_trial - f - slope
    if f_trial <= f or curvature <= 0.0:
        return SHRINK_MAX
    return min(max(-slope / (2.0 * curvature), SHRINK_MIN), SHRINK_MAX)


def bounded_lm(
    residuals: Callable[[np.ndarray], np.ndarray],
    jacobian: Callable[[np.ndarray], np.ndarray],
    z0: np.ndarray,
    *,
    ftol: float,
    xtol: float,
    gtol: float,
    max_nfev: int,
    callback: Callable[[np.ndarray, float], None] | None = None,
) -> LMResult:
    """Levenberg-Marquardt on |r(z)|^2 in the unit box from ``z0`` (see the module docstring);
    ``callback(z, score)`` after the start and after every accepted step."""
    z = np.clip(np.asarray(z0, float), 0.0, 1.0)
    r = residuals(z)
    f = float(r @ r)
    jac = jacobian(z)
    nfev, njev, iterations = 1, 1, 0
    if callback is not None:
        callback(z, f)
    d = np.zeros(z.size)
    lam, radius = LAMBDA0, math.nan  # the radius is the first trial's length
    while True:
        norms = np.linalg.norm(jac, axis=0)
        d = np.maximum(d, norms)
        d[d == 0.0] = 1.0
        g = jac.T @ r
        free = ~(((z <= 0.0) & (g > 0.0)) | ((z >= 1.0) & (g < 0.0)))
        cosine = np.abs(g[free]) / np.maximum(norms[free] * np.sqrt(f), np.finfo(float).tiny)
        if f == 0.0 or not free.any() or cosine.max() <= gtol:
            return LMResult(
                z, f, f"gtol: gradient orthogonal to the residuals ({iterations} it)", nfev, njev, iterations
            )
        model = _Model(jac, r, z, d)
        while True:
            if nfev >= max_nfev:
                return LMResult(z, f, f"max_nfev ({max_nfev}) reached ({iterations} it)", nfev, njev, iterations)
            if math.isnan(radius):
                trial, length = model.step(lam)
                radius = length
            else:
                trial, length, lam = model.step_in_radius(radius, lam)
            s = trial - z
            if lam > LAMBDA_MAX:
                return LMResult(z, f, f"no acceptable step (damping above {LAMBDA_MAX:g})", nfev, njev, iterations)
            if np.linalg.norm(s) <= xtol * (xtol + np.linalg.norm(z)):
                return LMResult(z, f, f"xtol: step below {xtol:g} ({iterations} it)", nfev, njev, iterations)
            linear = r + jac @ s
            predicted = f - float(linear @ linear)
            if predicted <= 0.0:  # rounding: the model sees no descent; shorten without evaluating
                radius = SHRINK_MIN * length
                continue
            r_trial = residuals(trial)
            nfev += 1
            f_trial = float(r_trial @ r_trial)
            rho = (f - f_trial) / predicted
            if rho < RHO_SHRINK:
                radius = _shrink_factor(f, f_trial, 2.0 * float(r @ (jac @ s))) * length
            elif rho > RHO_GROW:
                radius = max(radius, 2.0 * length)
            if rho > RHO_ACCEPT:
                break
        reduction, f_old = f - f_trial, f
        z, r, f = trial, r_trial, f_trial
        iterations += 1
        if reduction < ftol * f_old and rho > RHO_FTOL:
            if callback is not None:
                callback(z, f)
            return LMResult(
                z, f, f"ftol: relative reduction {reduction / f_old:.2e} ({iterations} it)", nfev, njev, iterations
            )
        jac = jacobian(z)  # also makes the gradient at z known to the callback's caller
        njev += 1
        if callback is not None:
            callback(z, f)
