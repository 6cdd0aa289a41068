"""``python -m q2mm.compare [--experiment NAME] [--sweep RUN_ID|latest] [--tracking-uri URI]``:
a terminal table of runs that shows what differs between them.

One row per job run (sweep parents left out), newest first, or the children of one sweep
(``--sweep``: its parent's run id, a prefix of it, or ``latest``). Columns: run name and the
first 8 characters of its id, the config values that differ between the shown runs (a
sweep's swept values), status, final score and its change, R2 per observation kind (final),
parameters at a bound, wall time, gradient path, initial score, ratio. Columns that are the
same for every shown run are left out and named under the table; columns are left out from
the end until the table fits ``--width`` (100) characters.
Reading a store that does not exist is an error, never a new empty store.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from q2mm.errors import Q2MMError
from q2mm.tracking.callback import JOB_TAG
from q2mm.tracking.naming import short_keys
from q2mm.tracking.store import existing_store
from q2mm.tracking.table import format_table, table_width

KIND_COLUMNS = {"eig_diag": "R2 eig", "bond_length": "R2 bond", "bond_angle": "R2 angle", "torsion": "R2 tors"}
MAIN_PARAMS = ("system.name", "scope.name", "start.name", "optimizer.method")  # a column, or named as constant
WIDTH = 100
NAME_CHARS = 30
ID_CHARS = 8
# config params never shown as columns (where the run was logged, how it printed)
# and what the fit logs as params about itself (the gradient path has its own column)
HIDDEN_PARAMS = (
    "tracking.",
    "data_root",
    "progress",
    "jac_",
    "fit_status",
    "overrides",
    "n_molecules",
    "n_active_params",
)
GROUPS_BY_NAME = ("system.", "scope.", "start.")  # of these groups only ``.name`` is shown


class CompareError(Q2MMError):
    """What to compare cannot be found (no store, experiment or sweep of that name)."""


@dataclass(frozen=True)
class Column:
    """A table column: header, cell of a run, and whether it may be left out (to fit, or when constant)."""

    title: str
    cell: Callable[[Run], str]
    optional: bool = True


def _metric(key: str, fmt: str) -> Callable[[Run], str]:
    def cell(run: Run) -> str:
        value = run.data.metrics.get(key)
        return "-" if value is None else format(value, fmt)

    return cell


def _param(key: str) -> Callable[[Run], str]:
    return lambda run: run.data.params.get(key, "-")


def _name(run: Run) -> str:
    name = run.info.run_name or ""
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 3] + "..."


def varying_params(runs: Sequence[Run]) -> list[str]:
    """Config keys whose values differ between ``runs`` (a sweep's swept keys among them)."""
    keys = sorted({key for run in runs for key in run.data.params})
    shown = [
        k for k in keys if not k.startswith(HIDDEN_PARAMS) and (not k.startswith(GROUPS_BY_NAME) or k.endswith(".name"))
    ]
    return [k for k in shown if len({run.data.params.get(k) for run in runs}) > 1]


def columns(runs: Sequence[Run]) -> list[Column]:
    """Every candidate column, most important first."""
    params = [*MAIN_PARAMS, *(key for key in varying_params(runs) if key not in MAIN_PARAMS)]
    shorts = short_keys(params)
    return [
        Column("run", _name, optional=False),
        Column("id", lambda run: run.info.run_id[:ID_CHARS], optional=False),
        *[Column(shorts[key], _param(key)) for key in params],
        Column("status", lambda run: run.info.status),
        Column("score", _metric("score_final", ".4e")),
        Column("delta%", _metric("score_delta_pct", "+.1f")),
        *[Column(title, _metric(f"r2_{kind}_final", ".4f")) for kind, title in KIND_COLUMNS.items()],
        Column("at_bound", _metric("n_at_bound", ".0f")),
        Column("wall_s", _metric("wall_time_s", ".1f")),
        Column("jac", _param("jac_resolved")),
        Column("score0", _metric("score_initial", ".4e")),
        Column("ratio", _metric("ratio_initial", ".4f")),
    ]


def build_table(runs: Sequence[Run], width: int = WIDTH) -> str:
    """The table of ``runs``: constant columns named below it, then columns dropped from the
    end of the priority list until it fits ``width``."""
    cols = columns(runs)
    cells = {c.title: [c.cell(run) for run in runs] for c in cols}
    empty = [c for c in cols if c.optional and set(cells[c.title]) == {"-"}]
    constant = [c for c in cols if c.optional and c not in empty and len(runs) > 1 and len(set(cells[c.title])) == 1]
    cols = [c for c in cols if c not in constant and c not in empty]
    left_out: list[str] = []
    while True:
        rows = [[cells[c.title][i] for c in cols] for i in range(len(runs))]
        header = [c.title for c in cols]
        droppable = [c for c in cols if c.optional]
        if table_width(rows, header) <= width or not droppable:
            break
        left_out.insert(0, droppable[-1].title)
        cols.remove(droppable[-1])
    notes = []
    if constant:
        notes.append("same in every run: " + ", ".join(f"{c.title} {cells[c.title][0]}" for c in constant))
    if left_out:
        notes.append(f"left out to fit {width} columns: " + ", ".join(left_out))
    wrapped = [textwrap.fill(note, width, subsequent_indent="  ") for note in notes]
    return "\n".join([format_table(rows, header), *wrapped])


def _experiments(client: MlflowClient, names: Sequence[str] | None) -> list[str]:
    if not names:
        return [e.experiment_id for e in client.search_experiments()]
    found = [client.get_experiment_by_name(name) for name in names]
    missing = [n for n, e in zip(names, found) if e is None]
    if missing:
        raise CompareError(f"no MLflow experiment named {', '.join(missing)} in {client.tracking_uri}")
    return [e.experiment_id for e in found if e is not None]


def job_runs(client: MlflowClient, experiment_names: Sequence[str] | None) -> list[Run]:
    """Job runs (not sweep parents) of the named experiments (all when None), newest first."""
    ids = _experiments(client, experiment_names)
    runs = client.search_runs(ids, max_results=50000, order_by=["attributes.start_time DESC"]) if ids else []
    return [run for run in runs if run.data.tags.get("sweep") != "true"]


def sweep_runs(client: MlflowClient, experiment_names: Sequence[str] | None, which: str) -> tuple[Run, list[Run]]:
    """The sweep parent named by ``which`` (a run id, its prefix, or 'latest') and its children by job."""
    ids = _experiments(client, experiment_names)
    parents = (
        client.search_runs(
            ids, filter_string="tags.sweep = 'true'", max_results=50000, order_by=["attributes.start_time DESC"]
        )
        if ids
        else []
    )
    chosen = parents[:1] if which == "latest" else [p for p in parents if p.info.run_id.startswith(which)]
    if len(chosen) != 1:
        what = "no sweep" if not chosen else f"{len(chosen)} sweeps"
        raise CompareError(f"{what} matching --sweep {which} in {client.tracking_uri}")
    parent = chosen[0]
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        max_results=50000,
    )
    children.sort(key=lambda r: int(r.data.tags.get(JOB_TAG, 10**9)))
    return parent, children


