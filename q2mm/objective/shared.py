"""The engine's programs compiled once per process and shared by both objectives.

The engine's Hessian is the largest single XLA compile of a cold start (MM3*: about 4.5-7 s
of CPU even for six atoms, the valence kinds unrolled and differentiated twice); its energy
and gradient come with it in the same program (``engine_derivatives``), which compiles and
runs in less than two separate ones would. ``JaxLoss`` takes the Hessian at each QM geometry
from it (its eigen stage receives the matrix) and, when it minimizes stepwise (by default
only small training sets: slower per evaluation), runs its inner minimization as compiled
trust-region steps around it; ``ObjectiveFunction`` calls it at every Newton step. So it is
compiled once. Sharing the engine's functions keeps the ratio gate an independent check: the
two objectives still share no loss or derivative code. The first caller for a shape lowers
and compiles it (``CompiledOnce``), later callers from any thread wait for that program.

``map_structures`` evaluates the structures of one call in parallel threads: each structure's
work is a chain of compiled programs (XLA runs them outside the GIL) that depends on no other
structure, so two cores finish rh-enamide's nine about a third sooner than one after the
other (JaxLoss value+grad 614 -> 425 ms, docs/performance.md). The results come back in
structure order and each is computed as alone, so scores and gradients are unchanged to
the bit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

import jax

from q2mm.jaxconfig import usable_cpus

_LOCK = threading.Lock()  # guards the creation of each model's program (a short critical section)
# structures evaluated at once (Q2MM_STRUCTURE_THREADS; default: the CPUs this process may use)
STRUCTURE_THREADS = int(os.environ.get("Q2MM_STRUCTURE_THREADS", str(usable_cpus())))
_POOL: ThreadPoolExecutor | None = None
T = TypeVar("T")


class CompiledOnce:
    """``jax.jit(fn)`` compiled ahead of time once per argument shapes, thread-safe: the first
    caller for a shape lowers and compiles it, later callers wait for that program."""

    def __init__(self, fn):
        self._jit = jax.jit(fn)
        self._lock = threading.Lock()
        self._programs: dict[Any, Future] = {}

    def program(self, *args):
        """The compiled executable for arguments shaped like ``args`` (arrays or ShapeDtypeStructs)."""
        future, mine = self._claim(args)
        if mine:
            _settle(future, self._jit.lower(*args).compile)
        return future.result()

    def start(self, pool: Executor, *args) -> Future:
        """The program for ``args`` as a future: lowered in this thread (tracing holds the GIL
        anyway) and XLA-compiled in ``pool``, so its compile starts as early as possible."""
        future, mine = self._claim(args)
        if mine:
            try:
                lowered = self._jit.lower(*args)
            except BaseException as error:
                future.set_exception(error)
                raise
            pool.submit(_settle, future, lowered.compile)
        return future

    def _claim(self, args) -> tuple[Future, bool]:
        """The future of this shape's program and whether this caller must make it."""
        leaves, tree = jax.tree.flatten(args)
        key = (tree, tuple((tuple(a.shape), str(a.dtype)) for a in leaves))
        with self._lock:
            if key in self._programs:
                return self._programs[key], False
            self._programs[key] = Future()
            return self._programs[key], True


def _settle(future: Future, make: Callable[[], Any]) -> None:
    """``future`` gets ``make()`` or its exception (re-raised here too)."""
    try:
        future.set_result(make())
    except BaseException as error:
        future.set_exception(error)
        raise


def _shared(model: Any, key: str, fn) -> CompiledOnce:
    with _LOCK:
        shared = model.__dict__.get(key)
        if shared is None:
            shared = CompiledOnce(fn())
            model.__dict__[key] = shared
    return shared


def engine_derivatives(model: Any) -> CompiledOnce:
    """The compiled ``model.energy_gradient_hessian``: (E, dE/dx, Hessian) at one padded
    geometry x (Nmax, 3); made on first use for this model object. One program for all three:
    every caller wants the Hessian with the gradient (each Newton step of both objectives) or
    can drop the energy and gradient (JaxLoss's Hessian at the QM geometry), and one program
    compiles and runs in less than two (docs/performance.md)."""
    return _shared(model, "_q2mm_shared_engine", lambda: model.energy_gradient_hessian)


def map_structures(evaluate: Callable[[int], T], count: int) -> list[T]:
    """``[evaluate(s) for s in range(count)]``, the structures in ``STRUCTURE_THREADS`` threads
    (one process-wide pool; ``evaluate`` must not itself wait on this pool)."""
    global _POOL
    if STRUCTURE_THREADS <= 1 or count <= 1:
        return [evaluate(s) for s in range(count)]
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(STRUCTURE_THREADS, thread_name_prefix="q2mm-structure")
    return list(_POOL.map(evaluate, range(count)))
