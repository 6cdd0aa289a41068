"""The optimization driver: start values + scope -> optimized parameters, every decision recorded."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize

from q2mm.errors import ConfigurationError, DivergenceError
from q2mm.optimize.bounds import BoundsOptions, BoxScaling, parameter_bounds
from q2mm.optimize.checkpoint import FitJournal, JournalEntry
from q2mm.optimize.choices import JacMode, LsqSolver, Method, OnRatioFail, XScale, parse_choice, parse_method
from q2mm.optimize.fd import ScorePool, fd_value_and_grad
from q2mm.optimize.gate import GateDecision, decide, score_ratio
from q2mm.optimize.identifiability import Identifiability, identifiability
from q2mm.optimize.lm import bounded_lm
from q2mm.optimize.protocols import EvaluationLike, LossLike, ObjectiveLike
from q2mm.optimize.result import FitResult, IterationInfo

GRADIENT_METHODS = {"lbfgsb", "adam", "least-squares"}

Callback = Callable[[IterationInfo], None]


@dataclass(frozen=True)
class OptimizerOptions:
    """How to optimize. Tolerances act in unit-box coordinates (each parameter scaled by its bound width).

    ``memory`` is the number of correction pairs L-BFGS-B keeps (SciPy's ``maxcor``),
    ``line_search_steps`` the evaluations one of its line searches may take (``maxls``).
    After a failed line search L-BFGS-B restarts from the best point, at most ``restarts``
    times, each time only if the attempt that failed lowered the best score by more than
    ``restart_rtol`` (relative): one that gained less met the same cliff again.

    A fit whose reference score falls by less than ``progress_rtol`` (relative)
    is reported as ``no_progress``, whatever the optimizer says about success.

    ``least-squares`` (steps on the residual vector with JaxLoss's Jacobian) reads ``maxiter``
    as the most residual evaluations (``max_nfev``) and ``ftol``/``xtol``/``gtol`` as
    SciPy ``least_squares``' tolerances; ``lsq_solver`` picks the steps: "lm", the bounded
    Levenberg-Marquardt of ``q2mm.optimize.lm``, or "trf", SciPy's trust-region reflective
    method, whose ``x_scale`` is "unit" (the unit box's own scale) or "jac" (SciPy's scaling by
    the Jacobian's column norms; "lm" always scales so).
    ``identifiability`` (standard errors and correlations from the Jacobian at the result,
    ``q2mm.optimize.identifiability``) is computed for least-squares unless False, and for the
    other methods when True (it compiles the Jacobian stage).

    These fields and defaults are also the runner's ``optimizer`` schema
    (``q2mm.config.OptimizerConfig`` is derived from this class, less ``ratio_tol`` and
    ``progress_rtol``). Strings are accepted for the enumerated fields (and the method
    aliases ``L-BFGS-B``, ``NelderMead``) and stored as the Enum members.
    """

    method: Method = Method.lbfgsb
    maxiter: int = 100
    jac: JacMode = JacMode.auto
    ratio_tol: float | None = 0.15
    on_ratio_fail: OnRatioFail = OnRatioFail.fd
    bounds: BoundsOptions = field(default_factory=BoundsOptions)
    ftol: float = 1e-10
    gtol: float = 1e-6
    xtol: float = 1e-6
    memory: int = 10
    line_search_steps: int = 20
    restarts: int = 3
    restart_rtol: float = 1e-4
    fd_step: float = 1e-4
    fd_workers: int = 2
    learning_rate: float = 0.01
    progress_rtol: float = 1e-6
    x_scale: XScale = XScale.unit
    lsq_solver: LsqSolver = LsqSolver.lm
    identifiability: bool | None = None  # None: with least-squares only (its Jacobian is built anyway)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", parse_method(self.method))
        object.__setattr__(self, "jac", parse_choice(JacMode, self.jac, "jac"))
        object.__setattr__(self, "on_ratio_fail", parse_choice(OnRatioFail, self.on_ratio_fail, "on_ratio_fail"))
        object.__setattr__(self, "x_scale", parse_choice(XScale, self.x_scale, "x_scale"))
        object.__setattr__(self, "lsq_solver", parse_choice(LsqSolver, self.lsq_solver, "lsq_solver"))
        if self.ratio_tol is not None and not self.ratio_tol >= 0:
            raise ConfigurationError(f"ratio_tol must be >= 0 or None, not {self.ratio_tol!r}")
        if self.maxiter < 0 or not 0 < self.fd_step < 0.5 or self.memory < 1 or self.line_search_steps < 1:
            raise ConfigurationError("maxiter must be >= 0, memory and line_search_steps >= 1, fd_step in (0, 0.5)")
        if self.restarts < 0 or not self.restart_rtol >= 0:
            raise ConfigurationError(
                f"restarts and restart_rtol must be >= 0, not {self.restarts!r} and {self.restart_rtol!r}"
            )

    @property
    def canonical_method(self) -> Method:
        """The method, aliases resolved (``method`` itself is already canonical)."""
        return self.method

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any], **overrides: Any) -> OptimizerOptions:
        """Options from a plain mapping (e.g. a Hydra ``optimizer`` group); ``bounds`` may be nested.

        Unknown keys raise ConfigurationError naming them.
        """
        merged = {**dict(settings), **overrides}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigurationError(f"unknown optimizer option(s) {unknown}; known: {sorted(known)}")
        bounds = merged.get("bounds")
        if bounds is not None and not isinstance(bounds, BoundsOptions):
            bound_names = {f.name for f in fields(BoundsOptions)}
            bad = sorted(set(bounds) - bound_names)
            if bad:
                raise ConfigurationError(f"unknown bounds option(s) {bad}; known: {sorted(bound_names)}")
            merged["bounds"] = BoundsOptions(**{k: float(v) for k, v in dict(bounds).items()})
        return cls(**merged)


@dataclass
class FitProblem:
    """What to fit: the active parameters (ordered as the objective expects them) and both evaluators.

    ``file_values`` are the values in the input force field; ``start_values``
    the starting point (equal to them for a 'published' start).
    ``objective_factory``, when given, is a picklable zero-argument callable
    that builds an objective equal to ``objective`` in a finite-difference
    worker process (for objectives that do not pickle themselves).
    """

    refs: tuple[Any, ...]
    kinds: tuple[str, ...]
    start_values: np.ndarray
    objective: ObjectiveLike
    loss: LossLike | None = None
    forcefield: Any = None
    file_values: np.ndarray | None = None
    scope: str = "explicit"
    start: str = "published"
    start_record: list[dict[str, Any]] = field(default_factory=list)
    unused_refs: tuple[Any, ...] = ()
    objective_factory: Callable[[], ObjectiveLike] | None = None
    ranges: tuple[tuple[float, float], ...] | None = None  # allowed (low, high) per parameter (a parameter file's)

    def __post_init__(self) -> None:
        self.refs = tuple(self.refs)
        self.kinds = tuple(self.kinds)
        self.start_values = np.asarray(self.start_values, dtype=np.float64).copy()
        n = len(self.refs)
        if len(self.kinds) != n or self.start_values.shape != (n,):
            raise ConfigurationError(
                f"refs ({n}), kinds ({len(self.kinds)}) and start values {self.start_values.shape} disagree"
            )
        if n == 0:
            raise ConfigurationError("the parameter scope is empty: nothing to optimize")
        if self.ranges is not None and len(self.ranges) != n:
            raise ConfigurationError(f"{len(self.ranges)} parameter ranges for {n} parameters")
        self.file_values = self.start_values.copy() if self.file_values is None else np.asarray(self.file_values, float)

    def names(self) -> tuple[str, ...]:
        return tuple(f"line {r.line} field {r.field}" for r in self.refs)

    def bounds(self, options: BoundsOptions) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bound of each active parameter (``optimizer.bounds`` around the start,
        within sanity bounds and ``ranges``)."""
        return parameter_bounds(self.start_values, self.kinds, options, self.names(), self.ranges)


class _Diverged(DivergenceError):
    def __init__(self, what: str, params: np.ndarray, value: float, evaluation: int):
        self.record = {"what": what, "value": value, "evaluation": evaluation, "parameters": params.tolist()}
        super().__init__(f"{what} at evaluation {evaluation}")


class CachedPoint(NamedTuple):
    """An evaluated point (unit box): its score and, where computed, its gradient."""

    value: float
    grad: np.ndarray | None


class BestPoint(NamedTuple):
    """The lowest score seen at a point whose inner minimizations all converged (unit box z)."""

    score: float
    z: np.ndarray


class RawJacobian(NamedTuple):
    """The loss's residuals and Jacobian (parameter units, every active column) at parameters ``p``."""

    p: bytes
    r: np.ndarray
    jac: np.ndarray


class _Evaluator:
    """Score (and gradient) in unit-box coordinates from the resolved source; counts and guards."""

    def __init__(
        self,
        problem: FitProblem,
        scaling: BoxScaling,
        source: str,
        options: OptimizerOptions,
        pool: ScorePool | None,
        journal: FitJournal | None = None,
    ):
        self.problem, self.scaling, self.source, self.options, self.pool = problem, scaling, source, options, pool
        self.journal = journal
        self.n_objective = 0
        self.n_loss = 0
        self.n_jacobian = 0
        self.best: BestPoint | None = None
        self._cache: dict[bytes, CachedPoint] = {}
        self._residuals: dict[bytes, np.ndarray] = {}
        self._jacobian: dict[bytes, np.ndarray] = {}  # the last one only (SciPy asks again at the start)
        self.last_jacobian: RawJacobian | None = None  # the loss's own (r, J) behind the last one

    @property
    def n_evaluations(self) -> int:
        return self.n_objective + self.n_loss

    def value(self, z: np.ndarray) -> float:
        key = np.asarray(z, float).tobytes()
        if key not in self._cache:
            p = self.scaling.to_params(z)
            if (entry := self._replayed(p, need_grad=False)) is not None:
                self._remember(key, z, entry.value, entry.grad, entry.converged)
                return self._cache[key].value
            before = self.n_evaluations
            if self.source == "jax":
                self.n_loss += 1
                v = float(self.loss.value(p))
                converged = _loss_converged(self.loss)
            else:
                self.n_objective += 1
                evaluation = self.problem.objective(p)
                v, converged = float(evaluation.score), bool(evaluation.all_converged)
            self._remember(key, z, v, None, converged)
            self._journal(p, v, None, converged, before)
        return self._cache[key].value

    @property
    def loss(self) -> LossLike:
        """The problem's loss: the ratio gate resolves the source to 'jax' only where there is one."""
        assert self.problem.loss is not None, "source 'jax' without a loss"
        return self.problem.loss

    def value_and_grad(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        key = np.asarray(z, float).tobytes()
        cached = self._cache.get(key)
        if cached is None or cached.grad is None:
            p = self.scaling.to_params(z)
            if (entry := self._replayed(p, need_grad=True)) is not None:
                self._remember(key, z, entry.value, entry.grad, entry.converged)
                return entry.value, _asked(entry.grad)
            before = self.n_evaluations
            if self.source == "jax":
                self.n_loss += 1
                v, g = self.loss.value_and_grad(p)
                v, g = float(v), self.scaling.grad_to_unit(np.asarray(g, float))
                converged = _loss_converged(self.loss)
            else:
                assert self.pool is not None, "finite differences without a score pool"
                v, g, count = fd_value_and_grad(self.pool.scores, self.scaling, z, self.options.fd_step)
                self.n_objective += count
                converged = True
            self._remember(key, z, v, g, converged)
            self._journal(p, v, g, converged, before)
        value, grad = self._cache[key]
        return value, _asked(grad)

    def _replayed(self, p: np.ndarray, need_grad: bool) -> JournalEntry | None:
        """A resumed fit's recorded evaluation at ``p``, counted as it was when first made."""
        entry = self.journal.lookup(p, need_grad) if self.journal is not None else None
        if entry is not None:
            if self.source == "jax":
                self.n_loss += entry.cost
            else:
                self.n_objective += entry.cost
        return entry

    def _journal(self, p: np.ndarray, v: float, g: np.ndarray | None, converged: bool, before: int) -> None:
        if self.journal is not None:
            self.journal.record(
                JournalEntry(
                    np.array(p, float),
                    v,
                    None if g is None else np.array(g, float),
                    converged,
                    self.n_evaluations - before,
                )
            )

    def residuals(self, z: np.ndarray) -> np.ndarray:
        """Weighted residual vector (score = |r|^2) at unit-box z."""
        key = np.asarray(z, float).tobytes()
        cached = self._residuals.get(key)
        if cached is None:
            p = self.scaling.to_params(z)
            if self.source == "jax":
                self.n_loss += 1
                cached = np.asarray(self.loss.residuals(p), float)
                converged = _loss_converged(self.loss)
            else:
                self.n_objective += 1
                evaluation = self.problem.objective(p)
                if evaluation.residuals is None:
                    raise ConfigurationError(
                        "least squares needs residuals; this objective's score is no sum of squares"
                    )
                cached = np.asarray(evaluation.residuals, float)
                converged = bool(evaluation.all_converged)
            if len(self._residuals) > 64:
                self._residuals.clear()
            self._residuals[key] = cached
            old = self._cache.get(key)
            self._remember(key, z, float(cached @ cached), None if old is None else old.grad, converged)
        return cached

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """dr/dz (m, n free) from JaxLoss's analytic Jacobian; caches the gradient 2 J^T r."""
        key = np.asarray(z, float).tobytes()
        if key in self._jacobian:
            return self._jacobian[key]
        p = self.scaling.to_params(z)
        r, raw = self.loss.residuals_and_jacobian(p)
        self.last_jacobian = RawJacobian(p.tobytes(), np.asarray(r, float), np.asarray(raw, float))
        jac = self.last_jacobian.jac[:, self.scaling.free] * self.scaling.width[self.scaling.free]
        if not np.all(np.isfinite(jac)):
            raise _Diverged("non-finite jax Jacobian", p, float(r @ r), self.n_evaluations)
        self.n_jacobian += 1
        self._remember(key, z, float(r @ r), 2.0 * jac.T @ r, _loss_converged(self.loss))
        self._jacobian = {key: jac}
        return jac

    def grad_at(self, z: np.ndarray) -> np.ndarray | None:
        cached = self._cache.get(np.asarray(z, float).tobytes())
        return None if cached is None else cached.grad

    def _remember(self, key: bytes, z: np.ndarray, v: float, g: np.ndarray | None, converged: bool) -> None:
        """Cache a point; only points whose inner minimizations converged may become the best."""
        p = self.scaling.to_params(z)
        if not math.isfinite(v):
            raise _Diverged(f"non-finite {self.source} score {v}", p, v, self.n_evaluations)
        if g is not None and not np.all(np.isfinite(g)):
            raise _Diverged(f"non-finite {self.source} gradient", p, v, self.n_evaluations)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = CachedPoint(v, g)
        if converged and (self.best is None or v < self.best.score):
            self.best = BestPoint(v, np.array(z, float))


def _asked(grad: np.ndarray | None) -> np.ndarray:
    """A gradient that was asked for: computed, or replayed from an entry that has one."""
    assert grad is not None, "a gradient was asked for"
    return grad


def _loss_converged(loss: LossLike) -> bool:
    """Whether every inner minimization of the loss's last evaluation converged (True if it does not say)."""
    info = loss.last_info
    return True if info is None else bool(np.all(info.converged))


def projected_grad_norm(z: np.ndarray, g: np.ndarray) -> float:
    """Norm of the gradient with components pushing out of the unit box removed."""
    g = np.array(g, float)
    g[(z <= 0.0) & (g > 0.0)] = 0.0
    g[(z >= 1.0) & (g < 0.0)] = 0.0
    return float(np.linalg.norm(g))


class _Progress:
    """Emits IterationInfo records to the history and the user's callback."""

    def __init__(self, evaluator: _Evaluator, callback: Callback | None, t0: float):
        self.evaluator, self.callback, self.t0 = evaluator, callback, t0
        self.history: list[IterationInfo] = []

    def emit(self, z: np.ndarray, score: float, uses_gradient: bool) -> None:
        grad = self.evaluator.grad_at(z) if uses_gradient else None
        info = IterationInfo(
            iteration=len(self.history),
            score=float(score),
            grad_norm=None if grad is None else projected_grad_norm(z, grad),
            elapsed_s=time.perf_counter() - self.t0,
            n_evaluations=self.evaluator.n_evaluations,
        )
        self.history.append(info)
        if self.callback is not None:
            self.callback(info)


def _run_scipy(method: str, ev: _Evaluator, progress: _Progress, z0: np.ndarray, options: OptimizerOptions) -> str:
    bounds = [(0.0, 1.0)] * z0.size
    uses_gradient = method == "lbfgsb"

    def on_iteration(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        progress.emit(intermediate_result.x, intermediate_result.fun, uses_gradient)

    if uses_gradient:
        progress.emit(z0, ev.value_and_grad(z0)[0], True)
        return _run_lbfgsb(ev, on_iteration, z0, options)
    else:
        progress.emit(z0, ev.value(z0), False)
        tol = {
            "nelder-mead": {"xatol": options.xtol, "fatol": options.ftol},
            "powell": {"xtol": options.xtol, "ftol": options.ftol},
        }
        res = scipy.optimize.minimize(
            ev.value,
            z0,
            method="Nelder-Mead" if method == "nelder-mead" else "Powell",
            bounds=bounds,
            callback=on_iteration,
            options={"maxiter": options.maxiter, **tol[method]},
        )
    return f"{res.message} (success={bool(res.success)})"


def _run_lbfgsb(ev: _Evaluator, on_iteration, z0: np.ndarray, options: OptimizerOptions) -> str:
    """L-BFGS-B, restarted (memory cleared) from the best point after a failed line search.

    A line search fails where the score is not smooth: a structure whose minimization from
    its QM geometry ends in another conformer after a small parameter change. Restarting from
    the best point seen, with the iterations left, lets the fit go on past such a spot
    instead of stopping there. An attempt that lowered the best score by no more than
    ``restart_rtol`` (relative) is not restarted: it met the same cliff again (pd-allyl-xtb's
    restarts gained 1e-6 each, rh-enamide's from the flattened start less:
    docs/performance.md).
    """
    z, left, messages = z0, options.maxiter, []
    before = ev.value(z0)  # evaluated already: the fit's iteration 0
    for attempt in range(1 + options.restarts):
        res = scipy.optimize.minimize(
            ev.value_and_grad,
            z,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * z0.size,
            callback=on_iteration,
            options={
                "maxiter": left,
                "ftol": options.ftol,
                "gtol": options.gtol,
                "maxcor": options.memory,
                "maxls": options.line_search_steps,
            },
        )
        messages.append(f"{res.message} (success={bool(res.success)})")
        left -= int(res.nit)
        if res.status != 2 or left <= 0 or ev.best is None or attempt == options.restarts:
            break
        gain = (before - ev.best.score) / abs(before) if before else 0.0
        if gain <= options.restart_rtol:
            messages[-1] += (
                f" (gained {gain:.1e} of the score, not above restart_rtol {options.restart_rtol:g}: no more restarts)"
            )
            break
        z, before = ev.best.z, ev.best.score
    if len(messages) == 1:
        return messages[0]
    return f"{messages[-1]}; after {len(messages) - 1} restart(s) from the best point: " + " | ".join(messages[:-1])


def _run_least_squares(ev: _Evaluator, progress: _Progress, z0: np.ndarray, options: OptimizerOptions) -> str:
    """Least squares on the residual vector in the unit box: the bounded Levenberg-Marquardt of
    ``q2mm.optimize.lm`` with the analytic Jacobian (``lsq_solver=lm``), or SciPy
    ``least_squares`` "trf" (``lsq_solver=trf``, and wherever the gate resolved to fd: 2-point
    differences of the reference residuals). Iterations reach the callback like every other
    method's."""
    analytic = ev.source == "jax"
    if analytic and options.lsq_solver == LsqSolver.lm:
        result = bounded_lm(
            ev.residuals,
            ev.jacobian,
            z0,
            ftol=options.ftol,
            xtol=options.xtol,
            gtol=options.gtol,
            max_nfev=max(options.maxiter, 1),
            callback=lambda z, score: progress.emit(z, score, True),
        )
        return f"lm: {result.message} (nfev={result.nfev}, njev={result.njev})"
    score0 = float(np.sum(ev.residuals(z0) ** 2))
    if analytic:
        ev.jacobian(z0)
    progress.emit(z0, score0, analytic)

    def on_iteration(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        progress.emit(intermediate_result.x, 2.0 * float(intermediate_result.cost), analytic)

    res = scipy.optimize.least_squares(
        ev.residuals,
        z0,
        jac=ev.jacobian if analytic else "2-point",
        bounds=(0.0, 1.0),
        method="trf",
        ftol=options.ftol,
        xtol=options.xtol,
        gtol=options.gtol,
        x_scale=1.0 if options.x_scale == "unit" else "jac",
        max_nfev=max(options.maxiter, 1),
        diff_step=None if analytic else options.fd_step,
        tr_solver="exact",
        callback=on_iteration,
    )
    return f"trf: {res.message} (success={bool(res.success)}, nfev={res.nfev}, njev={res.njev})"


def _run_adam(ev: _Evaluator, progress: _Progress, z0: np.ndarray, options: OptimizerOptions) -> str:
    import optax  # imported here: only this method needs it

    optimizer = optax.adam(options.learning_rate)
    z = np.array(z0, float)
    state = optimizer.init(z)
    for step in range(options.maxiter + 1):
        value, grad = ev.value_and_grad(z)
        progress.emit(z, value, True)
        if projected_grad_norm(z, grad) <= options.gtol:
            return f"projected gradient norm <= gtol after {step} steps"
        if step == options.maxiter:
            break
        updates, state = optimizer.update(grad, state, z)
        z = np.clip(np.asarray(optax.apply_updates(z, updates), float), 0.0, 1.0)
    return f"maxiter ({options.maxiter}) steps done"


@dataclass
class _Start:
    """Everything measured at the starting point before optimizing."""

    evaluation: EvaluationLike
    ratio: float | None
    loss_first_call_s: float | None
    n_objective: int = 1
    n_loss: int = 0


def compile_for(loss: LossLike, method: str) -> float:
    """Compile what a fit by ``method`` evaluates (seconds): least squares its residual
    Jacobian and scores without their gradient, as the derivative-free methods; L-BFGS-B and
    Adam value_and_grad's stages."""
    return loss.compile(jacobian=method == "least-squares", gradient=method in GRADIENT_METHODS - {"least-squares"})


def _measure_start(problem: FitProblem, method: str) -> _Start:
    """The reference score and the loss at the start. The loss compiles the stages ``method``
    needs first (least squares: its residual Jacobian's, and scores without their gradient, as
    the derivative-free methods), the engine's program the reference objective
    shares among them, tracing one after another and compiling in parallel threads; then the
    two first evaluations run side by side. (A reference evaluation started beside the
    compile would trace the shared program in a second Python thread, slowing the loss's
    tracing by as much for the GIL, and win the race for it: sn2's start 11 -> 13 s.)"""
    if problem.loss is None:
        return _Start(problem.objective(problem.start_values), None, None)
    t = time.perf_counter()
    compile_for(problem.loss, method)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(problem.objective, problem.start_values)
        loss0 = float(problem.loss.value(problem.start_values))
        first_call_s = time.perf_counter() - t
        evaluation = pending.result()
    return _Start(evaluation, score_ratio(loss0, float(evaluation.score)), first_call_s, n_loss=1)


def _final_ratio(problem: FitProblem, p: np.ndarray, evaluation: EvaluationLike) -> float | None:
    if problem.loss is None:
        return None
    return score_ratio(float(problem.loss.value(p)), float(evaluation.score))


def _compile_time(loss: LossLike | None, first_call_s: float | None) -> tuple[float | None, str]:
    if loss is not None and loss.compile_seconds is not None:
        return float(loss.compile_seconds), "JaxLoss.compile_seconds"
    if first_call_s is not None:
        return first_call_s, "duration of the first JaxLoss call (upper bound)"
    return None, "no JaxLoss"


@dataclass
class _Run:
    """The optimizer's run: evaluator (counts, best point), progress history, message, divergence."""

    evaluator: _Evaluator
    progress: _Progress
    message: str
    divergence: dict | None
    pool_kind: str | None


def _optimize(
    problem: FitProblem,
    options: OptimizerOptions,
    scaling: BoxScaling,
    source: str,
    callback: Callback | None,
    t0: float,
    journal: FitJournal | None = None,
) -> _Run:
    method = options.canonical_method
    needs_pool = source == "fd" and method in GRADIENT_METHODS - {"least-squares"}
    pool = ScorePool(problem.objective, options.fd_workers, problem.objective_factory) if needs_pool else None
    ev = _Evaluator(problem, scaling, source, options, pool, journal)
    progress = _Progress(ev, callback, t0)
    z0 = scaling.to_unit(problem.start_values)
    divergence = None
    try:
        if method == "adam":
            message = _run_adam(ev, progress, z0, options)
        elif method == "least-squares":
            message = _run_least_squares(ev, progress, z0, options)
        else:
            message = _run_scipy(method, ev, progress, z0, options)
    except _Diverged as exc:
        divergence, message = exc.record, f"diverged: {exc}"
    finally:
        if pool is not None:
            pool.close()
    return _Run(ev, progress, message, divergence, None if pool is None else pool.kind)


@dataclass
class _Verdict:
    """What the reference objective decided about the optimizer's best point."""

    p_final: np.ndarray
    evaluation: EvaluationLike
    status: str
    message: str
    n_objective: int = 0
    divergence: dict | None = None
    rejected: dict | None = None


def _choose_final(
    problem: FitProblem, options: OptimizerOptions, start_eval: EvaluationLike, candidate: np.ndarray | None
) -> _Verdict:
    """The reference objective decides: keep the candidate only if it is really better than the start."""
    p0 = problem.start_values
    if candidate is None:
        return _Verdict(p0, start_eval, "no_progress", "the optimizer produced no finite point; start kept")
    evaluation = problem.objective(candidate)
    score0, score1 = float(start_eval.score), float(evaluation.score)
    if not math.isfinite(score1):
        record = {
            "what": f"non-finite reference score {score1} at the optimizer's best point",
            "value": score1,
            "evaluation": None,
            "parameters": candidate.tolist(),
        }
        return _Verdict(
            p0,
            start_eval,
            "diverged",
            "reference objective non-finite at the optimizer's point; start kept",
            1,
            divergence=record,
        )
    if score1 > score0:
        rejected = {
            "score": score1,
            "ratio": _final_ratio(problem, candidate, evaluation),
            "parameters": candidate.tolist(),
        }
        return _Verdict(
            p0,
            start_eval,
            "reverted",
            f"reference score at the optimizer's point {score1:.6g} is worse "
            f"than at the start {score0:.6g}; start kept",
            1,
            rejected=rejected,
        )
    if score0 - score1 <= options.progress_rtol * abs(score0):
        message = (
            f"no real progress: reference score {score0:.6g} -> {score1:.6g} (relative decrease "
            f"below progress_rtol {options.progress_rtol:g}); optimizer's point kept, it is not worse"
        )
        return _Verdict(candidate, evaluation, "no_progress", message, 1)
    message = f"reference score {score0:.6g} -> {score1:.6g}"
    if not evaluation.all_converged:
        message += "; some minimizations of the reference objective did not converge there (see evaluation_messages)"
    return _Verdict(candidate, evaluation, "improved", message, 1)


def fit(
    problem: FitProblem,
    options: OptimizerOptions | None = None,
    callback: Callback | None = None,
    journal: FitJournal | None = None,
) -> FitResult:
    """Optimize the active parameters of ``problem`` and record every decision in a FitResult.

    ``journal`` (q2mm.optimize.checkpoint) records every evaluation; one loaded from a
    checkpoint first answers the evaluations it holds, so a killed fit resumes on its own path.
    """
    options = options or OptimizerOptions()
    if options.canonical_method == "none":
        raise ConfigurationError("optimizer method 'none' fits nothing; q2mm.run optimizer=none scores the start")
    t0 = time.perf_counter()
    lower, upper = problem.bounds(options.bounds)
    scaling = BoxScaling.from_bounds(lower, upper, problem.start_values)
    start = _measure_start(problem, options.canonical_method)
    decision = decide(options.jac, start.ratio, options.ratio_tol, options.on_ratio_fail, problem.loss is not None)
    context = _Context(problem, options, lower, upper, start, decision, t0)

    score0 = float(start.evaluation.score)
    if not math.isfinite(score0):
        record = {
            "what": f"non-finite reference score {score0} at the start",
            "value": score0,
            "evaluation": 0,
            "parameters": problem.start_values.tolist(),
        }
        verdict = _Verdict(
            problem.start_values,
            start.evaluation,
            "diverged",
            "reference objective non-finite at the start",
            divergence=record,
        )
        return _result(context, verdict)
    if decision.resolved == "stop":
        return _result(context, _Verdict(problem.start_values, start.evaluation, "stopped", decision.reason))

    run = _optimize(problem, options, scaling, decision.resolved, callback, t0, journal)
    candidate = None if run.evaluator.best is None else scaling.to_params(run.evaluator.best.z)
    verdict = _choose_final(problem, options, start.evaluation, candidate)
    if run.divergence is not None:
        verdict.status, verdict.message = "diverged", f"{run.message}; {verdict.message}"
        verdict.divergence = run.divergence
    wanted = (
        options.identifiability if options.identifiability is not None else options.canonical_method == "least-squares"
    )
    context.identifiability = (
        _identifiability(problem, decision.resolved, verdict.p_final, upper - lower, run.evaluator.last_jacobian)
        if wanted
        else "not requested (optimizer.identifiability=true computes it for any method)"
    )
    if isinstance(context.identifiability, Identifiability) and context.identifiability.undetermined:
        names = context.identifiability.undetermined
        verdict.message += (
            f"; the training set leaves {len(names)} of {len(problem.refs)} active parameters "
            f"undetermined (standard error above the bound width): {', '.join(names)}"
        )
    return _result(context, verdict, run)


def _identifiability(
    problem: FitProblem, source: str, p: np.ndarray, width: np.ndarray, last: RawJacobian | None = None
) -> Identifiability | str:
    """Standard errors and correlations from the analytic Jacobian at the result, or why not;
    ``last``, the fit's last Jacobian, is reused where it was taken at the result."""
    if problem.loss is None:
        return "no analytic Jacobian (no differentiable loss)"
    if source != "jax":
        return "the ratio gate did not trust the analytic derivatives (jac resolved to fd)"
    p = np.asarray(p, float)
    r, jac = (
        (last.r, last.jac) if last is not None and last.p == p.tobytes() else problem.loss.residuals_and_jacobian(p)
    )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(jac))):
        return "non-finite residuals or Jacobian at the result"
    return identifiability(jac, r, width, problem.names())


@dataclass
class _Context:
    problem: FitProblem
    options: OptimizerOptions
    lower: np.ndarray
    upper: np.ndarray
    start: _Start
    decision: GateDecision
    t0: float
    identifiability: Identifiability | str | None = None


def _result(ctx: _Context, verdict: _Verdict, run: _Run | None = None) -> FitResult:
    problem, options, start = ctx.problem, ctx.options, ctx.start
    ratio_final = _final_ratio(problem, verdict.p_final, verdict.evaluation) if run else start.ratio
    compile_s, compile_source = _compile_time(problem.loss, start.loss_first_call_s)
    ev = run.evaluator if run else None
    n_ratio_final = 1 if run and problem.loss is not None else 0
    n_ratio_rejected = 1 if verdict.rejected and problem.loss is not None else 0
    return FitResult(
        status=verdict.status,
        message=verdict.message,
        refs=problem.refs,
        kinds=problem.kinds,
        p_file=np.array(problem.file_values, float),
        p_initial=problem.start_values.copy(),
        p_final=np.array(verdict.p_final, float),
        lower=ctx.lower,
        upper=ctx.upper,
        initial=start.evaluation,
        final=verdict.evaluation,
        ratio_initial=start.ratio,
        ratio_final=ratio_final,
        jac_requested=options.jac,
        jac_resolved=ctx.decision.resolved if ctx.decision.resolved != "stop" else "none",
        jac_reason=ctx.decision.reason,
        method=options.canonical_method,
        options=options.as_dict(),
        scope=problem.scope,
        start=problem.start,
        start_record=list(problem.start_record),
        unused_refs=tuple(problem.unused_refs),
        n_iterations=max(len(run.progress.history) - 1, 0) if run else 0,
        n_objective_evals=start.n_objective + verdict.n_objective + (ev.n_objective if ev else 0),
        n_loss_evals=start.n_loss + (ev.n_loss if ev else 0) + n_ratio_final + n_ratio_rejected,
        wall_time_s=time.perf_counter() - ctx.t0,
        compile_time_s=compile_s,
        compile_time_source=compile_source,
        optimizer_message=run.message if run else "not run",
        fd_parallel=run.pool_kind if run else None,
        history=list(run.progress.history) if run else [],
        divergence=verdict.divergence,
        rejected=verdict.rejected,
        forcefield=problem.forcefield,
        identifiability=ctx.identifiability,
    )
