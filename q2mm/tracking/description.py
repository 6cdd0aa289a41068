"""The Markdown a run's MLflow page shows as its description (tag ``mlflow.note.content``),
and the closing line a job prints: what was fitted, how the score and each kind's R2 and
RMSD changed, what the optimizer said, which parameters ended at a bound, where the .fld is.
Generic over the summary: a key it lacks is left out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from q2mm.model.termtable import CLASS_OF_KIND
from q2mm.optimize.bounds import BoundsOptions, is_box_bound
from q2mm.tracking.kinds import kind_label

# the share of the active parameters on the edge of their fractional interval from which the
# closing lines suggest a second fit or a wider box (a few at a bound is an ordinary fit)
BOX_ADVICE_SHARE = 0.25


@dataclass(frozen=True)
class RunFacts:
    """What the config says about a job, for its description."""

    name: str
    system: str
    scope: str
    start: str
    optimizer: str
    swept: str = ""  # the job's swept values, e.g. "fc_fraction=0.1"
    fld_path: str = ""
    fld_preview: str = ""  # artifact name of the previewable copy


def _num(value: Any, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return format(number, fmt) if math.isfinite(number) else "-"


def kind_table(r2: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Markdown rows: kind, R2 before/after, RMSD before/after with its unit."""
    rows = ["| kind | R² before | R² after | RMSD before | RMSD after | unit |", "|---|---|---|---|---|---|"]
    for kind, row in r2.items():
        label = kind_label(kind)
        rows.append(
            f"| {label.title} | {_num(row.get('initial'), '.4f')} | {_num(row.get('final'), '.4f')} | "
            f"{_num(row.get('rmsd_initial'), '.4g')} | {_num(row.get('rmsd_final'), '.4g')} | {label.unit} |"
        )
    return rows


def bound_line(summary: Mapping[str, Any]) -> str:
    """``6 of 14 parameters at a bound: line 12 field 1 (lower), ...``."""
    rows = [r for r in summary.get("parameters", []) if r.get("at_bound")]
    n_active = summary.get("n_active", len(summary.get("parameters", [])))
    if "n_at_bound" not in summary and not rows:
        return ""
    count = summary.get("n_at_bound", len(rows))
    which = ", ".join(
        f"line {r['line']} field {r['field']} {r.get('kind', '')} ({r['at_bound']})".replace("  ", " ")
        for r in rows[:20]
    )
    more = f", ... {len(rows) - 20} more" if len(rows) > 20 else ""
    return f"{count} of {n_active} parameters at a bound" + (f": {which}{more}" if which else "")


def score_text(summary: Mapping[str, Any]) -> str:
    return (
        f"{_num(summary.get('score_initial'), '.4e')} -> {_num(summary.get('score_final'), '.4e')} "
        f"({_num(summary.get('score_delta_pct'), '+.1f')} %)"
    )


def run_description(summary: Mapping[str, Any], facts: RunFacts) -> str:
    """The run page's Markdown description."""
    lines = [
        f"**{facts.name}**: system `{facts.system}`, scope `{facts.scope}`, start `{facts.start}`, "
        f"optimizer `{facts.optimizer}`, gradient `{summary.get('jac_resolved', '-')}`."
    ]
    if facts.swept:
        lines.append(f"Swept values: `{facts.swept}`.")
    lines += ["", f"Score {score_text(summary)}; status `{summary.get('status', '-')}`: {summary.get('message', '')}"]
    if summary.get("r2"):
        lines += ["", *kind_table(summary["r2"])]
    bounds = bound_line(summary)
    if bounds:
        lines += ["", bounds + "."]
    for advice in advice_lines(summary, facts.fld_path):
        lines += ["", f"Hint: {advice}."]
    lines += [
        "",
        f"Optimizer: {summary.get('optimizer_message', '-')} after {summary.get('n_iterations', '-')} iterations.",
    ]
    times = (
        f"fit {_num(summary.get('wall_time_s'), '.1f')} s, JAX compile {_num(summary.get('compile_time_s'), '.1f')} s"
    )
    lines += ["", f"Times: {times} (the run's wall time, loading and logging included, is `wall_time_s`)."]
    if facts.fld_path:
        preview = f" (preview: artifact `{facts.fld_preview}`)" if facts.fld_preview else ""
        lines += ["", f"Fitted force field: `{facts.fld_path}`{preview}."]
    return "\n".join(lines) + "\n"


def _fell(start: Any, end: Any) -> bool:
    """An R2 that fell by what the printed four decimals show (not by rounding noise)."""
    numbers = isinstance(start, (int, float)) and isinstance(end, (int, float))
    return numbers and round(float(end), 4) < round(float(start), 4)


