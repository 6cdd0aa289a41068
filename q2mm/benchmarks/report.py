"""The bench's results as Markdown tables (printed, and pasted into docs/performance.md) and JSON."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from q2mm.benchmarks.timing import Stats

# Targets stated for rh-enamide (9 TS, published start, OPT scope) on the issue.
HESSIAN_TARGET_S = 0.050
JAXLOSS_TARGET_S = 2.0
FD_RATIO_TARGET = 50.0
FIT_TARGET_S = 300.0
JACOBIAN_RATIO_TARGET = 3.0  # residual Jacobian / value+grad at the OPT scope's 96 parameters
JACOBIAN_RATIO_TARGET_WIDE = 6.0  # ... and at every parameter the structures use (345)
LINEAR_SLACK = 1.1  # cost linear in structures: 27 structures (nine repeated) <= 1.1 * 27/9 = 3.3x the time of 9


def jacobian_ratio(obj: dict[str, Any]) -> float:
    return obj["jacobian"].median / obj["jaxloss_vg"].median


def fmt_seconds(seconds: float | None) -> str:
    """A duration in the unit that keeps three significant figures readable."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def stats_row(label: str, stats: Stats | None) -> list[str]:
    if stats is None:
        return [label, "-", "-", "-", "0"]
    return [label, fmt_seconds(stats.median), fmt_seconds(stats.min), fmt_seconds(stats.max), str(stats.n)]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """One stated performance target and whether this bench met it."""

    name: str
    limit: str
    measured: str
    met: bool | None


