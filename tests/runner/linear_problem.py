"""A small, real weighted least-squares fit for exercising the runner's tracking without a
training set: three observation kinds, the reference objective and an exact differentiable loss."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from q2mm.optimize import FitProblem, OptimizerOptions, fit
from q2mm.pipeline import JobOutcome, evaluation_pairs, identifiability_artifacts
from q2mm.tracking.plots import parity_plots

KINDS = ("eig_diag", "bond_length", "bond_angle")
PARAM_KINDS = ("bond_k", "bond_r0", "angle_k", "angle_theta0")
TRUE = np.array([4.0, 1.45, 0.6, 110.0])
START = np.array([3.5, 1.50, 0.55, 108.0])


@dataclass(frozen=True)
class KindResult:
    ref: np.ndarray
    calc: np.ndarray
    r2: float
    rmsd: float


@dataclass(frozen=True)
class Evaluation:
    score: float
    by_kind: dict
    residuals: np.ndarray | None = None
    all_converged: bool = True
    messages: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class LinearObjective:
    """score(p) = sum (ref - A p)^2, rows split evenly over three observation kinds."""

    last_info = None  # no inner minimizations
    compile_seconds = None  # nothing compiled

    def __init__(self, n_obs: int = 30, seed: int = 3):
        rng = np.random.default_rng(seed)
        self.matrix = rng.normal(size=(n_obs, TRUE.size)) / TRUE
        self.ref = self.matrix @ TRUE

    def __call__(self, p: np.ndarray) -> Evaluation:
        calc = self.matrix @ np.asarray(p, float)
        parts = np.array_split(np.arange(self.ref.size), len(KINDS))
        by_kind = {kind: _stats(self.ref[idx], calc[idx]) for kind, idx in zip(KINDS, parts)}
        return Evaluation(float(np.sum((self.ref - calc) ** 2)), by_kind, self.ref - calc)

    def value(self, p: np.ndarray) -> float:
        return self(p).score

    def value_and_grad(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        residual = self.ref - self.matrix @ np.asarray(p, float)
        return float(residual @ residual), -2.0 * self.matrix.T @ residual

    def compile(self, jacobian: bool = False, gradient: bool | None = None) -> float:
        return 0.0  # nothing to compile

    def residuals_and_jacobian(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.ref - self.matrix @ np.asarray(p, float), -self.matrix

    def residuals(self, p: np.ndarray) -> np.ndarray:
        return self.residuals_and_jacobian(p)[0]


def _stats(ref: np.ndarray, calc: np.ndarray) -> KindResult:
    ss_res = float(np.sum((ref - calc) ** 2))
    return KindResult(
        ref, calc, 1.0 - ss_res / float(np.sum((ref - ref.mean()) ** 2)), float(np.sqrt(ss_res / ref.size))
    )


@dataclass(frozen=True)
class Ref:
    line: int
    field: int


def linear_fitter(cfg, ctx, progress) -> JobOutcome:
    """Stands in for the system loader + engine: a real ``fit`` of the linear problem, with the
    runner's options, its progress callback, a JSON summary and parity plots in the job dir."""
    from q2mm.pipeline import optimizer_options

    objective = LinearObjective()
    problem = FitProblem(
        refs=[Ref(10 + i, 2) for i in range(TRUE.size)],
        kinds=PARAM_KINDS,
        start_values=START,
        objective=objective,
        loss=objective,
        scope=cfg.scope.name,
    )
    options: OptimizerOptions = optimizer_options(cfg)
    result = fit(problem, options, callback=lambda info: progress(info.iteration, info.score))
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    json_path = ctx.output_dir / "linear-fit.json"
    json_path.write_text(json.dumps(summary))
    pngs = parity_plots(evaluation_pairs(result.initial), evaluation_pairs(result.final), ctx.output_dir / "plots")
    extra = identifiability_artifacts(result, ctx.output_dir, True)
    return JobOutcome(summary, 2, [Path(__file__)], [(json_path, None)] + [(p, None) for p in pngs] + extra)
