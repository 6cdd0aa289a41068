"""Agreement checks between the analytic path (JaxLoss) and the reference (ObjectiveFunction)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from q2mm.objective.jaxloss import JaxLoss
from q2mm.objective.objective import ObjectiveFunction


@dataclass(frozen=True)
class RatioCheck:
    """ratio = JaxLoss(p) / ObjectiveFunction(p); trustworthy only when both minimizations converged."""

    ratio: float
    loss: float
    reference: float
    converged: bool
    messages: list[str]


def ratio(loss: JaxLoss, objective: ObjectiveFunction, p_active) -> RatioCheck:
    """Evaluate both paths at the same active values and compare."""
    value = loss.value(p_active)
    ev = objective(p_active)
    info = loss.last_info
    assert info is not None  # set by every evaluation
    both = ev.all_converged and bool(np.all(info.converged))
    messages = [f"reference: {m}" for m in ev.messages] + [f"jax: {m}" for m in info.messages]
    r = value / ev.score if ev.score != 0.0 else (1.0 if value == 0.0 else float("inf"))
    return RatioCheck(float(r), float(value), float(ev.score), both, messages)


def central_difference_gradient(
    objective: ObjectiveFunction, p_active, indices=None, rel_step: float = 1e-5, min_step: float = 1e-6
) -> np.ndarray:
    """d score / d p_i by central differences of the reference objective (each point re-minimized).

    Step h_i = max(rel_step |p_i|, min_step). Returns one value per entry of ``indices``
    (all active parameters when None).
    """
    p = np.asarray(p_active, dtype=np.float64)
    indices = np.arange(p.size) if indices is None else np.asarray(indices)
    out = np.empty(indices.size)
    for n, i in enumerate(indices):
        h = max(rel_step * abs(p[i]), min_step)
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        out[n] = (objective(up).score - objective(down).score) / (2.0 * h)
    return out
