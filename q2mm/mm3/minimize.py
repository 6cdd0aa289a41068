"""Geometry minimization with the exact MM3* Hessian: trust-region Newton, rigid modes removed.

Each step works in the (3n - 6)-dimensional space orthogonal to the three translations and
three rotations of the real atoms (padded atoms never move). The step solves
(H + mu I) s = -g in that space, with mu >= 0 chosen so that ||s|| fits the trust radius and
H + mu I is positive definite (eigen-decomposition; the systems are small). The radius grows
or shrinks with the ratio of actual to predicted decrease. Convergence: the Euclidean norm of
the Cartesian gradient of the real atoms below ``gtol`` (kcal/mol/A).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from q2mm.errors import ConvergenceError

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MinimizationResult:
    """Outcome of one minimization; ``x`` has the input's shape (padded rows untouched)."""

    x: np.ndarray
    energy: float
    gradient_norm: float
    iterations: int
    converged: bool
    message: str

    def require(self) -> "MinimizationResult":
        """Raise ConvergenceError unless converged; return self otherwise."""
        if not self.converged:
            raise ConvergenceError(self.message)
        return self


def rigid_modes(x: np.ndarray) -> np.ndarray:
    """Orthonormal basis (3n, r) of the translations and rotations of atoms x (n, 3); r = 5 or 6."""
    n = len(x)
    centred = x - x.mean(axis=0)
    modes = []
    for axis in range(3):
        t = np.zeros((n, 3))
        t[:, axis] = 1.0
        modes.append(t.ravel())
        unit = np.zeros(3)
        unit[axis] = 1.0
        modes.append(np.cross(unit, centred).ravel())
    u, s, _ = np.linalg.svd(np.array(modes).T, full_matrices=False)
    return u[:, s > 1e-8 * s.max()]


def internal_basis(x: np.ndarray) -> np.ndarray:
    """Orthonormal basis (3n, 3n - r) of the complement of the rigid modes."""
    v = rigid_modes(x)
    q, _ = np.linalg.qr(np.hstack([v, np.eye(v.shape[0])]))
    return q[:, v.shape[1]:]


def _trust_step(evals: np.ndarray, evecs: np.ndarray, g: np.ndarray, radius: float) -> np.ndarray:
    """Minimizer of g.s + s.H.s/2 with ||s|| <= radius (H = evecs diag(evals) evecs^T)."""
    gc = evecs.T @ g
    floor = max(0.0, -evals.min()) + 1e-10 * max(1.0, abs(evals).max())
    step = lambda mu: -(evecs @ (gc / (evals + mu)))
    if evals.min() > 0 and np.linalg.norm(step(0.0)) <= radius:
        return step(0.0)
    lo, hi = floor, floor + np.linalg.norm(g) / radius + abs(evals).max()
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.linalg.norm(step(mid)) > radius:
            lo = mid
        else:
            hi = mid
    return step(hi)


def _acceptance(e: float, e_trial: float, predicted: float, gnorm: float, trial_gradient) -> float:
    """Actual/predicted decrease; below float64 resolution of the energy, judge by the gradient."""
    if not np.isfinite(e_trial):
        return -1.0
    if predicted > -1e-11 * max(1.0, abs(e)):
        return 1.0 if np.linalg.norm(trial_gradient()) < gnorm else -1.0
    return (e_trial - e) / predicted


def _new_radius(radius: float, ratio: float, step_norm: float) -> float:
    if ratio < 0.25:
        return 0.25 * step_norm
    if ratio > 0.75 and step_norm > 0.9 * radius:
        return min(2.0 * radius, 1.0)
    return radius


def minimize_coords(
    energy: ArrayFn,
    gradient: ArrayFn,
    hessian: ArrayFn,
    x0: np.ndarray,
    n_atoms: int | None = None,
    gtol: float = 1e-8,
    max_iter: int = 200,
    radius: float = 0.3,
) -> MinimizationResult:
    """Minimize energy(x) over the first ``n_atoms`` rows of x0 (others frozen).

    ``gradient(x)`` returns (N, 3) and ``hessian(x)`` the (N, 3, N, 3) or (3N, 3N) Hessian of
    the full padded x; energies in kcal/mol, lengths in A.
    """
    x = np.array(x0, dtype=np.float64)
    n = len(x) if n_atoms is None else n_atoms
    e = float(energy(x))
    for it in range(max_iter + 1):
        g = np.asarray(gradient(x)).reshape(len(x), 3)[:n].ravel()
        gnorm = float(np.linalg.norm(g))
        if not np.isfinite(gnorm) or not np.isfinite(e):
            return MinimizationResult(x, e, gnorm, it, False, f"non-finite energy or gradient at iteration {it}")
        if gnorm < gtol:
            return MinimizationResult(x, e, gnorm, it, True, f"gradient norm {gnorm:.2e} < {gtol:.0e} in {it} steps")
        if it == max_iter:
            break
        basis = internal_basis(x[:n])
        h = np.asarray(hessian(x)).reshape(3 * len(x), 3 * len(x))[: 3 * n, : 3 * n]
        hr = basis.T @ (0.5 * (h + h.T)) @ basis
        gr = basis.T @ g
        evals, evecs = np.linalg.eigh(hr)
        while True:
            sr = _trust_step(evals, evecs, gr, radius)
            trial = x.copy()
            trial[:n] += (basis @ sr).reshape(n, 3)
            e_trial = float(energy(trial))
            ratio = _acceptance(e, e_trial, gr @ sr + 0.5 * sr @ (hr @ sr), gnorm,
                                lambda: np.asarray(gradient(trial)).reshape(len(x), 3)[:n])
            radius = _new_radius(radius, ratio, float(np.linalg.norm(sr)))
            if ratio > 0.0:
                x, e = trial, e_trial
                break
            if radius < 1e-12:
                return MinimizationResult(x, e, gnorm, it, False, f"trust radius collapsed at gradient norm {gnorm:.2e}")
    return MinimizationResult(x, e, gnorm, max_iter, False,
                              f"not converged in {max_iter} steps: gradient norm {gnorm:.2e} >= {gtol:.0e}")


def minimize(model, k: int, x0=None, p=None, gtol: float = 1e-8, max_iter: int = 200) -> MinimizationResult:
    """Minimize structure k (0-based) of an MM3Model from x0 (default: its input geometry).

    Returns the padded (Nmax, 3) coordinates; padded atoms stay where they are.
    """
    import jax.numpy as jnp

    n = model.molecules[k].n_atoms
    x_start, pp, topo = model.arguments(k, x0, p)
    e_fn, g_fn, h_fn = (model.compiled(name) for name in ("energy", "gradient", "hessian"))
    return minimize_coords(
        lambda x: float(e_fn(jnp.asarray(x), pp, topo)),
        lambda x: np.asarray(g_fn(jnp.asarray(x), pp, topo)),
        lambda x: np.asarray(h_fn(jnp.asarray(x), pp, topo)),
        np.asarray(x_start), n_atoms=n, gtol=gtol, max_iter=max_iter,
    )
