"""Which active parameters the training set determines: from the residual Jacobian at the result.

Linearized least squares around the fitted point p: with J = dr/dp (m rows, n parameters) and
s^2 = |r|^2 / (m - n), the parameters' covariance is s^2 (J^T J)^-1, so each parameter's
standard error is the square root of its diagonal and its correlations are the normalized
off-diagonal entries. The singular values are those of the Jacobian scaled to the unit box
(each column times its bound width), so they compare parameters of different units.
Directions with singular values below ``RCOND`` times the largest are numerically free: a
parameter with weight in them has an infinite standard error. A parameter is *undetermined*
when its standard error exceeds its bound width (``UNDETERMINED_WIDTHS``): the data cannot
place it inside the box the fit allows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RCOND = 1e-10  # singular values below this fraction of the largest count as zero
UNDETERMINED_WIDTHS = 1.0  # standard error above this many bound widths: undetermined
NULL_LOADING = 1e-6  # a parameter's weight in a null direction that makes it free


@dataclass(frozen=True)
class Identifiability:
    """Singular values of the unit-box Jacobian and, per parameter, standard error (parameter
    units, inf where free), the partner of its largest |correlation| and that correlation."""

    names: tuple[str, ...]
    singular_values: np.ndarray
    standard_error: np.ndarray
    relative_error: np.ndarray  # standard error / bound width
    max_correlation: np.ndarray
    partner: np.ndarray  # index of the most correlated other parameter (-1 where none)
    s2: float
    m: int
    n: int

    @property
    def undetermined(self) -> list[str]:
        return [name for name, rel in zip(self.names, self.relative_error) if not rel <= UNDETERMINED_WIDTHS]

    @property
    def condition_number(self) -> float:
        sv = self.singular_values
        return float(sv[0] / sv[-1]) if sv.size and sv[-1] > 0 else float("inf")

    def rows(self, values: np.ndarray | None = None) -> list[dict]:
        """One table row per parameter."""
        out = []
        for i, name in enumerate(self.names):
            row = {
                "parameter": name,
                "standard_error": float(self.standard_error[i]),
                "se_over_width": float(self.relative_error[i]),
                "max_correlation": float(self.max_correlation[i]),
                "most_correlated_with": self.names[self.partner[i]] if self.partner[i] >= 0 else None,
                "undetermined": bool(not self.relative_error[i] <= UNDETERMINED_WIDTHS),
            }
            if values is not None:
                row = {
                    "parameter": name,
                    "value": float(values[i]),
                    **{k: v for k, v in row.items() if k != "parameter"},
                }
            out.append(row)
        return out

    def as_dict(self) -> dict:
        return {
            "m": self.m,
            "n": self.n,
            "s2": self.s2,
            "rcond": RCOND,
            "undetermined_widths": UNDETERMINED_WIDTHS,
            "condition_number": self.condition_number,
            "singular_values": self.singular_values.tolist(),
            "undetermined": self.undetermined,
            "parameters": self.rows(),
        }


def identifiability(
    jac: np.ndarray, residuals: np.ndarray, width: np.ndarray, names: tuple[str, ...]
) -> Identifiability:
    """Standard errors s^2 (J^T J)^-1 and correlations from J = dr/dp (m, n) at the result;
    ``width`` the bound widths (zero for fixed parameters, which are then reported free)."""
    jac, r, width = np.asarray(jac, float), np.asarray(residuals, float), np.asarray(width, float)
    m, n = jac.shape
    s2 = float(r @ r) / (m - n) if m > n else float("inf")
    _, sv, vt = np.linalg.svd(jac * width, full_matrices=False)  # unit-box coordinates
    keep = sv > RCOND * (sv[0] if sv.size else 0.0)
    v, inv = vt[keep].T, 1.0 / sv[keep] ** 2
    cov_z = (v * inv) @ v.T  # (J_z^T J_z)^+ on the determined subspace
    null = vt[~keep].T
    free = (np.abs(null).max(axis=1) > NULL_LOADING if null.size else np.zeros(n, bool)) | (width <= 0)
    with np.errstate(invalid="ignore"):  # s2 is inf when m <= n (inf * 0): every error is then inf
        var_z = np.where(free, np.inf, s2 * np.diag(cov_z))
    var_z[np.isnan(var_z)] = np.inf
    rel = np.sqrt(var_z)
    se = np.where(width > 0, rel * width, np.inf)
    scale = np.sqrt(np.diag(cov_z))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov_z / np.outer(scale, scale)
    corr[~np.isfinite(corr)] = 0.0
    np.fill_diagonal(corr, 0.0)
    partner = np.argmax(np.abs(corr), axis=1) if n > 1 else np.full(n, -1)
    best = np.abs(corr[np.arange(n), partner]) if n > 1 else np.zeros(n)
    if null.size and n > 1:  # a free parameter's partner: the one sharing its null directions most
        shared = np.abs(null @ null.T)
        np.fill_diagonal(shared, 0.0)
        partner = np.where(free, np.argmax(shared, axis=1), partner)
    best = np.where(free, 1.0, best)
    return Identifiability(tuple(names), sv, se, rel, best, np.where(best > 0, partner, -1), s2, m, n)
