"""Assemble a FitProblem from a force field, a scope, the engine's parameter list and a start.

The objectives come from the caller (``evaluators``): this layer never imports the engine
or the objectives. ``q2mm.compose.fit_problem`` wires the real ones for a training set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.optimize.choices import ScopeName, StartName, parse_choice
from q2mm.optimize.driver import FitProblem
from q2mm.optimize.protocols import LossLike, ObjectiveLike
from q2mm.optimize.scope import ScopeSpec, align_with_model, resolve_scope

EvaluatorFactory = Callable[[list[int]], tuple[ObjectiveLike, LossLike | None]]
RecipeFactory = Callable[[list[int]], Callable[[], ObjectiveLike]]
ScopeLike = str | ScopeSpec | Sequence[tuple[int, int]]
StartLike = str | Mapping[str, Any]


def build_problem(
    ff: Any,
    scope: ScopeSpec,
    model_param_refs: Sequence[Any],
    evaluators: EvaluatorFactory,
    start: str = "published",
    start_values: Mapping[Any, float] | None = None,
    start_record: Sequence[Mapping[str, Any]] = (),
    recipe: RecipeFactory | None = None,
) -> FitProblem:
    """The FitProblem of ``scope`` on ``ff``.

    ``evaluators(active)`` builds (ObjectiveFunction, JaxLoss | None) for the
    active indices into the engine's parameter vector (``model.param_refs``);
    ``recipe(active)``, when given, the problem's picklable ``objective_factory``.
    A 'qfuerza' start passes ``start_values`` {ParamRef: value} (Seminario
    estimates); only active parameters may be overwritten, and active ones
    without an estimate keep their file values (and say so in the record).
    """
    start = parse_choice(StartName, start, "start")
    if start == "published" and start_values:
        raise ConfigurationError("a 'published' start takes its values from the force field, not start_values")
    indices, kept, unused = align_with_model(resolve_scope(ff, scope), model_param_refs)
    if not kept.refs:
        raise ConfigurationError(f"no parameter of scope {scope.label()} is used by the training set")
    file_values = np.array(kept.values, float)
    values, record = file_values.copy(), [dict(r) for r in start_record]
    if start == "qfuerza":
        explained = {(r["line"], r["field"]) for r in record if "line" in r}
        values, notes = _apply_start(kept.refs, file_values, start_values or {}, explained)
        record += notes
    objective, loss = evaluators(indices)
    return FitProblem(
        refs=kept.refs,
        kinds=kept.kinds,
        start_values=values,
        objective=objective,
        loss=loss,
        forcefield=ff,
        file_values=file_values,
        scope=scope.label(),
        start=start,
        start_record=record,
        unused_refs=unused,
        objective_factory=None if recipe is None else recipe(indices),
        ranges=kept.ranges if scope.ranges else None,
    )


def _apply_start(
    refs: Sequence[Any], file_values: np.ndarray, estimates: Mapping[Any, float], explained: set[tuple[int, int]]
) -> tuple[np.ndarray, list[dict]]:
    active = set(refs)
    outside = sorted(str(ref) for ref in estimates if ref not in active)
    if outside:
        raise ConfigurationError(f"start values given for parameters outside the active set: {', '.join(outside)}")
    values = file_values.copy()
    notes = []
    for i, ref in enumerate(refs):
        if ref in estimates:
            values[i] = float(estimates[ref])
        elif (ref.line, ref.field) not in explained:  # (an explained one, e.g. skipped, keeps its value too)
            notes.append(
                {
                    "line": ref.line,
                    "field": ref.field,
                    "old": float(values[i]),
                    "new": float(values[i]),
                    "why": "no estimate: file value kept",
                }
            )
    return values, notes


def scope_spec(scope: ScopeLike) -> ScopeSpec:
    """A ScopeSpec from a name ('opt', 'opt_fc', 'opt_valence') or a list of (line, field)."""
    if isinstance(scope, ScopeSpec):
        return scope
    if isinstance(scope, str):
        return ScopeSpec(parse_choice(ScopeName, scope, "parameter scope"))
    return ScopeSpec(ScopeName.explicit, tuple((int(line), int(field_no)) for line, field_no in scope))


def start_options(start: StartLike) -> tuple[StartName, dict[str, Any]]:
    """(start name, its options) from 'published', 'qfuerza' or a mapping with ``name`` and options."""
    if isinstance(start, str):
        return parse_choice(StartName, start, "start"), {}
    options = dict(start)
    name = options.pop("name", None)
    if name is None:
        raise ConfigurationError(f"start settings need a 'name' (one of {', '.join(StartName)}): {dict(start)}")
    return parse_choice(StartName, name, "start"), options
