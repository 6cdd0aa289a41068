"""FitResult: every decision of one fit, its JSON summary, and the written force field."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.errors import OutputExistsError, Q2MMError
from q2mm.optimize.gate import score_ratio
from q2mm.optimize.protocols import EvaluationLike, KindResultLike, LossLike, ObjectiveLike

SUMMARY_VERSION = 1
# Other roundings of the fitted values scored when the written file scores worse than the
# optimizer's point by more than ROUNDING_TOLERANCE (relative; best_written).
ROUNDING_TRIES = 8
ROUNDING_TOLERANCE = 1e-6


@dataclass(frozen=True)
class IterationInfo:
    """What the callback sees once per optimizer iteration (iteration 0 = the start).

    ``score`` is the value the optimizer minimizes (JaxLoss when resolved to
    'jax', else the reference objective); ``grad_norm`` is the norm of the
    projected unit-box gradient (None for gradient-free methods).
    """

    iteration: int
    score: float
    grad_norm: float | None
    elapsed_s: float
    n_evaluations: int


@dataclass
class FitResult:
    """Outcome of :func:`q2mm.optimize.fit`.

    ``status`` is improved | no_progress | reverted | diverged | stopped. When
    the optimizer's point was not kept, ``rejected`` holds its reference score,
    ratio and parameters; ``divergence`` holds what went non-finite and where.
    After :meth:`as_written`, ``p_final``, ``final`` and ``ratio_final`` are those of the
    ``.fld`` as written and ``unrounded`` keeps the optimizer's point where it scores otherwise.
    """

    status: str
    message: str
    refs: tuple[Any, ...]
    kinds: tuple[str, ...]
    p_file: np.ndarray
    p_initial: np.ndarray
    p_final: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    initial: EvaluationLike
    final: EvaluationLike
    ratio_initial: float | None
    ratio_final: float | None
    jac_requested: str
    jac_resolved: str
    jac_reason: str
    method: str
    options: dict[str, Any]
    scope: str
    start: str
    start_record: list[dict[str, Any]]
    n_iterations: int
    n_objective_evals: int
    n_loss_evals: int
    wall_time_s: float
    compile_time_s: float | None
    compile_time_source: str
    optimizer_message: str
    fd_parallel: str | None
    unused_refs: tuple[Any, ...] = ()
    history: list[IterationInfo] = field(default_factory=list)
    divergence: dict[str, Any] | None = None
    rejected: dict[str, Any] | None = None
    forcefield: Any = None
    identifiability: Any = None  # Identifiability at the result, or a string saying why there is none
    unrounded: dict[str, Any] | None = None

    @property
    def kept_start(self) -> bool:
        """True when the final parameters are the starting ones (reverted, stopped, diverged at the start)."""
        return bool(np.array_equal(self.p_final, self.p_initial))

    def final_values(self) -> dict[Any, float]:
        """{ParamRef: final value} of the active parameters."""
        return {ref: float(v) for ref, v in zip(self.refs, self.p_final, strict=True)}

    def as_written(self, written: Any, objective: ObjectiveLike, loss: LossLike | None) -> FitResult:
        """This result scored at the values of ``written``, the ``.fld`` as written and read back.

        A ``.fld`` field holds a value to 4-7 decimals, so the file a chemist loads is not the
        optimizer's point: its score, R2 and ratio are measured again here (reference
        objective, JaxLoss) and become ``final``; ``unrounded`` keeps the optimizer's score,
        ratio, R2 and values when the file scores differently. Unchanged when nothing rounded.
        """
        p = np.array([written.value(ref) for ref in self.refs], dtype=np.float64)
        if np.array_equal(p, self.p_final):
            return self
        final = objective(p)
        ratio = None if loss is None else score_ratio(float(loss.value(p)), float(final.score))
        if float(final.score) == float(self.final.score):
            return dataclasses.replace(self, p_final=p, final=final, ratio_final=ratio)
        unrounded = {
            "score_final": float(self.final.score),
            "ratio_final": self.ratio_final,
            "r2_final": {kind: float(res.r2) for kind, res in sorted(self.final.by_kind.items())},
            "max_abs_rounding": float(np.max(np.abs(p - self.p_final))),
            "values": [float(v) for v in self.p_final],
        }
        return dataclasses.replace(self, p_final=p, final=final, ratio_final=ratio, unrounded=unrounded)

    def best_written(
        self, fld_path: Path, objective: ObjectiveLike, loss: LossLike | None, tries: int = ROUNDING_TRIES
    ) -> FitResult:
        """:meth:`as_written` for ``fld_path`` (written by :meth:`write_fld`), rewritten with a
        better rounding where the nearest one scores worse than the optimizer's point (by more
        than ``ROUNDING_TOLERANCE``, relative: a smooth score moves far less at 4-7 decimals).

        A structure whose minimization from the QM geometry switches minimum under a 5e-6
        change of the parameters makes the nearest rounding a coin flip (issue 17: rh-enamide
        fold 3, 204478 unrounded, 211576 rounded). Up to ``tries`` other roundings of the same
        values, each rounded down or up at its written decimals (seeded, reproducible), are
        scored; the best is written if it beats the nearest. ``unrounded`` then also records
        the nearest rounding's score and how many were tried.
        """
        from q2mm.io.fld import read_fld, write_fld

        logged = self.as_written(read_fld(fld_path), objective, loss)
        target = float(self.final.score) * (1.0 + ROUNDING_TOLERANCE)
        if logged.unrounded is None or not float(logged.final.score) > target or tries <= 0:
            return logged
        lower, upper = _lattice_neighbours(self.p_final)
        rng = np.random.default_rng(0)
        best_p, best_score, tried = logged.p_final, float(logged.final.score), 0
        while tried < tries and best_score > target:
            candidate = np.where(rng.random(lower.size) < 0.5, lower, upper)
            tried += 1
            score = float(objective(candidate).score)
            if score < best_score:
                best_p, best_score = candidate, score
        record = {"nearest_rounding_score": float(logged.final.score), "roundings_tried": tried}
        if best_p is not logged.p_final:
            write_fld(self.forcefield.with_values(dict(zip(self.refs, best_p, strict=True))), fld_path)
            logged = self.as_written(read_fld(fld_path), objective, loss)
        if logged.unrounded is None:
            return logged
        return dataclasses.replace(logged, unrounded=logged.unrounded | record)

    def summary(self) -> dict[str, Any]:
        """JSON-able record of the fit (non-finite floats as the strings 'nan', 'inf', '-inf')."""
        score0, score1 = float(self.initial.score), float(self.final.score)
        delta = 100.0 * (score1 - score0) / score0 if score0 else 0.0
        data = {
            "summary_version": SUMMARY_VERSION,
            "status": self.status,
            "message": self.message,
            "score_initial": score0,
            "score_final": score1,
            "score_delta_pct": delta,
            "r2": _r2_table(self.initial.by_kind, self.final.by_kind),
            "ratio_initial": self.ratio_initial,
            "ratio_final": self.ratio_final,
            "jac_requested": self.jac_requested,
            "jac_resolved": self.jac_resolved,
            "jac_reason": self.jac_reason,
            "method": self.method,
            "options": self.options,
            "scope": self.scope,
            "start": self.start,
            "start_record": self.start_record,
            "n_active": len(self.refs),
            "n_at_bound": int(np.sum(at_bound(self.p_final, self.lower, self.upper) != "")),
            "unused_active": [[int(r.line), int(r.field)] for r in self.unused_refs],
            "n_iterations": self.n_iterations,
            "n_objective_evals": self.n_objective_evals,
            "n_loss_evals": self.n_loss_evals,
            "wall_time_s": self.wall_time_s,
            "compile_time_s": self.compile_time_s,
            "compile_time_source": self.compile_time_source,
            "optimizer_message": self.optimizer_message,
            "fd_parallel": self.fd_parallel,
            "evaluation_messages": {"initial": _strings(self.initial.messages), "final": _strings(self.final.messages)},
            "evaluation_notes": {"initial": _strings(self.initial.notes), "final": _strings(self.final.notes)},
            "divergence": self.divergence,
            "rejected": self.rejected,
            "unrounded": self.unrounded,
            "parameters": self._parameter_rows(),
            "identifiability": self._identifiability(),
            "history": [vars(h) for h in self.history],
        }
        return _jsonable(data)

    def _identifiability(self) -> dict[str, Any] | None:
        ident = self.identifiability
        if ident is None or isinstance(ident, str):
            return None if ident is None else {"unavailable": ident}
        return ident.as_dict()

    def _parameter_rows(self) -> list[dict[str, Any]]:
        rows = []
        side = at_bound(self.p_final, self.lower, self.upper)
        for i, ref in enumerate(self.refs):
            rows.append(
                {
                    "line": int(ref.line),
                    "field": int(ref.field),
                    "kind": self.kinds[i],
                    "file": float(self.p_file[i]),
                    "initial": float(self.p_initial[i]),
                    "final": float(self.p_final[i]),
                    "lower": float(self.lower[i]),
                    "upper": float(self.upper[i]),
                    "at_bound": side[i] or None,
                }
            )
        return rows

    def write(
        self, outdir: str | Path, stem: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> tuple[Path, Path]:
        """Write the optimized ``.fld`` (a spliced copy of the input) and the JSON summary
        (with ``extra``'s keys added, e.g. held-out scores).

        Refuses to overwrite any existing file. Returns (fld path, json path).
        """
        fld_path = self.write_fld(outdir, stem)
        return fld_path, self.write_summary(fld_path, extra)

    def write_fld(self, outdir: str | Path, stem: str | None = None) -> Path:
        """``<stem>-optimized.fld`` in ``outdir``: the input with the final values spliced in.

        Refuses when it or the summary ``<stem>-fit.json`` exists already.
        """
        if self.forcefield is None:
            raise Q2MMError("this FitResult has no force field to write (FitProblem.forcefield was None)")
        from q2mm.io.fld import write_fld  # the io layer is only needed for writing

        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        stem = stem or _input_stem(self.forcefield)
        fld_path = outdir / f"{stem}{FLD_SUFFIX}"
        for path in (fld_path, _summary_path(fld_path)):
            if path.exists():
                raise OutputExistsError(f"{path} exists: a fit never writes over an earlier output")
        write_fld(self.forcefield.with_values(self.final_values()), fld_path)
        return fld_path

    def write_summary(self, fld_path: Path, extra: Mapping[str, Any] | None = None) -> Path:
        """``<stem>-fit.json`` beside the written ``fld_path`` (never over an existing file)."""
        json_path = _summary_path(fld_path)
        summary = (
            self.summary()
            | _jsonable(dict(extra or {}))
            | {"input_fld": _input_path(self.forcefield), "output_fld": str(fld_path)}
        )
        with open(json_path, "x", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)
            handle.write("\n")
        return json_path


FLD_SUFFIX = "-optimized.fld"
SUMMARY_SUFFIX = "-fit.json"
EVALUATION_SUFFIX = "-evaluation.json"  # q2mm.evaluate's summary


def _summary_path(fld_path: Path) -> Path:
    return fld_path.with_name(fld_path.name.removesuffix(FLD_SUFFIX) + SUMMARY_SUFFIX)


# of the bound interval: L-BFGS-B converges onto an active bound only to within a few 1e-6 of
# its unit box (sn2 at fc_fraction 0.1: 4e-6 and 7e-6 of the interval; free parameters >= 0.04)
AT_BOUND_RTOL = 1e-4


def at_bound(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Per parameter "lower", "upper" or "" (inside): where a fit left it against its bounds."""
    values, lower, upper = (np.asarray(a, float) for a in (values, lower, upper))
    tol = AT_BOUND_RTOL * np.where(np.isfinite(upper - lower), upper - lower, 0.0)
    side = np.full(values.shape, "", dtype=object)
    side[values <= lower + tol] = "lower"
    side[values >= upper - tol] = "upper"
    return side


def _r2_table(
    before: Mapping[str, KindResultLike], after: Mapping[str, KindResultLike]
) -> dict[str, dict[str, float | None]]:
    table = {}
    for kind in sorted(set(before) | set(after)):
        start, end = before.get(kind), after.get(kind)
        table[kind] = {
            "initial": None if start is None else float(start.r2),
            "final": None if end is None else float(end.r2),
            "rmsd_initial": None if start is None else float(start.rmsd),
            "rmsd_final": None if end is None else float(end.rmsd),
        }
    return table


def _strings(reported: Sequence[Any]) -> list[str]:
    """What the reference evaluation reported (``messages``: problems, e.g. unconverged
    minimizations; ``notes``: e.g. minima pinned on a kink), as JSON strings."""
    return [str(m) for m in reported]


def _input_path(ff: Any) -> str | None:
    """The force field's file (``ForceField.path``), None for one built in memory."""
    return None if ff.path is None else str(ff.path)


def _input_stem(ff: Any) -> str:
    path = _input_path(ff)
    return Path(path).stem if path else "forcefield"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    return value


def _lattice_neighbours(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value rounded down and up at the decimals its ``.fld`` field holds (``format_value``)."""
    from q2mm.model.forcefield import format_value

    lower, upper = [], []
    for v in (float(x) for x in values):
        decimals = len(format_value(v).split(".")[1])
        scale = 10.0**decimals
        lower.append(float(f"{min(v, math.floor(v * scale) / scale):.{decimals}f}"))
        upper.append(float(f"{max(v, math.ceil(v * scale) / scale):.{decimals}f}"))
    return np.array(lower), np.array(upper)