def r2_change_line(r2: Mapping[str, Mapping[str, Any]]) -> str:
    """``R2 start -> end: bond length 0.9939 -> 0.9891 (lower), ...`` (empty without R2)."""
    parts = []
    for kind, row in r2.items():
        start, end = row.get("initial"), row.get("final")
        if not isinstance(end, (int, float)):
            continue
        lower = " (lower)" if _fell(start, end) else ""
        parts.append(f"{kind_label(kind).title} {_num(start, '.4f')} -> {end:.4f}{lower}")
    return "R2 start -> end: " + ", ".join(parts) if parts else ""


# a geometry kind and the equilibrium values that set it (docs/performance.md, "Which values the
# eigenmatrix may move": scored at the non-stationary QM geometry, the eigenmatrix rewards moving them)
EQUILIBRIUM_OF_KIND = {"bond_length": "bond_r0", "bond_angle": "angle_theta0"}


def equilibrium_advice(summary: Mapping[str, Any]) -> str:
    """A hint where a geometry kind's R2 fell while equilibrium values of it ended at a bound
    with the eigenmatrix scored; empty otherwise."""
    r2 = summary.get("r2", {})
    if "eig_diag" not in r2:
        return ""
    notes = []
    for kind, param_kind in EQUILIBRIUM_OF_KIND.items():
        row = r2.get(kind, {})
        start, end = row.get("initial"), row.get("final")
        if not _fell(start, end):
            continue
        params = [p for p in summary.get("parameters", []) if p.get("kind") == param_kind]
        at_bound = [p for p in params if p.get("at_bound")]
        if at_bound:
            lines = ", ".join(str(p["line"]) for p in at_bound[:6]) + (", ..." if len(at_bound) > 6 else "")
            notes.append(
                f"{kind_label(kind).title} R2 fell while {len(at_bound)} of {len(params)} {param_kind} ended at a bound (lines {lines})"
            )
    if not notes:
        return ""
    return (
        "; ".join(notes) + ": the eigenmatrix, scored at the QM geometry, rewards moving equilibrium values; "
        "scope=opt_fc fits force constants only (docs/performance.md)"
    )


def bounds_advice(summary: Mapping[str, Any], fld_path: str = "") -> str:
    """A hint where at least ``BOX_ADVICE_SHARE`` of the active parameters (two or more) ended
    on the edge of their fractional interval (``bounds.is_box_bound``): the fit wanted to go
    further than one run's trust box lets it; empty otherwise."""
    options = BoundsOptions(**((summary.get("options") or {}).get("bounds") or {}))
    params = summary.get("parameters", [])
    on_box = [p for p in params if p.get("at_bound") and _ended_on_box(p, options)]
    if len(on_box) < max(2, BOX_ADVICE_SHARE * len(params)):
        return ""
    again = f"system.forcefield={fld_path}" if fld_path else "the written .fld as system.forcefield"
    return (
        f"{len(on_box)} of {len(params)} parameters ended on the edge of this fit's box (force constants "
        f"+/-{options.fc_fraction:.0%}, equilibrium values +/-{options.eq_fraction:.0%} of their start): "
        f"fit again from the result ({again}) or widen optimizer.bounds.fc_fraction / eq_fraction"
    )


def advice_lines(summary: Mapping[str, Any], fld_path: str = "") -> list[str]:
    """The hints a finished fit gives (closing lines and run page): equilibrium values the
    eigenmatrix moved, a fit that ran into its box."""
    return [a for a in (equilibrium_advice(summary), bounds_advice(summary, fld_path)) if a]


def _ended_on_box(row: Mapping[str, Any], options: BoundsOptions) -> bool:
    bound, start = row.get(str(row.get("at_bound"))), row.get("initial")
    if not (isinstance(bound, (int, float)) and isinstance(start, (int, float)) and row.get("kind") in CLASS_OF_KIND):
        return False
    return is_box_bound(str(row["kind"]), float(start), float(bound), options)


def closing_line(summary: Mapping[str, Any], wall_s: float, fld_path: str = "", url: str = "") -> str:
    """The job's last terminal lines: score, worst final R2, times, optimizer message; R2 per kind
    start -> end; the .fld; the run URL."""
    r2 = [
        float(row["final"])
        for row in summary.get("r2", {}).values()
        if isinstance(row.get("final"), (int, float)) and math.isfinite(row["final"])
    ]
    parts = [
        f"score {score_text(summary)}",
        f"R2 min {min(r2):.4f}" if r2 else "",
        f"{summary.get('n_iterations', '-')} iterations",
        f"wall {wall_s:.1f} s (compile {_num(summary.get('compile_time_s'), '.1f')} s)",
        f"{summary.get('n_at_bound')} at a bound" if summary.get("n_at_bound") is not None else "",
        f"optimizer: {summary.get('optimizer_message', '-')}",
    ]
    line = "; ".join(p for p in parts if p)
    for extra in [r2_change_line(summary.get("r2", {})), *advice_lines(summary, fld_path)]:
        if extra:
            line += f"\n  {extra}"
    if fld_path:
        line += f"\n  wrote {fld_path}"
    if url:
        line += f"\n  run: {url}"
    return line
