"""``python -m q2mm.evaluate [overrides]``: score a force field on a system without fitting
(the job ``python -m q2mm.run optimizer=none`` runs).

Takes the runner's overrides (``system=``, ``system.forcefield=PATH`` for another ``.fld``,
``start=``, ``scope=``, ``validation.holdout=[...]``, ``tracking.*``) and logs to MLflow like a
fit whose start is its end: the score (``score_initial`` = ``score_final``), R2/RMSD per kind,
the ratio JaxLoss/ObjectiveFunction (unless ``ratio_tol=null``), contributions per structure
and kind, the worst observations, held-out scores, selectivity, parity plots. See docs/runner.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

import q2mm.jaxconfig  # noqa: F401  (float64 and the persistent compile cache before any JAX work)
from q2mm.config import OptimizerConfig, register_configs
from q2mm.optimize.result import EVALUATION_SUFFIX
from q2mm.paths import CONF_DIR
from q2mm.pipeline import (
    JobContext,
    JobOutcome,
    assessment_artifacts,
    console_exit,
    evaluation_pairs,
    input_files,
    run_or_exit,
    scope_files,
    system_spec,
    validation_split,
)
from q2mm.tracking.progress import IterationProgress

register_configs()


def evaluate_system(cfg: DictConfig, ctx: JobContext, progress: IterationProgress) -> JobOutcome:
    """Score the configured force field (at the configured start) on the system; write the summary."""
    from q2mm.compose import problem_from_config
    from q2mm.evaluation.assess import fit_assessment, forcefield_at
    from q2mm.optimize.gate import score_ratio
    from q2mm.paths import data_root
    from q2mm.systems import load_system

    began = time.perf_counter()
    spec = system_spec(cfg.system)
    root = data_root(cfg.data_root)
    training_set = load_system(spec, None if spec.embedded else root)
    split = validation_split(training_set, cfg)
    gated = cfg.ratio_tol is not None  # else no JaxLoss runs: the reference takes the engine's own program
    problem = problem_from_config(split.training, cfg, share_engine=gated)
    loss = problem.loss if gated else None
    if loss is not None:  # scores without a gradient; compiles the engine program the reference objective calls
        loss.compile(gradient=False)
    evaluation = problem.objective(problem.start_values)
    progress(0, float(evaluation.score))
    ratio = None if loss is None else score_ratio(float(loss.value(problem.start_values)), float(evaluation.score))
    ff = forcefield_at(problem, problem.start_values)
    assessment = fit_assessment(split, problem.objective, evaluation, evaluation, ff, ff, spec.selectivity)
    summary = evaluation_summary(problem, evaluation, ratio, time.perf_counter() - began) | assessment
    summary["forcefield"] = str(training_set.forcefield_path)
    json_path = write_summary(ctx.output_dir, training_set.forcefield_path, summary)
    artifacts: list[tuple[Path, str | None]] = [(json_path, None)]
    artifacts += assessment_artifacts(ctx.output_dir, assessment)
    if cfg.tracking.plots:
        from q2mm.tracking.plots import evaluation_parity_plots

        pngs = evaluation_parity_plots(evaluation_pairs(evaluation), ctx.output_dir / "plots", "(evaluated)")
        artifacts += [(png, None) for png in pngs]  # top level, as a fit's: the compare page lists them
    artifacts += [(path, "inputs") for path in scope_files(cfg)]
    return JobOutcome(summary, len(split.training.molecules), input_files(training_set, root, cfg), artifacts)


def evaluation_summary(problem: Any, evaluation: Any, ratio: float | None, wall_s: float) -> dict[str, Any]:
    """A fit summary of an evaluation: its start is its end (no iterations, score change 0)."""
    from q2mm.evaluation.scoring import scored, stats_table
    from q2mm.optimize.result import _jsonable

    card = scored(problem.objective, evaluation)
    score = float(evaluation.score)
    return _jsonable(
        {
            "summary_version": 1,
            "status": "evaluated",
            "message": "scored without fitting",
            "score_initial": score,
            "score_final": score,
            "score_delta_pct": 0.0,
            "r2": stats_table(card, card),
            "ratio_initial": ratio,
            "ratio_final": ratio,
            "jac_requested": "none",
            "jac_resolved": "none",
            "jac_reason": "evaluation: nothing is optimized",
            "method": "none",
            "scope": problem.scope,
            "start": problem.start,
            "start_record": problem.start_record,
            "n_active": len(problem.refs),
            "n_iterations": 0,
            "n_objective_evals": 1,
            "n_loss_evals": 0 if ratio is None else 1,
            "wall_time_s": wall_s,
            "compile_time_s": None if ratio is None or problem.loss is None else problem.loss.compile_seconds,
            "evaluation_messages": [str(m) for m in evaluation.messages],
            "evaluation_notes": [str(m) for m in evaluation.notes],
            "history": [{"iteration": 0, "score": score}],
        }
    )


def write_summary(outdir: Path, forcefield_path: Path, summary: dict[str, Any]) -> Path:
    """``<fld stem>-evaluation.json`` in ``outdir`` (never over an existing file)."""
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{Path(forcefield_path).stem}{EVALUATION_SUFFIX}"
    with open(path, "x", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")
    return path


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> Any:
    """Hydra task: evaluate the configured force field on the configured system and log the run
    (``python -m q2mm.run optimizer=none`` with the same overrides runs the same job)."""
    cfg.optimizer = OptimizerConfig(method="none")  # what optimizer=none composes: nothing is optimized
    return run_or_exit(cfg)


def cli() -> None:
    """Console script ``q2mm-evaluate``: the same as ``python -m q2mm.evaluate``."""
    console_exit(main)


if __name__ == "__main__":
    cli()
