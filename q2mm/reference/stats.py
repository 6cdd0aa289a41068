"""Agreement statistics between reference and calculated values: R2 and RMSD.

One function for every parameter vector and every kind; periodic kinds (torsions) take
their residuals wrapped to [-180, 180). Entries of weight zero (rigid-body modes, the TS
reaction mode, padding) are left out of the statistics.
"""

from __future__ import annotations

import numpy as np

from q2mm.reference.geometry import wrap_degrees


def residuals(ref: np.ndarray, calc: np.ndarray, periodic: bool = False) -> np.ndarray:
    """ref - calc, wrapped to [-180, 180) degrees when ``periodic``."""
    delta = np.asarray(ref, dtype=np.float64) - np.asarray(calc, dtype=np.float64)
    return wrap_degrees(delta) if periodic else delta


def _selected(ref, calc, weight):
    ref = np.asarray(ref, dtype=np.float64)
    calc = np.asarray(calc, dtype=np.float64)
    if weight is None:
        return ref, calc
    keep = np.asarray(weight) != 0
    return ref[keep], calc[keep]


def r_squared(ref, calc, weight=None, periodic: bool = False) -> float:
    """1 - SS_res / SS_tot of calc against ref (NaN with fewer than two distinct refs)."""
    ref, calc = _selected(ref, calc, weight)
    if ref.size < 2:
        return float("nan")
    ss_res = float(np.sum(residuals(ref, calc, periodic) ** 2))
    centre = _circular_mean(ref) if periodic else float(np.mean(ref))
    ss_tot = float(np.sum(residuals(ref, np.full_like(ref, centre), periodic) ** 2))
    return float("nan") if ss_tot == 0.0 else 1.0 - ss_res / ss_tot


def rmsd(ref, calc, weight=None, periodic: bool = False) -> float:
    """Root-mean-square deviation of calc from ref (NaN when nothing is selected)."""
    ref, calc = _selected(ref, calc, weight)
    if ref.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean(residuals(ref, calc, periodic) ** 2)))


def _circular_mean(degrees: np.ndarray) -> float:
    rad = np.radians(degrees)
    return float(np.degrees(np.arctan2(np.mean(np.sin(rad)), np.mean(np.cos(rad)))))
