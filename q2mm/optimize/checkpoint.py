"""Fit checkpoints: a fit killed part way (time limit, preemption, SIGTERM) continues exactly.

The checkpoint is ``<run dir>/checkpoint.npz``, rewritten atomically at every optimizer
iteration through the driver's iteration callback. It holds the fit's identity (active
parameters, start values, options), the iteration history and counters, the current and
best points, and the journal of every objective evaluation in order (parameters, score,
unit-box gradient, whether the inner minimizations converged, evaluations it cost).

Resuming replays the journal: the optimizer starts again from the same start and every
point it asks for is answered from the journal until the journal is used up. The
optimizers are deterministic, so they retrace their path and rebuild their own memory
(L-BFGS-B correction pairs, Adam moments, Powell directions, the Nelder-Mead simplex) for
the cost of their own arithmetic, then go on evaluating as the uninterrupted fit would: the
resumed fit ends at the same point. A point the journal does not hold is simply evaluated.
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from q2mm.errors import CheckpointError
from q2mm.optimize.result import IterationInfo

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class JournalEntry:
    """One objective evaluation as the optimizer saw it."""

    params: np.ndarray  # active parameters, force-field units
    value: float
    grad: np.ndarray | None  # gradient in unit-box coordinates, None for a value alone
    converged: bool
    cost: int  # objective/loss evaluations it took (a finite-difference gradient costs 2n+1)


class FitJournal:
    """The evaluations of a fit in order; answers repeated requests from a loaded journal first."""

    def __init__(self, replay: list[JournalEntry] | None = None):
        self.entries: list[JournalEntry] = []
        self._replay: dict[bytes, collections.deque[JournalEntry]] = collections.defaultdict(collections.deque)
        for entry in replay or []:
            self._replay[_key(entry.params)].append(entry)
        self._left = len(replay or [])

    @property
    def replaying(self) -> bool:
        """True while recorded evaluations are left to be asked for."""
        return self._left > 0

    def lookup(self, params: np.ndarray, need_grad: bool) -> JournalEntry | None:
        """The recorded evaluation at ``params`` (with a gradient when needed), consumed once."""
        queue = self._replay.get(_key(params))
        while queue:
            entry = queue.popleft()
            self._left -= 1
            if entry.grad is not None or not need_grad:
                self.entries.append(entry)
                return entry
        return None

    def record(self, entry: JournalEntry) -> None:
        self.entries.append(entry)


def _key(params: np.ndarray) -> bytes:
    return np.ascontiguousarray(params, dtype=np.float64).tobytes()


def fit_identity(
    refs: tuple[Any, ...],
    start_values: np.ndarray,
    options: dict[str, Any],
    ranges: tuple[tuple[float, float], ...] | None = None,
) -> dict[str, Any]:
    """What must be equal for a checkpoint to belong to a fit (``ranges``: a parameter file's)."""
    identity = {
        "refs": [[int(r.line), int(r.field)] for r in refs],
        "start_values": [float(v) for v in start_values],
        "options": json.loads(json.dumps(options, default=str)),
    }
    if ranges is not None:
        identity["ranges"] = [[str(low), str(high)] for low, high in ranges]  # str: JSON has no infinity
    return identity


@dataclass
class CheckpointState:
    """A loaded checkpoint."""

    path: Path
    identity: dict[str, Any]
    history: list[IterationInfo]
    journal: list[JournalEntry]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def iteration(self) -> int:
        return self.history[-1].iteration if self.history else -1


class FitCheckpoint:
    """The iteration callback that writes ``checkpoint.npz``, and the journal the driver records into.

    ``extra`` is kept with the checkpoint for the caller (e.g. the MLflow run to continue).
    """

    def __init__(
        self,
        directory: Path,
        identity: dict[str, Any],
        extra: dict[str, Any] | None = None,
        resume: CheckpointState | None = None,
    ):
        self.path = Path(directory) / CHECKPOINT_FILE
        self.identity = identity
        self.extra = dict(extra or {})
        if resume is not None:
            check_identity(resume, identity)
        self.resumed_from = resume
        self.journal = FitJournal(resume.journal if resume else None)
        self.history: list[IterationInfo] = []

    def __call__(self, info: IterationInfo) -> None:
        self.history.append(info)
        if self.journal.replaying:
            return  # the checkpoint on disk still holds more than this process has retraced
        self.write()

    def write(self) -> Path:
        """Write the checkpoint atomically (a kill mid-write leaves the previous one)."""
        entries = self.journal.entries
        n = len(self.identity["refs"])
        grads = np.full((len(entries), n), np.nan)
        for i, e in enumerate(entries):
            if e.grad is not None:
                grads[i] = e.grad
        params = np.array([e.params for e in entries], float).reshape(len(entries), n)
        values = np.array([e.value for e in entries], float)
        converged = np.array([e.converged for e in entries], bool)
        meta = {
            "version": FORMAT_VERSION,
            "identity": self.identity,
            "history": [asdict(h) for h in self.history],
            "extra": self.extra,
            "counters": {"iterations": max(len(self.history) - 1, 0), "evaluations": int(sum(e.cost for e in entries))},
            "current": params[-1].tolist() if len(entries) else None,
            "best": _best(params, values, converged),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                params=params,
                values=values,
                grads=grads,
                has_grad=np.array([e.grad is not None for e in entries], bool),
                converged=converged,
                cost=np.array([e.cost for e in entries], np.int64),
                meta=np.array(json.dumps(meta)),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        return self.path


def _best(params: np.ndarray, values: np.ndarray, converged: np.ndarray) -> dict[str, Any] | None:
    ok = np.flatnonzero(converged)
    if ok.size == 0:
        return None
    i = ok[np.argmin(values[ok])]
    return {"score": float(values[i]), "params": params[i].tolist(), "evaluation": int(i)}


def load_checkpoint(directory: Path) -> CheckpointState:
    """Read ``<directory>/checkpoint.npz``; CheckpointError naming the file when absent or unreadable."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint (a fit writes one at every iteration into its run directory)")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            entries = [
                JournalEntry(
                    params=data["params"][i].copy(),
                    value=float(data["values"][i]),
                    grad=data["grads"][i].copy() if data["has_grad"][i] else None,
                    converged=bool(data["converged"][i]),
                    cost=int(data["cost"][i]),
                )
                for i in range(data["values"].shape[0])
            ]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(error).__name__}: {error})") from error
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('version')!r}, expected {FORMAT_VERSION}")
    history = [IterationInfo(**h) for h in meta["history"]]
    return CheckpointState(path, meta["identity"], history, entries, meta.get("extra", {}))


def check_identity(state: CheckpointState, identity: dict[str, Any]) -> None:
    """CheckpointError naming what differs when ``state`` was written by another fit."""
    differ = [key for key in ("refs", "start_values", "options") if state.identity.get(key) != identity.get(key)]
    if not differ:
        return
    detail = []
    if "options" in differ:
        old, new = state.identity.get("options", {}), identity.get("options", {})
        detail = [
            f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
        ]
    raise CheckpointError(
        f"{state.path}: the checkpoint belongs to another fit ({', '.join(differ)} differ"
        + (f": {'; '.join(detail)}" if detail else "")
        + "); resume with the overrides of the original run"
    )
