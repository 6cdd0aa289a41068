"""``python -m q2mm.compare [--experiment NAME] [--tracking-uri URI]``: a terminal table of runs.

One row per job run (sweep parents left out), newest first: system, scope, optimizer,
ratio_tol, resolved gradient path, scores and their change, R2 per observation kind
(final), wall time and status.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from q2mm.tracking.store import resolve_uri

KIND_COLUMNS = ("eig_diag", "bond_length", "bond_angle", "torsion")


@dataclass(frozen=True)
class Column:
    title: str
    width: int


def _metric(run: Run, key: str, fmt: str) -> str:
    value = run.data.metrics.get(key)
    return "-" if value is None else format(value, fmt)


def run_row(run: Run) -> list[str]:
    """The table cells of one run."""
    params = run.data.params
    return [
        params.get("system.name", "?"),
        params.get("scope.name", "?"),
        params.get("start.name", "?"),
        params.get("optimizer.method", "?"),
        params.get("ratio_tol", "?"),
        params.get("jac_resolved", "-"),
        _metric(run, "ratio_initial", ".4f"),
        _metric(run, "score_initial", ".4e"),
        _metric(run, "score_final", ".4e"),
        _metric(run, "score_delta_pct", "+.2f"),
        *[_metric(run, f"r2_{kind}_final", ".4f") for kind in KIND_COLUMNS],
        _metric(run, "wall_time_s", ".1f"),
        run.info.status,
    ]


HEADER = [
    "system", "scope", "start", "optimizer", "ratio_tol", "jac", "ratio",
    "score0", "score", "delta%", *[f"R2 {kind}" for kind in KIND_COLUMNS], "wall_s", "status",
]


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    """Left-aligned fixed-width columns separated by two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def job_runs(client: MlflowClient, experiment_names: Sequence[str] | None) -> list[Run]:
    """Job runs (not sweep parents) of the named experiments (all when None), newest first."""
    if experiment_names:
        experiments = [client.get_experiment_by_name(name) for name in experiment_names]
        missing = [n for n, e in zip(experiment_names, experiments) if e is None]
        if missing:
            raise SystemExit(f"no MLflow experiment named {', '.join(missing)} in {client.tracking_uri}")
    else:
        experiments = client.search_experiments()
    ids = [e.experiment_id for e in experiments]
    runs = client.search_runs(ids, max_results=50000, order_by=["attributes.start_time DESC"]) if ids else []
    return [run for run in runs if run.data.tags.get("sweep") != "true"]


def comparison_table(tracking_uri: str | None, experiment_names: Sequence[str] | None = None) -> str:
    """The table for the runs in a store (the project's default store when the URI is None)."""
    client = MlflowClient(resolve_uri(tracking_uri))
    runs = job_runs(client, experiment_names)
    if not runs:
        where = f"experiment {', '.join(experiment_names)} of " if experiment_names else ""
        return f"no runs in {where}{client.tracking_uri}"
    return format_table([run_row(run) for run in runs])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m q2mm.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", action="append", help="MLflow experiment name (repeatable; default all)")
    parser.add_argument("--tracking-uri", default=None, help="sqlite:///PATH or http://HOST:PORT (default: project mlruns/)")
    args = parser.parse_args(argv)
    print(comparison_table(args.tracking_uri, args.experiment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
