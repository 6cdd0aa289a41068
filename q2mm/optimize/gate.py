"""The ratio gate: may the optimizer trust JaxLoss gradients?

ratio = JaxLoss(p0) / ObjectiveFunction(p0). With ``jac='auto'`` and
``ratio_tol = t`` the analytic path is used when |ratio - 1| <= t; otherwise
the run falls back to finite differences of the reference objective, or stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from q2mm.optimize.choices import JacMode, OnRatioFail


@dataclass(frozen=True)
class GateDecision:
    """Resolved gradient source ('jax' or 'fd'), or 'stop', and why."""

    resolved: Literal["jax", "fd", "stop"]
    reason: str


def score_ratio(loss_value: float, reference_score: float) -> float:
    """JaxLoss / ObjectiveFunction; 1.0 when both are exactly zero, inf when only the reference is."""
    if reference_score == 0.0:
        return 1.0 if loss_value == 0.0 else math.inf
    return loss_value / reference_score


def decide(
    requested: JacMode, ratio: float | None, ratio_tol: float | None, on_fail: OnRatioFail, has_loss: bool
) -> GateDecision:
    """Resolve the requested gradient mode against the measured ratio."""
    if requested == "fd":
        return GateDecision("fd", "jac='fd' requested: central differences of the reference objective")
    if not has_loss:
        if requested == "jax":
            return GateDecision("stop", "jac='jax' requested but the problem has no JaxLoss")
        return GateDecision("fd", "jac='auto' and the problem has no JaxLoss: finite differences")
    if requested == "jax":
        return GateDecision("jax", "jac='jax' requested: JaxLoss gradients without the ratio gate")
    if ratio_tol is None:
        return GateDecision("jax", "ratio_tol is None: gate skipped, JaxLoss gradients")
    if ratio is not None and math.isfinite(ratio) and abs(ratio - 1.0) <= ratio_tol:
        return GateDecision("jax", f"ratio {ratio:.6g} within 1 +/- {ratio_tol:g}: JaxLoss gradients")
    outside = f"ratio {ratio:.6g} outside 1 +/- {ratio_tol:g}"
    if on_fail == "stop":
        return GateDecision("stop", f"{outside}: stopped (on_ratio_fail='stop')")
    return GateDecision("fd", f"{outside}: falling back to finite differences of the reference objective")
