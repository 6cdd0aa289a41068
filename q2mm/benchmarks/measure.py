"""The bench's measurements: compile (cold and warm cache), engine, objectives, FD gradient, fit, scaling.

Every steady-state number is ``Stats`` over ``repeats`` calls made after one untimed (or
separately reported) first call, so compilation never hides in a median.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.benchmarks.compile_probe import ENGINE_FUNCTIONS
from q2mm.benchmarks.timing import Stats, interleaved, repeat, time_once
from q2mm.errors import BenchError
from q2mm.paths import IN_CHECKOUT, PROJECT_ROOT

# ------------------------------------------------------------------ compile (fresh processes)


def probe_invocation(overrides: Sequence[str], cache_dir: Path) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of a compile probe. It runs in the caller's working directory, so
    relative overrides mean what they mean here; a checkout puts itself on PYTHONPATH (an
    installed package is found by the interpreter itself, from any directory)."""
    env = dict(os.environ, Q2MM_JAX_CACHE=str(cache_dir))
    if IN_CHECKOUT:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", "q2mm.benchmarks.compile_probe", *overrides], env


def run_compile_probe(overrides: Sequence[str], cache_dir: Path) -> dict[str, Any]:
    """One fresh process measuring compile times with ``cache_dir`` as the persistent cache."""
    argv, env = probe_invocation(overrides, cache_dir)
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BenchError(f"compile probe failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


def compile_times(overrides: Sequence[str], repeats: int) -> dict[str, Any]:
    """Engine and JaxLoss compile seconds, cold (empty cache) and warm (cache filled by a cold run).

    Each sample is a fresh process: ``repeats`` cold runs, each with its own empty cache
    directory, then ``repeats`` warm runs reusing the first cold run's cache.
    """
    with tempfile.TemporaryDirectory(prefix="q2mm-bench-cache-") as scratch:
        dirs = [Path(scratch) / f"cold{r}" for r in range(repeats)]
        cold = [run_compile_probe(overrides, d) for d in dirs]
        warm = [run_compile_probe(overrides, dirs[0]) for _ in range(repeats)]
    out: dict[str, Any] = {"setup": Stats.of([c["setup_s"] for c in cold + warm])}
    for phase, runs in (("cold", cold), ("warm", warm)):
        for name in ENGINE_FUNCTIONS:
            out[f"engine_{name}_{phase}"] = Stats.of([r["engine"][name] for r in runs])
        out[f"jaxloss_{phase}"] = Stats.of([r["jaxloss"] for r in runs])
    out["probe_peak_rss_mib"] = max(r["peak_rss_mib"] for r in cold + warm)
    return out


# ------------------------------------------------------------------ steady state (this process)


def engine_times(model: Any, k: int, repeats: int) -> dict[str, Any]:
    """Energy, gradient and Hessian of structure ``k``: first call and warm Stats."""
    import jax
    import jax.numpy as jnp

    x, p, topo = model.coords[k], jnp.asarray(model.p0), model.structure(k)
    out: dict[str, Any] = {}
    for name in ENGINE_FUNCTIONS:
        fn = model.compiled(name)
        call = lambda: jax.block_until_ready(fn(x, p, topo))  # noqa: E731
        out[f"{name}_first_s"] = time_once(call)[0]
        out[name] = repeat(call, repeats)
    return out


def objective_times(problem: Any, repeats: int) -> dict[str, Any]:
    """ObjectiveFunction and JaxLoss value_and_grad at the start values.

    ``jaxloss_vg`` restarts every inner minimization from the QM geometry (as the
    reference objective does); ``jaxloss_vg_warm`` repeats the point with the minima of
    the previous call as starts, the cheapest case a fit can meet.
    """
    p = problem.start_values
    out: dict[str, Any] = {}
    out["objective_first_s"], evaluation = time_once(lambda: problem.objective(p))
    out["objective"] = repeat(lambda: problem.objective(p), repeats)
    loss = problem.loss
    warm_start = loss.warm_start
    loss.warm_start = False  # every call starts from the QM geometry
    out["jaxloss_first_s"], (value, _) = time_once(lambda: loss.value_and_grad(p))
    out["jaxloss_vg"] = repeat(lambda: loss.value_and_grad(p), repeats)
    loss.warm_start = True
    loss.value_and_grad(p)
    out["jaxloss_vg_warm"] = repeat(lambda: loss.value_and_grad(p), repeats)
    loss.warm_start = warm_start
    out["score_objective"] = float(evaluation.score)
    out["score_jaxloss"] = float(value)
    out["jaxloss_compile_s"] = loss.compile_seconds
    if hasattr(loss, "residuals_and_jacobian"):
        out.update(jacobian_times(loss, p, repeats))
    return out


def jacobian_times(loss: Any, p: np.ndarray, repeats: int) -> dict[str, Any]:
    """The residual Jacobian from the QM geometries (its minimizations included, as value+grad
    has them): compile seconds of its stage, and Stats of the whole call."""
    out = jacobian_start(loss, p)
    out["jacobian"] = repeat(lambda: fresh_jacobian(loss, p), repeats)
    return out


def fresh_jacobian(loss: Any, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The residuals and Jacobian at ``p`` with every minimization done again (none reused)."""
    loss.forget()
    return loss.residuals_and_jacobian(p)


def jacobian_start(loss: Any, p: np.ndarray) -> dict[str, Any]:
    """The Jacobian stage compiled and called once: its compile and first-call seconds, shape
    and every stage's seconds."""
    compile_s = loss.compile_jacobian()
    first_s, (_, jac) = time_once(lambda: fresh_jacobian(loss, p))
    return {
        "jacobian_compile_s": compile_s,
        "jacobian_first_s": first_s,
        "jacobian_shape": list(jac.shape),
        "stage_seconds": dict(getattr(loss, "stage_seconds", {})),
    }


def sample_indices(n: int, k: int) -> np.ndarray:
    """``min(k, n)`` indices spread evenly over ``range(n)`` (first and last included)."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int))


def fd_gradient_times(problem: Any, options: Any, n_params: int, repeats: int) -> dict[str, Any]:
    """One central finite-difference gradient of the reference objective, serial.

    Central differences on ``n_params`` of the free parameters (step ``options.fd_step`` in
    unit-box coordinates, as the fit's FD path takes) are timed and scaled to the
    ``2 n_free + 1`` evaluations a whole gradient needs.
    """
    from q2mm.optimize.bounds import BoxScaling

    lower, upper = problem.bounds(options.bounds)
    scaling = BoxScaling.from_bounds(lower, upper, problem.start_values)
    z0 = scaling.to_unit(problem.start_values)
    picked = sample_indices(z0.size, n_params)
    points = []
    for i in picked:
        for sign in (1.0, -1.0):
            z = z0.copy()
            z[i] = float(np.clip(z[i] + sign * options.fd_step, 0.0, 1.0))
            points.append(scaling.to_params(z))
    measured = repeat(lambda: [problem.objective(q).score for q in points], repeats)
    evaluations = 2 * z0.size + 1
    return {
        "n_free": int(z0.size),
        "params_measured": [int(i) for i in picked],
        "evaluations": evaluations,
        "measured": measured,
        "per_evaluation": measured.scaled(1.0 / len(points)),
        "gradient": measured.scaled(evaluations / len(points)),
    }


# ------------------------------------------------------------------ end to end


def fit_time(cfg: Any) -> dict[str, Any]:
    """Load, build and fit the configured system once, as the runner does (no MLflow, no files)."""
    from q2mm.benchmarks.setup import load_training_set
    from q2mm.compose import problem_from_config
    from q2mm.optimize import fit
    from q2mm.pipeline import optimizer_options

    def run():
        problem = problem_from_config(load_training_set(cfg), cfg)
        return fit(problem, optimizer_options(cfg))

    total_s, result = time_once(run)
    s = result.summary()
    keys = (
        "status",
        "method",
        "jac_resolved",
        "score_initial",
        "score_final",
        "score_delta_pct",
        "ratio_initial",
        "n_active",
        "n_iterations",
        "n_objective_evals",
        "n_loss_evals",
        "wall_time_s",
        "compile_time_s",
    )
    return {"total_s": total_s, **{key: s[key] for key in keys}}


def scaling_times(
    cfg: Any, subsets: Sequence[tuple[str, Any, Any]], repeats: int, with_fit: bool = False
) -> list[dict]:
    """JaxLoss value_and_grad and the residual Jacobian at the start values for each (label,
    training subset, explicit scope or None for the configured one); with ``with_fit`` one fit.

    Every timed call starts each minimization from the QM geometry, as a fit's calls do, so
    rows of different sizes compare like for like. The rows are timed in turn, one call of
    each per round (``interleaved``), so a slow stretch of a shared machine falls on every row
    alike and their ratios (the linear-scaling target) compare like for like: timed one row
    after the other, the 27/9 structure ratio of the same code ranged 2.9-3.5x between runs.
    """
    from q2mm.optimize import fit
    from q2mm.pipeline import optimizer_options

    rows, problems = [], []
    for label, subset, scope in subsets:
        row, problem = scaling_row(cfg, label, subset, scope)
        rows.append(row)
        problems.append(problem)
    timed = [lambda problem=problem: problem.loss.value_and_grad(problem.start_values) for problem in problems]
    for row, stats in zip(rows, interleaved(timed, repeats)):
        row["jaxloss_vg"] = stats
        row["interleaved"] = True  # its samples timed in the same rounds as every other row's
    with_jacobian = [(row, problem) for row, problem in zip(rows, problems) if "jacobian_shape" in row]
    timed = [lambda problem=problem: fresh_jacobian(problem.loss, problem.start_values) for _, problem in with_jacobian]
    for (row, _), stats in zip(with_jacobian, interleaved(timed, repeats)):
        row["jacobian"] = stats
    for row, problem in zip(rows, problems) if with_fit else ():
        result = fit(problem, optimizer_options(cfg))
        row["fit"] = {
            "wall_time_s": result.wall_time_s,
            "status": result.status,
            "method": result.method,
            "n_iterations": result.n_iterations,
            "score_initial": float(result.initial.score),
            "score_final": float(result.final.score),
        }
    return rows


def scaling_row(cfg: Any, label: str, subset: Any, scope: Any) -> tuple[dict[str, Any], Any]:
    """One scaling row's problem, compiled and called once (value+grad and, for least squares,
    the Jacobian), and the row's facts so far."""
    from q2mm.compose import fit_problem, problem_from_config
    from q2mm.objective.jaxloss import JaxLoss

    problem = (
        problem_from_config(subset, cfg) if scope is None else fit_problem(subset, scope=scope, start=dict(cfg.start))
    )
    loss = problem.loss
    if not isinstance(loss, JaxLoss):
        raise BenchError(f"scaling row {label!r}: the problem has no JaxLoss to time")
    compile_s = loss.compile()
    first_s = time_once(lambda: loss.value_and_grad(problem.start_values))[0]
    atoms = [m.n_atoms for m in subset.molecules]
    row = {
        "label": label,
        "n_structures": len(atoms),
        "atoms_total": sum(atoms),
        "atoms_max": max(atoms),
        "n_active": len(problem.refs),
        "compile_s": compile_s,
        "first_call_s": first_s,
    }
    if hasattr(loss, "residuals_and_jacobian"):
        row.update(jacobian_start(loss, problem.start_values))
    return row, problem
