"""Assemble a FitProblem from a force field, a scope, the engine's parameter list and a start."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.optimize.driver import FitProblem
from q2mm.optimize.protocols import LossLike, ObjectiveLike
from q2mm.optimize.scope import ScopeSpec, align_with_model, resolve_scope

STARTS = ("published", "qfuerza")

EvaluatorFactory = Callable[[list[int]], tuple[ObjectiveLike, LossLike | None]]


def build_problem(
    ff: Any,
    scope: ScopeSpec,
    model_param_refs: Sequence[Any],
    evaluators: EvaluatorFactory,
    start: str = "published",
    start_values: Mapping[Any, float] | None = None,
    start_record: Sequence[Mapping[str, Any]] = (),
) -> FitProblem:
    """The FitProblem of ``scope`` on ``ff``.

    ``evaluators(active)`` builds (ObjectiveFunction, JaxLoss | None) for the
    active indices into the engine's parameter vector (``model.param_refs``).
    A 'qfuerza' start passes ``start_values`` {ParamRef: value} (Seminario
    estimates); only active parameters may be overwritten, and active ones
    without an estimate keep their file values (and say so in the record).
    """
    if start not in STARTS:
        raise ConfigurationError(f"unknown start {start!r}; choose from {', '.join(STARTS)}")
    if start == "published" and start_values:
        raise ConfigurationError("a 'published' start takes its values from the force field, not start_values")
    indices, kept, unused = align_with_model(resolve_scope(ff, scope), model_param_refs)
    if not kept.refs:
        raise ConfigurationError(f"no parameter of scope {scope.label()} is used by the training set")
    file_values = np.array(kept.values, float)
    values, record = file_values.copy(), [dict(r) for r in start_record]
    if start == "qfuerza":
        values, notes = _apply_start(kept.refs, file_values, start_values or {})
        record += notes
    objective, loss = evaluators(indices)
    return FitProblem(
        refs=kept.refs, kinds=kept.kinds, start_values=values, objective=objective, loss=loss, forcefield=ff,
        file_values=file_values, scope=scope.label(), start=start, start_record=record, unused_refs=unused,
    )


def _apply_start(refs: Sequence[Any], file_values: np.ndarray, estimates: Mapping[Any, float]) -> tuple[np.ndarray, list[dict]]:
    active = set(refs)
    outside = sorted(str(ref) for ref in estimates if ref not in active)
    if outside:
        raise ConfigurationError(f"start values given for parameters outside the active set: {', '.join(outside)}")
    values = file_values.copy()
    notes = []
    for i, ref in enumerate(refs):
        if ref not in estimates:
            notes.append({"line": ref.line, "field": ref.field, "old": float(values[i]), "new": float(values[i]),
                          "why": "no estimate: file value kept"})
            continue
        values[i] = float(estimates[ref])
    return values, notes
