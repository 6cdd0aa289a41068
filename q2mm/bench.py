"""``python -m q2mm.bench system=NAME [runner overrides] [--json FILE] [options]``: performance numbers.

For the configured training set (the same Hydra overrides as ``python -m q2mm.run``) it
measures, as median/min/max of repeated calls: compile time of the engine and of JaxLoss
with a cold and a warm persistent cache (fresh processes); energy, gradient and Hessian of
the largest structure; ObjectiveFunction; JaxLoss value+grad; one central finite-difference
gradient (a few parameters timed, scaled to all) and its ratio to JaxLoss; peak memory; the
default fit end to end with its score drop; and the machine. ``--scaling`` adds JaxLoss
value+grad and the residual Jacobian against the number of structures (``--structures 1,3,9,27``:
counts above the set's own repeat its structures) and of atoms, ``--all-params`` a row with every
parameter the structures use active, ``--scaling-fit`` one fit per row.
It prints Markdown tables (the source of docs/performance.md) and writes the same numbers
as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from q2mm.benchmarks import measure, report, setup
from q2mm.benchmarks.timing import machine_facts, peak_rss_mib, time_once
from q2mm.errors import Q2MMError


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m q2mm.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for python -m q2mm.run (system=sn2 ...)")
    parser.add_argument(
        "--config-dir", type=Path, help="your own conf/ (DIR/system/NAME.yaml), as for python -m q2mm.run"
    )
    parser.add_argument("--json", type=Path, help="write every number as JSON to this file")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="measure nothing: print the tables of an earlier run's --json file"
    )
    parser.add_argument("--markdown", type=Path, help="also write the printed Markdown tables to this file")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per steady-state number (default 5)")
    parser.add_argument(
        "--compile-repeats",
        type=int,
        default=3,
        help="fresh processes per cold and per warm compile number (default 3; 0 skips)",
    )
    parser.add_argument(
        "--fd-params",
        type=int,
        default=4,
        help="parameters whose central differences are timed (default 4; 0 skips the FD gradient)",
    )
    parser.add_argument("--no-fit", action="store_true", help="skip the end-to-end fit")
    parser.add_argument(
        "--scaling-only",
        action="store_true",
        help="measure only the scaling table (implies --scaling, skips every other section)",
    )
    parser.add_argument(
        "--scaling", action="store_true", help="add JaxLoss value+grad scaling with structures and atoms"
    )
    parser.add_argument(
        "--structures",
        type=_counts,
        help="structure counts for the scaling (e.g. 1,3,9; default 1, 3, all); implies --scaling",
    )
    parser.add_argument(
        "--atoms",
        action="store_true",
        help="add scaling rows of single structures, one per distinct atom count; implies --scaling",
    )
    parser.add_argument(
        "--all-params",
        action="store_true",
        help="add a scaling row with every parameter the structures use active (explicit scope); implies --scaling",
    )
    parser.add_argument(
        "--scaling-fit",
        action="store_true",
        help="time one fit (the configured optimizer) per scaling row; implies --scaling",
    )
    args = parser.parse_intermixed_args(list(argv))
    if args.repeats < 1 or args.compile_repeats < 0 or args.fd_params < 0:
        parser.error("--repeats must be >= 1, --compile-repeats and --fd-params >= 0")
    args.scaling = (
        args.scaling
        or args.atoms
        or args.structures is not None
        or args.scaling_only
        or args.all_params
        or args.scaling_fit
    )
    if args.scaling_only:
        args.no_fit, args.fd_params, args.compile_repeats = True, 0, 0
    return args


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated structure counts such as 1,3,9, got {text!r}"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"structure counts must be >= 1, got {text!r}")
    return counts


def scaling_subsets(training_set: Any, counts: list[int] | None, per_size: bool) -> list[tuple[str, Any]]:
    """Training subsets for the scaling rows: the first n structures; with ``per_size`` also one
    structure alone per distinct atom count (each subset shape is one more JaxLoss compile)."""
    total = len(training_set.molecules)
    counts = counts or sorted({1, min(3, total), total})
    subsets = [
        (f"first {c}", setup.first_structures(training_set, c))
        if c <= total
        else (f"{total} repeated to {c}", setup.repeated_structures(training_set, c))
        for c in counts
    ]
    sizes: dict[int, int] = {}
    for index, molecule in enumerate(training_set.molecules):
        sizes.setdefault(molecule.n_atoms, index)
    if per_size:
        subsets += [
            (f"structure {index + 1} alone", setup.one_structure(training_set, index))
            for _, index in sorted(sizes.items())
        ]
    return subsets


def system_facts(training_set: Any, problem: Any, setup_s: float) -> dict[str, Any]:
    atoms = [m.n_atoms for m in training_set.molecules]
    k = setup.largest_structure(training_set)
    return {
        "name": training_set.name,
        "n_structures": len(atoms),
        "atoms": atoms,
        "atoms_total": sum(atoms),
        "largest_index": k,
        "largest_atoms": atoms[k],
        "n_active": len(problem.refs),
        "n_parameters": int(len(problem.loss.model.p0)),
        "scope": problem.scope,
        "start": problem.start,
        "setup_s": setup_s,
    }


def _progress(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


Checkpoint = Callable[[dict[str, Any]], object]  # its return value is ignored


def run_bench(args: argparse.Namespace, command: str, checkpoint: Checkpoint | None = None) -> dict[str, Any]:
    """Every measurement the arguments ask for, as one results dict (Stats inside).

    ``checkpoint(results)`` runs after each section, so an interrupted bench keeps what it
    measured. The fresh-process compile probes come last: with a cold cache they are the
    slowest part.
    """
    save = checkpoint or (lambda results: None)
    if args.config_dir is not None:  # every composition below (the probes' too) searches it first
        args.overrides = [setup.searchpath_override(args.config_dir), *args.overrides]
    cfg = setup.compose_config(args.overrides)
    import q2mm.jaxconfig  # noqa: F401  (float64 and the persistent cache before any JAX work)
    from q2mm.pipeline import optimizer_options

    options = optimizer_options(cfg)  # a bad optimizer option ends the bench before it measures
    results: dict[str, Any] = {"command": command, "overrides": list(args.overrides), "machine": machine_facts()}
    _progress(f"loading {cfg.system.name}")
    setup_s, (training_set, problem) = time_once(lambda: _load(cfg))
    results["system"] = system_facts(training_set, problem, setup_s)
    if not args.scaling_only:
        _progress("engine, ObjectiveFunction and JaxLoss timings")
        results["engine"] = measure.engine_times(problem.loss.model, results["system"]["largest_index"], args.repeats)
        results["objectives"] = measure.objective_times(problem, args.repeats)
        _finish_section(results, save)
    if args.fd_params:
        _progress("finite-difference gradient")
        results["fd"] = measure.fd_gradient_times(problem, options, args.fd_params, args.repeats)
        results["fd_ratio"] = results["fd"]["gradient"].median / results["objectives"]["jaxloss_vg"].median
        _finish_section(results, save)
    if not args.no_fit:
        _progress("end-to-end fit")
        results["fit"] = measure.fit_time(cfg)
        _finish_section(results, save)
    if args.scaling:
        _progress("scaling")
        subsets: list[tuple[str, Any, list[tuple[int, int]] | None]] = [
            (label, subset, None) for label, subset in scaling_subsets(training_set, args.structures, args.atoms)
        ]
        if args.all_params:
            scope = setup.every_parameter_scope(training_set)
            subsets.append((f"all {len(scope)} parameters", training_set, scope))
        results["scaling"] = measure.scaling_times(cfg, subsets, args.repeats, args.scaling_fit)
        _finish_section(results, save)
    if args.compile_repeats:
        _progress(f"compile times: {2 * args.compile_repeats} fresh processes")
        results["compile"] = measure.compile_times(args.overrides, args.compile_repeats)
        _finish_section(results, save)
    return results


def _finish_section(results: dict[str, Any], save: Checkpoint) -> None:
    """Peak memory and load so far, then the checkpoint."""
    results["memory"] = {"peak_rss_mib": peak_rss_mib(), "children_peak_rss_mib": peak_rss_mib(children=True)}
    results["load_average_end"] = list(os.getloadavg())
    save(results)


def _load(cfg):
    from q2mm.compose import problem_from_config

    training_set = setup.load_training_set(cfg)
    return training_set, problem_from_config(training_set, cfg)


def write_outputs(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Render the tables; write the Markdown and JSON files the arguments name."""
    text = report.render(results)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(report.jsonable(results), indent=2) + "\n", encoding="utf-8")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = " ".join(["python -m q2mm.bench", *map(shlex.quote, argv)])
    if args.render:
        results = report.from_json(json.loads(args.render.read_text(encoding="utf-8")))
        sys.stdout.write(write_outputs(results, args) + "\n")
        return 0
    try:
        results = run_bench(args, command, checkpoint=lambda partial: write_outputs(partial, args))
    except (Q2MMError, HydraException, OmegaConfBaseException) as error:
        sys.stderr.write(f"q2mm.bench: {type(error).__name__}: {error}\n")
        return 1
    sys.stdout.write(write_outputs(results, args) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