def comparison_table(
    tracking_uri: str | None,
    experiment_names: Sequence[str] | None = None,
    sweep: str | None = None,
    width: int = WIDTH,
) -> str:
    """The table for the runs in an existing store (the project's default store when the URI is None)."""
    client = MlflowClient(existing_store(tracking_uri))
    if sweep:
        parent, runs = sweep_runs(client, experiment_names, sweep)
        head = f"sweep {parent.info.run_name} ({parent.info.run_id}, {parent.info.status}), {len(runs)} jobs\n"
    else:
        runs, head = job_runs(client, experiment_names), ""
    if not runs:
        where = f"experiment {', '.join(experiment_names)} of " if experiment_names else ""
        return head + f"no runs in {where}{client.tracking_uri}"
    return head + build_table(runs, width)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m q2mm.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", action="append", help="MLflow experiment name (repeatable; default all)")
    parser.add_argument("--sweep", help="one sweep: its parent run id (or a prefix), or 'latest'")
    parser.add_argument(
        "--tracking-uri", default=None, help="sqlite:///PATH or http://HOST:PORT (default: project mlruns/)"
    )
    parser.add_argument("--width", type=int, default=WIDTH, help=f"widest line in characters (default {WIDTH})")
    args = parser.parse_args(argv)
    try:
        print(comparison_table(args.tracking_uri, args.experiment, args.sweep, args.width))
    except Q2MMError as error:
        print(f"q2mm.compare: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
