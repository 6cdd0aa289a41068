"""q2mm.optimize: scopes, bounds, the ratio gate, finite differences and the fit driver."""

from q2mm.optimize.bounds import BoundsOptions, param_class
from q2mm.optimize.driver import FitProblem, OptimizerOptions, fit
from q2mm.optimize.gate import GateDecision, decide, score_ratio
from q2mm.optimize.problem import build_problem
from q2mm.optimize.result import FitResult, IterationInfo, OutputExistsError
from q2mm.optimize.scope import ScopeSpec, resolve_scope

__all__ = [
    "BoundsOptions",
    "FitProblem",
    "FitResult",
    "GateDecision",
    "IterationInfo",
    "OptimizerOptions",
    "OutputExistsError",
    "ScopeSpec",
    "build_problem",
    "decide",
    "fit",
    "param_class",
    "resolve_scope",
    "score_ratio",
]