def timing_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per timed quantity (median, min, max, repetitions)."""
    rows: list[list[str]] = []
    compile_ = results.get("compile")
    if compile_:
        rows.append(stats_row("setup: load system + build problem (fresh process)", compile_["setup"]))
        for phase in ("cold", "warm"):
            for name in ("energy", "gradient", "hessian"):
                rows.append(stats_row(f"compile engine {name}, {phase} cache", compile_[f"engine_{name}_{phase}"]))
            rows.append(stats_row(f"compile JaxLoss value+grad, {phase} cache", compile_[f"jaxloss_{phase}"]))
    engine = results.get("engine")
    atoms = results["system"]["largest_atoms"]
    for name in ("energy", "gradient", "hessian"):
        if engine:
            rows.append(stats_row(f"engine {name}, largest structure ({atoms} atoms)", engine[name]))
    obj = results.get("objectives")
    if obj:
        rows.append(stats_row("ObjectiveFunction (reference score)", obj["objective"]))
        rows.append(stats_row("JaxLoss value+grad, minima from the QM geometry", obj["jaxloss_vg"]))
        rows.append(stats_row("JaxLoss value+grad, warm-started minima (same point)", obj["jaxloss_vg_warm"]))
        if obj.get("jacobian") is not None:
            m, n = obj["jacobian_shape"]
            rows.append(
                stats_row(f"JaxLoss residual Jacobian ({m} x {n}), minima from the QM geometry", obj["jacobian"])
            )
    fd = results.get("fd")
    if fd:
        rows.append(
            stats_row(
                f"FD gradient, serial ({len(fd['params_measured'])} of {fd['n_free']} parameters "
                f"timed, scaled to {fd['evaluations']} evaluations)",
                fd["gradient"],
            )
        )
    return rows


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """Single numbers: ratio, scores, memory, fit."""
    rows = []
    fd, obj = results.get("fd"), results.get("objectives")
    if fd:
        rows.append(["FD gradient / JaxLoss value+grad (medians)", f"{results['fd_ratio']:.1f}x"])
    if obj and obj.get("jacobian") is not None:
        rows.append(["residual Jacobian / JaxLoss value+grad (medians)", f"{jacobian_ratio(obj):.2f}x"])
        rows.append(
            [
                "compile: JaxLoss stages / residual Jacobian stage (this process)",
                f"{fmt_seconds(obj['jaxloss_compile_s'])} / {fmt_seconds(obj['jacobian_compile_s'])}",
            ]
        )
        for name, part in obj.get("stage_seconds", {}).items():
            rows.append(
                [
                    f"compile stage {name}: trace + lower / XLA compile",
                    f"{fmt_seconds(part['lower'])} / {fmt_seconds(part['compile'])}",
                ]
            )
    if obj:
        rows.append(
            [
                "score: ObjectiveFunction / JaxLoss at the start",
                f"{obj['score_objective']:.6e} / {obj['score_jaxloss']:.6e}",
            ]
        )
    memory = results.get("memory", {})
    if memory.get("peak_rss_mib"):
        rows.append(["peak resident memory, bench process", f"{memory['peak_rss_mib']:.0f} MiB"])
    if memory.get("children_peak_rss_mib"):
        rows.append(
            ["peak resident memory, largest finished child process", f"{memory['children_peak_rss_mib']:.0f} MiB"]
        )
    fit = results.get("fit")
    if fit:
        rows.append(["fit end to end (load, build, compile, optimize)", fmt_seconds(fit["total_s"])])
        rows.append(
            [
                "fit: inside fit() / of which JaxLoss compile",
                f"{fmt_seconds(fit['wall_time_s'])} / {fmt_seconds(fit['compile_time_s'])}",
            ]
        )
        rows.append(
            [
                "fit: method, gradient, iterations",
                f"{fit['method']}, {fit['jac_resolved']}, {fit['n_iterations']} iterations, "
                f"{fit['n_loss_evals']} JaxLoss + {fit['n_objective_evals']} objective evaluations",
            ]
        )
        rows.append(
            [
                "fit: score",
                f"{fit['score_initial']:.6e} -> {fit['score_final']:.6e} "
                f"({fit['score_delta_pct']:+.2f} %, {fit['status']})",
            ]
        )
    return rows


def targets(results: dict[str, Any]) -> list[Target]:
    """The issue's targets (stated for rh-enamide) against this run's medians."""
    out = []
    if results.get("engine"):
        hessian = results["engine"]["hessian"].median
        out.append(
            Target("Hessian, largest structure, warm", "< 50 ms", fmt_seconds(hessian), hessian < HESSIAN_TARGET_S)
        )
    if results.get("objectives"):
        vg = results["objectives"]["jaxloss_vg"].median
        out.append(
            Target("JaxLoss value+grad (compiled, minima from QM)", "< 2 s", fmt_seconds(vg), vg < JAXLOSS_TARGET_S)
        )
    obj = results.get("objectives") or {}
    if obj.get("jacobian") is not None:
        n = obj["jacobian_shape"][1]
        limit = JACOBIAN_RATIO_TARGET if n <= 100 else JACOBIAN_RATIO_TARGET_WIDE
        out.append(
            Target(
                f"residual Jacobian / value+grad ({n} parameters)",
                f"<= {limit:g}x",
                f"{jacobian_ratio(obj):.2f}x",
                jacobian_ratio(obj) <= limit,
            )
        )
    if results.get("fd"):
        ratio = results["fd_ratio"]
        out.append(Target("FD gradient / JaxLoss value+grad", ">= 50x", f"{ratio:.1f}x", ratio >= FD_RATIO_TARGET))
    if results.get("fit"):
        total = results["fit"]["total_s"]
        out.append(Target("full fit, end to end", "< 5 min", fmt_seconds(total), total < FIT_TARGET_S))
    return out + scaling_targets(results.get("scaling") or [])


def scaling_targets(rows: list[dict[str, Any]]) -> list[Target]:
    """Cost linear in structures: a row of the training set repeated to n structures against the
    largest "first k" row with the same active parameters, within LINEAR_SLACK * n / k, for
    value+grad, the Jacobian and (when both rows have one) the fit."""
    out = []
    for row in rows:
        bases = [
            r
            for r in rows
            if r["label"].startswith("first ")
            and r["n_active"] == row["n_active"]
            and r["n_structures"] < row["n_structures"]
        ]
        if "repeated to" not in row["label"] or not bases:
            continue
        base = max(bases, key=lambda r: r["n_structures"])
        n, k = row["n_structures"], base["n_structures"]
        limit = LINEAR_SLACK * n / k
        paired = bool(row.get("interleaved") and base.get("interleaved"))
        pairs = [("value+grad", *cost_ratio(row["jaxloss_vg"], base["jaxloss_vg"], paired))]
        if row.get("jacobian") and base.get("jacobian"):
            pairs.append(("residual Jacobian", *cost_ratio(row["jacobian"], base["jacobian"], paired)))
        if row.get("fit") and base.get("fit"):
            ratio = row["fit"]["wall_time_s"] / base["fit"]["wall_time_s"]
            pairs.append(("one fit", ratio, f"{ratio:.2f}x"))
        for what, ratio, text in pairs:
            out.append(Target(f"{what}, {n} / {k} structures", f"<= {limit:.3g}x", text, ratio <= limit))
    return out


def cost_ratio(big: Stats, small: Stats, paired: bool) -> tuple[float, str]:
    """How many times ``small``'s time ``big`` took, and its text. ``paired`` (samples timed in
    the same rounds, ``timing.interleaved``): the median of the round-by-round ratios, which a
    drift of the machine's speed over the run leaves alone, with the ratio of the medians
    beside it; else the ratio of the medians."""
    of_medians = big.median / small.median
    if not paired or big.n != small.n:
        return of_medians, f"{of_medians:.2f}x"
    by_round = statistics.median(b / s for b, s in zip(big.samples, small.samples))
    return by_round, f"{by_round:.2f}x (round by round; medians {of_medians:.2f}x)"


def scaling_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "training subset",
        "structures",
        "atoms (total)",
        "atoms (largest)",
        "active parameters",
        "JaxLoss compile",
        "first call (minima from QM)",
        "value+grad median",
        "min",
        "max",
        "n",
        "Jacobian compile",
        "Jacobian median",
        "Jacobian / value+grad",
        "one fit",
    ]
    body = []
    for r in rows:
        jac = r.get("jacobian")
        fit = r.get("fit")
        body.append(
            [
                r["label"],
                str(r["n_structures"]),
                str(r["atoms_total"]),
                str(r["atoms_max"]),
                str(r["n_active"]),
                fmt_seconds(r["compile_s"]),
                fmt_seconds(r["first_call_s"]),
                *stats_row("", r["jaxloss_vg"])[1:],
                fmt_seconds(r.get("jacobian_compile_s")),
                fmt_seconds(jac.median if jac else None),
                f"{jac.median / r['jaxloss_vg'].median:.2f}x" if jac else "-",
                f"{fmt_seconds(fit['wall_time_s'])} ({fit['method']}, {fit['n_iterations']} it, "
                f"{fit['score_initial']:.4g} -> {fit['score_final']:.4g})"
                if fit
                else "-",
            ]
        )
    return markdown_table(header, body)


def machine_line(machine: dict[str, Any]) -> str:
    load = ", ".join(f"{v:.2f}" for v in machine["load_average"])
    return (
        f"{machine['cpus_usable']} of {machine['cpu_count']} CPUs usable ({machine['cpu_model']}), "
        f"load average {load} (1, 5, 15 min) at the start; Python {machine['python']}, "
        f"jax {machine['jax']} / jaxlib {machine['jaxlib']} on {machine['jax_device']}, "
        f"float64 {'on' if machine['float64'] else 'OFF'}"
    )


def header(results: dict[str, Any]) -> list[str]:
    """Title, command, machine and load lines of one run."""
    system = results["system"]
    end_load = ", ".join(f"{v:.2f}" for v in results["load_average_end"])
    return [
        f"### {system['name']}: {system['n_structures']} structures, {system['atoms_total']} atoms, "
        f"{system['n_active']} active parameters",
        "",
        f"`{results['command']}`",
        "",
        f"Machine: {machine_line(results['machine'])}.",
        f"Load average at the end: {end_load}.",
        "",
    ]


def render(results: dict[str, Any]) -> str:
    """Every table of one bench run as Markdown (sections that were not measured are left out)."""
    parts = header(results)
    timings = timing_rows(results)
    if timings:
        parts += [markdown_table(["measurement", "median", "min", "max", "n"], timings), ""]
    summary = summary_rows(results)
    if summary:
        parts += [markdown_table(["quantity", "value"], summary), ""]
    rows = [[t.name, t.limit, t.measured, {True: "met", False: "missed", None: "-"}[t.met]] for t in targets(results)]
    if rows:
        parts += [
            "Targets (stated for rh-enamide, 9 TS, OPT scope):",
            "",
            markdown_table(["target", "limit", "measured", "verdict"], rows),
            "",
        ]
    if results.get("scaling"):
        parts += [
            "JaxLoss value+grad and residual Jacobian scaling (every timed call minimizes from the QM "
            "geometries; compile in this process, from the persistent cache when it holds the shape):",
            "",
            scaling_table(results["scaling"]),
            "",
        ]
    return "\n".join(parts)


def jsonable(value: Any) -> Any:
    """Stats become dicts; everything else is left to json."""
    if isinstance(value, Stats):
        return value.as_dict()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """Inverse of :func:`jsonable`: dicts with exactly the Stats fields become Stats again."""
    if isinstance(value, dict):
        if set(value) == {"median", "min", "max", "n", "samples"}:
            return Stats.of(value["samples"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value
