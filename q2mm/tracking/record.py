"""What one job logs to MLflow, built from the resolved config and the fit summary.

The fit summary is ``FitResult.summary()`` (q2mm.optimize.result): flat ``score_initial``,
``score_final``, ``score_delta_pct``, ``ratio_initial``/``ratio_final`` (None when not
measured), ``r2: {kind: {"initial", "final", "rmsd_initial", "rmsd_final"}}``,
``n_at_bound``, ``jac_requested``/``jac_resolved``, ``n_active``, ``n_iterations``,
``n_objective_evals`` (reference objective), ``n_loss_evals`` (JaxLoss), ``wall_time_s`` (the
fit alone), ``compile_time_s`` (None when unknown) and ``history: [{"iteration", "score", ...}]``;
non-finite floats are the strings 'nan'/'inf'. :func:`metrics_from_summary` is the one place
that reads it; keys a summary lacks are left out, so other summaries log what they have.

Metric names (README "What a run logs" lists their meaning): ``score_final`` first, so that
MLflow's compare page charts it by default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

REQUIRED_KINDS = ("eig_diag", "bond_length", "bond_angle")
SCORES = ("score_final", "score_initial", "score_delta_pct")  # score_final first: compare's default chart
# metric name <- summary key: counters as the terminal prints them
COUNTERS = {
    "n_at_bound": "n_at_bound",
    "ratio_initial": "ratio_initial",
    "ratio_final": "ratio_final",
    "n_iterations": "n_iterations",
    "n_reference_evals": "n_objective_evals",
    "n_loss_evals": "n_loss_evals",
    "fit_time_s": "wall_time_s",
    "compile_time_s": "compile_time_s",
}


@dataclass
class RunRecord:
    """Everything logged for one job: params, final metrics, the score curve, tags, artifacts."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    curve: Sequence[float] = ()
    curve_steps: Sequence[int] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)  # (file, artifact dir)
    texts: dict[str, str] = field(default_factory=dict)  # artifact file -> text (copies for preview)
    description: str = ""  # Markdown shown on the run's page


def _param_value(value: Any) -> str:
    if isinstance(value, (ListConfig, DictConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    return "None" if value is None else str(value)


def flatten_config(cfg: DictConfig, prefix: str = "") -> dict[str, str]:
    """The resolved job config (without ``hydra``) as dotted MLflow params."""
    flat: dict[str, str] = {}
    for key, value in cfg.items():
        if key == "hydra":
            continue
        name = prefix + str(key)
        if isinstance(value, DictConfig):
            flat.update(flatten_config(value, prefix=f"{name}."))
        else:
            flat[name] = _param_value(value)
    return flat


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def metrics_from_summary(summary: Mapping[str, Any]) -> dict[str, float]:
    """Final metrics of a fit, in logging order: scores (``score_final`` first), R2 and RMSD
    (in the kind's physical unit) per kind before and after, parameters at a bound, ratios,
    iterations, evaluations of the reference objective and of the loss, fit and compile time.

    Values that are missing or not finite (an unmeasured ratio, an unknown compile time)
    are left out rather than logged as NaN. The job's wall time is logged by the tracker
    when the run ends (:meth:`TrackedRun.finish`), as the terminal prints it.
    """
    metrics: dict[str, float | None] = {key: _finite(summary.get(key)) for key in SCORES}
    for kind, row in summary.get("r2", {}).items():
        for when in ("initial", "final"):
            metrics[f"r2_{kind}_{when}"] = _finite(row.get(when))
            metrics[f"rmsd_{kind}_{when}"] = _finite(row.get(f"rmsd_{when}"))
    unrounded = summary.get("unrounded") or {}  # the optimizer's point, where the written .fld scores otherwise
    metrics["score_final_unrounded"] = _finite(unrounded.get("score_final"))
    for name, key in COUNTERS.items():
        metrics[name] = _finite(summary.get(key))
    ident = summary.get("identifiability") or {}
    if "undetermined" in ident:
        metrics["n_undetermined"] = float(len(ident["undetermined"]))
        metrics["jacobian_condition_number"] = _finite(ident.get("condition_number"))
    return {key: value for key, value in metrics.items() if value is not None}


def score_curve(summary: Mapping[str, Any]) -> tuple[list[int], list[float]]:
    """(steps, scores) of the per-iteration history (iteration 0 = the start)."""
    rows = [row for row in summary.get("history", []) if _finite(row.get("score")) is not None]
    return [int(row["iteration"]) for row in rows], [float(row["score"]) for row in rows]


def fit_params(summary: Mapping[str, Any], n_molecules: int) -> dict[str, str]:
    """Params that only the fit knows: the gradient path requested and taken, sizes."""
    return {
        "jac_requested": str(summary["jac_requested"]),
        "jac_resolved": str(summary["jac_resolved"]),
        "jac_reason": str(summary.get("jac_reason", ""))[:500],
        "fit_status": str(summary.get("status", "")),
        "n_molecules": str(n_molecules),
        "n_active_params": str(summary["n_active"]),
    }


def _metric_name(text: str) -> str:
    """A group or kind name as an MLflow metric-name piece (letters, digits, _ - .)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(text))


def assessment_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """Metrics of the optional assessment keys (q2mm.evaluation.assess): score contributions per
    kind and structure, ``holdout_*`` scores/R2/RMSD, selectivity MUE, R2 and differences per pair."""
    metrics: dict[str, float | None] = {}
    for when, table in summary.get("contributions", {}).items():
        for kind, value in table["by_kind"].items():
            metrics[f"contribution_{kind}_{when}"] = _finite(value)
        for row in table["by_structure"]:
            metrics[f"contribution_structure_{row['index']}_{when}"] = _finite(row["score"])
    holdout = summary.get("holdout")
    if holdout:
        metrics["n_holdout"] = float(len(holdout["structures"]))
        for when in ("initial", "final"):
            metrics[f"holdout_score_{when}"] = _finite(holdout[f"score_{when}"])
            for kind, row in holdout["r2"].items():
                metrics[f"holdout_r2_{kind}_{when}"] = _finite(row.get(when))
                metrics[f"holdout_rmsd_{kind}_{when}"] = _finite(row.get(f"rmsd_{when}"))
    for when, table in summary.get("selectivity", {}).items():
        metrics[f"selectivity_mue_kj_{when}"] = _finite(table["mue_kj"])
        metrics[f"selectivity_r2_{when}"] = _finite(table["r2"])
        for row in table["pairs"]:
            pair = f"{_metric_name(row['b'])}_vs_{_metric_name(row['a'])}"
            metrics[f"selectivity_{pair}_qm_kj"] = _finite(row["qm_kj"])
            metrics[f"selectivity_{pair}_mm_kj_{when}"] = _finite(row["mm_kj"])
    return {key: value for key, value in metrics.items() if value is not None}
