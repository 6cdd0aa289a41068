"""q2mm.optimize: scopes, bounds, the ratio gate, finite differences and the fit driver."""

from q2mm.optimize.bounds import BoundsOptions, param_class
from q2mm.optimize.driver import FitProblem, OptimizerOptions, fit
from q2mm.optimize.gate import GateDecision, decide, score_ratio
from q2mm.optimize.result import FitResult, IterationInfo, OutputExistsError

__all__ = [
    "BoundsOptions",
    "FitProblem",
    "FitResult",
    "GateDecision",
    "IterationInfo",
    "OptimizerOptions",
    "OutputExistsError",
    "decide",
    "fit",
    "param_class",
    "score_ratio",
]
