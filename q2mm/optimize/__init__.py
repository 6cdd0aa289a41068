"""q2mm.optimize: scopes, bounds, the ratio gate, finite differences and the fit driver.

Typical use (the runner does exactly this)::

    problem = q2mm.compose.fit_problem(training_set, scope="opt", start="published")
    result = fit(problem, OptimizerOptions(method="lbfgsb", ratio_tol=0.15), callback=print)
    fld_path, json_path = result.write(output_dir)   # never overwrites anything

``fit`` measures ratio = JaxLoss(p0) / ObjectiveFunction(p0), resolves the gradient
source (jax | fd, or stops), optimizes in unit-box coordinates within the bounds,
and lets the reference objective decide the outcome: improved, no_progress,
reverted (worse than the start: start kept), diverged (non-finite loss or
gradient, with the parameters) or stopped (ratio gate).
"""

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
