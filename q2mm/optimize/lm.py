"""Bound-constrained Levenberg-Marquardt with an active set (the least-squares method's ``lm`` solver).

Minimizes |r(z)|^2 over the unit box 0 <= z <= 1. Each iteration takes the Jacobian J at z
and the half gradient g = J^T r. A variable on a bound whose descent direction (-g) leaves the
box is held there (the active set); the others take the damped Gauss-Newton step

    delta = argmin |r + J_F delta|^2 + lam |D_F delta|^2,

solved through the SVD of J_F D_F^-1 (exact also where J is rank-deficient), with D Moré's
scaling (each column's largest norm seen), so the step does not depend on parameter units.
The step is projected onto the box and judged by rho = actual / predicted reduction of the
projected step: accepted for rho > 1e-4 with lam scaled by max(1/3, 1 - (2 rho - 1)^3), else
lam doubles (then quadruples, ...) and the step is solved again without a new Jacobian
(Nielsen's update, as in Madsen, Nielsen and Tingleff, "Methods for non-linear least squares
problems", 2004). Unlike an interior method (SciPy's ``trf`` shrinks steps towards a
bound it approaches), variables reach their bounds in one step and leave them when the
gradient turns; fits whose optimum has many parameters at a bound converge in a few
iterations.

Stops (SciPy ``least_squares``' meanings): ``ftol`` an accepted step lowered the score by
less than ftol (relative) with rho > 0.25; ``xtol`` the step is below xtol (|z| + xtol);
``gtol`` every free column is within gtol of orthogonal to r (MINPACK's cosine test);
``max_nfev`` residual evaluations; no acceptable step (lam above 1e16).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LAMBDA0 = 1e-3  # initial damping relative to the scaled J^T J (columns of norm 1)
LAMBDA_MAX = 1e16  # no acceptable step below this damping: stop
RHO_ACCEPT = 1e-4  # a step is taken when it realizes this fraction of its predicted reduction
RHO_FTOL = 0.25  # ftol stops only where the model agreed this well (SciPy's rule)


@dataclass(frozen=True)
class LMResult:
    """Where the iterations ended and why."""

    x: np.ndarray
    score: float
    message: str
    nfev: int
    njev: int
    iterations: int


def _step(jac: np.ndarray, r: np.ndarray, d: np.ndarray, free: np.ndarray, lam: float, svd) -> np.ndarray:
    """The damped step on the free variables (zero on the held ones) from the SVD of J_F / d_F."""
    u, s, vt = svd
    step = np.zeros(jac.shape[1])
    step[free] = -(vt.T @ ((s / (s**2 + lam)) * (u.T @ r))) / d[free]
    return step


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
    lam, nu = LAMBDA0, 2.0
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
        svd = np.linalg.svd(jac[:, free] / d[free], full_matrices=False)
        while True:
            if nfev >= max_nfev:
                return LMResult(z, f, f"max_nfev ({max_nfev}) reached ({iterations} it)", nfev, njev, iterations)
            if lam > LAMBDA_MAX:
                return LMResult(z, f, f"no acceptable step (damping above {LAMBDA_MAX:g})", nfev, njev, iterations)
            trial = np.clip(z + _step(jac, r, d, free, lam, svd), 0.0, 1.0)
            s = trial - z
            if np.linalg.norm(s) <= xtol * (xtol + np.linalg.norm(z)):
                return LMResult(z, f, f"xtol: step below {xtol:g} ({iterations} it)", nfev, njev, iterations)
            linear = r + jac @ s
            predicted = f - float(linear @ linear)
            r_trial = residuals(trial)
            nfev += 1
            f_trial = float(r_trial @ r_trial)
            rho = (f - f_trial) / predicted if predicted > 0.0 else -1.0
            if rho > RHO_ACCEPT:
                break
            lam, nu = lam * nu, 2.0 * nu
        reduction, f_old = f - f_trial, f
        z, r, f = trial, r_trial, f_trial
        lam, nu = lam * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), 2.0
        iterations += 1
        jac = jacobian(z)  # also makes the gradient at z known to the callback's caller
        njev += 1
        if callback is not None:
            callback(z, f)
        if reduction < ftol * f_old and rho > RHO_FTOL:
            return LMResult(
                z, f, f"ftol: relative reduction {reduction / f_old:.2e} ({iterations} it)", nfev, njev, iterations
            )
