"""Assemble a FitProblem from a force field, a scope, the engine's parameter list and a start."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.optimize.choices import ScopeName, StartName, parse_choice
from q2mm.optimize.driver import FitProblem
from q2mm.optimize.protocols import LossLike, ObjectiveLike
from q2mm.optimize.scope import ScopeSpec, align_with_model, resolve_scope

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
        refs=kept.refs, kinds=kept.kinds, start_values=values, objective=objective, loss=loss, forcefield=ff,
        file_values=file_values, scope=scope.label(), start=start, start_record=record, unused_refs=unused,
    )


def _apply_start(refs: Sequence[Any], file_values: np.ndarray, estimates: Mapping[Any, float],
                 explained: set[tuple[int, int]]) -> tuple[np.ndarray, list[dict]]:
    active = set(refs)
    outside = sorted(str(ref) for ref in estimates if ref not in active)
    if outside:
        raise ConfigurationError(f"start values given for parameters outside the active set: {', '.join(outside)}")
    values = file_values.copy()
    notes = []
    for i, ref in enumerate(refs):
        if ref not in estimates and (ref.line, ref.field) not in explained:
            notes.append({"line": ref.line, "field": ref.field, "old": float(values[i]), "new": float(values[i]),
                          "why": "no estimate: file value kept"})
            continue
        values[i] = float(estimates[ref])
    return values, notes


def scope_spec(scope: str | ScopeSpec | Sequence[tuple[int, int]]) -> ScopeSpec:
    """A ScopeSpec from a name ('opt', 'opt_fc', 'opt_valence') or a list of (line, field)."""
    if isinstance(scope, ScopeSpec):
        return scope
    if isinstance(scope, str):
        return ScopeSpec(parse_choice(ScopeName, scope, "parameter scope"))
    return ScopeSpec(ScopeName.explicit, tuple((int(line), int(field_no)) for line, field_no in scope))


def build_fit_problem(
    training_set: Any,
    scope: str | ScopeSpec | Sequence[tuple[int, int]] = "opt",
    start: str | Mapping[str, Any] = "published",
) -> FitProblem:
    """The FitProblem of a loaded TrainingSet: MM3* model, reference objective, JaxLoss, scope, start.

    ``start`` is 'published', 'qfuerza', or a mapping with ``name`` and the
    QFUERZA options (e.g. ``frequency_scale``, ``angle_h_fc``).
    """
    from q2mm.mm3.engine import MM3Model
    from q2mm.objective.jaxloss import JaxLoss
    from q2mm.objective.objective import ObjectiveFunction

    spec = scope_spec(scope)
    start_name, start_options = _start_options(start)
    ff, molecules, settings = training_set.forcefield, list(training_set.molecules), training_set.settings
    model = MM3Model.build(molecules, ff)
    chosen: dict[str, list[int]] = {}

    def evaluators(active: list[int]) -> tuple[ObjectiveLike, LossLike]:
        chosen["active"] = active
        return ObjectiveFunction(model, molecules, settings, active), JaxLoss(model, molecules, settings, active)

    estimates, record = None, list[dict[str, Any]]()
    if start_name == "qfuerza":
        _, kept, _ = align_with_model(resolve_scope(ff, spec), model.param_refs)
        estimates, record = qfuerza_start(model, molecules, ff, kept.refs, start_options)
    problem = build_problem(ff, spec, model.param_refs, evaluators, start_name, estimates, record)
    problem.objective_factory = ObjectiveRecipe(training_set, tuple(chosen["active"]))
    return problem


@dataclass(frozen=True)
class ObjectiveRecipe:
    """Rebuilds the reference objective of a training set in another process (finite-difference workers)."""

    training_set: Any
    active: tuple[int, ...]

    def __call__(self) -> ObjectiveLike:
        from q2mm.mm3.engine import MM3Model
        from q2mm.objective.objective import ObjectiveFunction

        molecules = list(self.training_set.molecules)
        model = MM3Model.build(molecules, self.training_set.forcefield)
        return ObjectiveFunction(model, molecules, self.training_set.settings, list(self.active))


def _start_options(start: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(start, str):
        return start, {}
    options = dict(start)
    name = options.pop("name", None)
    if name is None:
        raise ConfigurationError(f"start settings need a 'name' (one of {', '.join(StartName)}): {dict(start)}")
    return str(name), options


# start option names of conf/start/qfuerza.yaml -> SeminarioSettings fields
_QFUERZA_OPTION_NAMES = {"angle_h_fc": "hydrogen_angle_k"}


def qfuerza_start(model: Any, molecules: Sequence[Any], ff: Any, active_refs: Sequence[Any],
                  options: Mapping[str, Any]) -> tuple[dict[Any, float], list[dict[str, Any]]]:
    """QFUERZA (Seminario) estimates of the active parameters, with the record of what changed.

    Returns ({ParamRef: new value} for the changed active parameters, [change records]).
    """
    from q2mm.reference.seminario import SeminarioSettings, mapping_from_assignments, seminario_start

    settings = SeminarioSettings(**{_QFUERZA_OPTION_NAMES.get(k, k): v for k, v in options.items()})
    atoms = mapping_from_assignments(model.assignments)
    current = {ref: ff.value(ref) for ref in atoms}
    result = seminario_start(molecules, atoms, current, set(active_refs), settings)
    record = [{"line": c.ref.line, "field": c.ref.field, "old": c.old, "new": c.new, "why": c.why}
              for c in result.changes]
    record += [{"line": ref.line, "field": ref.field, "old": current[ref], "new": current[ref],
                "why": f"skipped: {why}"} for ref, why in result.skipped]
    return {c.ref: c.new for c in result.changes}, record
