"""The composition root: one FitProblem from a training set, a scope and a start, in one pass.

The one place that wires the layers into a fit: the MM3* engine (q2mm.mm3), the reference
objective and JaxLoss (q2mm.objective), the QFUERZA start (q2mm.reference.seminario) and the
optimizer's FitProblem (q2mm.optimize.problem.build_problem). The layers never import
upward; the runner, q2mm.evaluate and the bench build their problems here, and nothing
changes a problem after it is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from q2mm.mm3.engine import MM3Model
from q2mm.objective.jaxloss import JaxLoss
from q2mm.objective.objective import ObjectiveFunction
from q2mm.objective.shared import minimizes_stepwise
from q2mm.optimize.choices import StartName
from q2mm.optimize.driver import FitProblem
from q2mm.optimize.problem import ScopeLike, StartLike, build_problem, scope_spec, start_options
from q2mm.optimize.scope import ScopeSpec, align_with_model, parameter_file_scope, resolve_scope
from q2mm.reference.seminario import SeminarioSettings, mapping_from_assignments, seminario_start


def fit_problem(
    training_set: Any, scope: ScopeLike = "opt", start: StartLike = "published", share_engine: bool = True
) -> FitProblem:
    """The FitProblem of a loaded TrainingSet: MM3* model, reference objective, JaxLoss, scope, start.

    ``scope`` is a scope name, a ScopeSpec or a list of (line, field); ``start`` is 'published',
    'qfuerza', or a mapping with ``name`` and the QFUERZA options (``frequency_scale``, ...).
    ``share_engine``: the reference objective evaluates the engine through JaxLoss's program
    (``objective/shared``); False where JaxLoss will not run (the engine's own, smaller program).
    """
    ff, molecules, settings = training_set.forcefield, list(training_set.molecules), training_set.settings
    spec = with_charge_parameters(scope_spec(scope), settings)
    start_name, options = start_options(start)
    model = MM3Model.build(molecules, ff)
    estimates: dict[Any, float] | None = None
    record: list[dict[str, Any]] = []
    if start_name == StartName.qfuerza:
        _, kept, _ = align_with_model(resolve_scope(ff, spec), model.param_refs)
        estimates, record = qfuerza_start(model, molecules, ff, kept.refs, options)

    # the reference evaluates the engine through JaxLoss's minimizer program where JaxLoss
    # minimizes in one loop: the engine's Hessian compiled once for both (objective/shared)
    in_minimizer = share_engine and not minimizes_stepwise(np.shape(model.coords))

    def evaluators(active: list[int]) -> tuple[ObjectiveFunction, JaxLoss]:
        reference = ObjectiveFunction(model, molecules, settings, active, engine_in_minimizer=in_minimizer)
        return reference, JaxLoss(model, molecules, settings, active)

    def recipe(active: list[int]) -> ObjectiveRecipe:
        return ObjectiveRecipe(training_set, tuple(active), in_minimizer)

    return build_problem(ff, spec, model.param_refs, evaluators, start_name, estimates, record, recipe=recipe)


def with_charge_parameters(spec: ScopeSpec, settings: Any) -> ScopeSpec:
    """The scope with its bond dipoles when the ``charge`` kind is scored (only charges determine them)."""
    return dataclasses.replace(spec, bond_dipoles=True) if settings.uses("charge") else spec


def scope_from_config(node: DictConfig) -> ScopeLike:
    """The scope of a run config's ``scope`` group: its name, the (line, field) list of ``explicit``,
    or the parameters (and ranges) of ``file``'s Q2MM parameter file."""
    if node.name == "file":
        return parameter_file_scope(node.path)
    if node.name == "explicit":
        return [(int(ref.line), int(ref.field)) for ref in node.params]
    return str(node.name)


def problem_from_config(training_set: Any, cfg: DictConfig, share_engine: bool = True) -> FitProblem:
    """The FitProblem of a training set under a run config's ``scope`` and ``start`` groups
    (``share_engine`` as ``fit_problem``'s)."""
    scope = scope_from_config(cfg.scope)
    start = OmegaConf.to_container(cfg.start)
    assert isinstance(start, dict)
    options = {str(k): v for k, v in start.items()}
    return fit_problem(training_set, scope=scope, start=options, share_engine=share_engine)


@dataclass(frozen=True)
class ObjectiveRecipe:
    """Rebuilds the reference objective of a training set in another process (finite-difference workers)."""

    training_set: Any
    active: tuple[int, ...]
    engine_in_minimizer: bool = False  # as the fit problem's reference (the same program, the same bits)

    def __call__(self) -> ObjectiveFunction:
        molecules = list(self.training_set.molecules)
        model = MM3Model.build(molecules, self.training_set.forcefield)
        settings, active = self.training_set.settings, list(self.active)
        return ObjectiveFunction(model, molecules, settings, active, engine_in_minimizer=self.engine_in_minimizer)


# start option names of conf/start/qfuerza.yaml -> SeminarioSettings fields
_QFUERZA_OPTION_NAMES = {"angle_h_fc": "hydrogen_angle_k"}


def qfuerza_start(
    model: Any, molecules: Sequence[Any], ff: Any, active_refs: Sequence[Any], options: Mapping[str, Any]
) -> tuple[dict[Any, float], list[dict[str, Any]]]:
    """QFUERZA (Seminario) estimates of the active parameters, with the record of what changed.

    Returns ({ParamRef: new value} for the changed active parameters, [change records]).
    """
    settings = SeminarioSettings(**{_QFUERZA_OPTION_NAMES.get(k, k): v for k, v in options.items()})
    atoms = mapping_from_assignments(model.assignments)
    current = {ref: ff.value(ref) for ref in atoms}
    result = seminario_start(molecules, atoms, current, set(active_refs), settings)
    record = [
        {"line": c.ref.line, "field": c.ref.field, "old": c.old, "new": c.new, "why": c.why} for c in result.changes
    ]
    record += [
        {"line": ref.line, "field": ref.field, "old": current[ref], "new": current[ref], "why": f"skipped: {why}"}
        for ref, why in result.skipped
    ]
    return {c.ref: c.new for c in result.changes}, record
