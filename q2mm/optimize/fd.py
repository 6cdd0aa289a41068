"""Central finite differences of the reference objective, spread over worker processes.

The objective is pickled once into each worker (spawned processes, so JAX
state is never forked); objectives that cannot be pickled fall back to a
thread pool, which still overlaps work wherever the objective releases the GIL.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np

from q2mm.optimize.bounds import BoxScaling
from q2mm.optimize.protocols import ObjectiveLike

_WORKER_OBJECTIVE: ObjectiveLike | None = None


def _init_worker(payload: bytes, needs_jax: bool, is_factory: bool) -> None:
    global _WORKER_OBJECTIVE
    if needs_jax:  # float64 must be on before any JAX array is unpickled
        import q2mm.jaxconfig  # noqa: F401
    loaded = pickle.loads(payload)
    _WORKER_OBJECTIVE = loaded() if is_factory else loaded


def _worker_score(p: np.ndarray) -> float:
    assert _WORKER_OBJECTIVE is not None, "worker not initialised"
    return float(_WORKER_OBJECTIVE(p).score)


@dataclass
class ScorePool:
    """Evaluates ``objective(p).score`` for many parameter vectors at once.

    Workers receive the pickled ``factory`` (a picklable recipe that builds an
    equal objective, e.g. from the training set) when one is given, else the
    pickled objective; when neither pickles, threads share the objective.
    """

    objective: ObjectiveLike
    workers: int = 2
    factory: Callable[[], ObjectiveLike] | None = None
    kind: str = field(init=False, default="serial")
    _executor: Executor | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.workers = max(1, min(self.workers, os.cpu_count() or 1))
        if self.workers == 1:
            return
        try:
            payload = pickle.dumps(self.factory if self.factory is not None else self.objective)
        except Exception:  # noqa: BLE001 - any pickling failure means "use threads"
            self.kind = "threads"
            self._executor = ThreadPoolExecutor(max_workers=self.workers)
            return
        self.kind = "processes"
        context = multiprocessing.get_context("spawn")
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(payload, "jax" in sys.modules, self.factory is not None),
        )

    def scores(self, points: Sequence[np.ndarray]) -> np.ndarray:
        """Scores of every point, in order."""
        if self._executor is None:
            return np.array([float(self.objective(p).score) for p in points])
        if self.kind == "processes":
            try:
                return np.array(list(self._executor.map(_worker_score, points)))
            except BrokenProcessPool:  # a worker could not start or rebuild the objective
                self._executor.shutdown(wait=False, cancel_futures=True)
                self.kind, self._executor = "threads", ThreadPoolExecutor(max_workers=self.workers)
        return np.array(list(self._executor.map(lambda p: float(self.objective(p).score), points)))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> ScorePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fd_value_and_grad(
    score_many: Callable[[Sequence[np.ndarray]], np.ndarray], scaling: BoxScaling, z: np.ndarray, step: float
) -> tuple[float, np.ndarray, int]:
    """Score and its gradient in unit-box coordinates by central differences.

    ``step`` is in unit-box units (a fraction of each bound width). A coordinate
    within ``step`` of a box face is clipped to the face, so no point leaves the box.
    Returns (value, dL/dz, number of objective evaluations).
    """
    z = np.asarray(z, float)
    points = [scaling.to_params(z)]
    plus, minus = [], []
    for i in range(z.size):
        up, down = z.copy(), z.copy()
        up[i] = min(z[i] + step, 1.0)
        down[i] = max(z[i] - step, 0.0)
        plus.append(up)
        minus.append(down)
    points += [scaling.to_params(u) for u in plus] + [scaling.to_params(d) for d in minus]
    scores = score_many(points)
    value, f_plus, f_minus = scores[0], scores[1 : 1 + z.size], scores[1 + z.size :]
    spans = np.array([u[i] - d[i] for i, (u, d) in enumerate(zip(plus, minus))])
    return float(value), (f_plus - f_minus) / spans, len(points)
