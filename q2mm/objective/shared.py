"""The engine's programs compiled once per process and shared by both objectives.

The engine's Hessian is the largest single XLA compile of a cold start (MM3*: about 4.5-7 s
of CPU even for six atoms, the valence kinds unrolled and differentiated twice); its energy
and gradient come with it in the same program (``engine_derivatives``), which compiles and
runs in less than two separate ones would. Every program that holds it is compiled once, and
a fit problem's two objectives evaluate the engine through the same one (``EngineEvaluation``,
chosen by the training set's size, ``minimizes_stepwise``, in ``q2mm.compose``):

- small sets: ``engine_derivatives`` alone. ``JaxLoss`` minimizes stepwise, compiled
  trust-region steps around it, and takes the Hessian at each QM geometry from it;
- larger sets: ``engine_minimizer``, the compiled ``jax_newton`` loop (JaxLoss's inner
  minimizations). With ``EVALUATE`` its first pass evaluates the start and stops, which gives
  JaxLoss's Hessian at the QM geometry and the reference objective's Newton steps without a
  second copy of the engine's Hessian to compile (rh-enamide's cold start about 5 s shorter,
  docs/performance.md).

``ObjectiveFunction`` calls it at every Newton step of its own NumPy minimizer. Sharing the
engine's functions keeps the ratio gate an independent check: the two objectives still share
no loss or derivative code. The first caller for a shape lowers and compiles a program
(``CompiledOnce``), later callers from any thread wait for that program.

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
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple, TypeVar

import jax
import numpy as np

from q2mm.jaxconfig import usable_cpus
from q2mm.mm3.minimize import MinimizeOptions, jax_newton_state, minimum_of

_LOCK = threading.Lock()  # guards the creation of each model's program (a short critical section)
# structures evaluated at once (Q2MM_STRUCTURE_THREADS; default: the CPUs this process may use)
STRUCTURE_THREADS = int(os.environ.get("Q2MM_STRUCTURE_THREADS", str(usable_cpus())))
_POOL: ThreadPoolExecutor | None = None
# the largest training set (structures x padded atoms) JaxLoss minimizes step by step by default:
# stepwise saves 3-4 s of compile and costs about 1 ms of host round trips per Newton step, so it
# pays below roughly 3000 steps per fit, which small molecules stay under (docs/performance.md)
STEPWISE_MAX_ATOMS = 24
ITERATE, EVALUATE = np.asarray(True), np.asarray(False)  # minimize_or_evaluate's last argument
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


def _shared(model: Any, key: Hashable, fn) -> CompiledOnce:
    """The model's shared program ``key``, made by ``CompiledOnce(fn())`` on first use."""
    with _LOCK:
        programs = model.__dict__.setdefault("_q2mm_shared_programs", {})
        if key not in programs:
            programs[key] = CompiledOnce(fn())
    return programs[key]


def minimizes_stepwise(coords_shape: tuple[int, ...]) -> bool:
    """Whether JaxLoss minimizes step by step by default for padded coordinates of this shape
    (structures, Nmax, 3): at most ``STEPWISE_MAX_ATOMS`` padded atoms in all. ``q2mm.compose``
    gives a fit problem's reference objective the same choice (``EngineEvaluation``), so that
    both objectives share one program with the engine's Hessian."""
    return coords_shape[0] * coords_shape[1] <= STEPWISE_MAX_ATOMS


def engine_derivatives(model: Any) -> CompiledOnce:
    """The compiled ``model.energy_gradient_hessian``: (E, dE/dx, Hessian) at one padded
    geometry x (Nmax, 3); made on first use for this model object. One program for all three:
    every caller wants the Hessian with the gradient (each Newton step of both objectives) or
    can drop the energy and gradient (JaxLoss's Hessian at the QM geometry), and one program
    compiles and runs in less than two (docs/performance.md)."""
    return _shared(model, "_q2mm_shared_engine", lambda: model.energy_gradient_hessian)


def engine_minimizer(model: Any, options: MinimizeOptions) -> CompiledOnce:
    """The compiled ``jax_newton`` loop of the engine's energy (``minimize_or_evaluate``):
    JaxLoss's inner minimizations where it does not minimize stepwise, and with ``EVALUATE``
    the engine's energy, gradient and Hessian at one geometry (the first pass of the loop
    evaluates its start and stops), so one program with the engine's Hessian inside serves
    the minimizer, JaxLoss's eigen stage and the reference objective's Newton steps."""
    return _shared(model, ("minimizer", options), lambda: partial(minimize_or_evaluate, model, options))


class Minimized(NamedTuple):
    """``minimize_or_evaluate``'s result. Energy, gradient and Hessian are NaN where the
    energy is not finite (the loop keeps its start values then)."""

    x: Any  # (Nmax, 3) the minimum (EVALUATE: x0)
    energy: Any
    gradient: Any  # (Nmax, 3)
    hessian: Any  # (Nmax, 3, Nmax, 3), exact
    hessian_l: Any  # (3 Nmax, 3 Nmax): of the Lagrangian where pairs are pinned (the implicit derivative's)
    pins: Any  # (K, 2)
    active: Any  # (K,)
    max_gradient: Any
    iterations: Any
    converged: Any


def minimize_or_evaluate(model: Any, options: MinimizeOptions, x0, p, topo, mask, iterate) -> Minimized:
    """``jax_newton`` of ``model.energy`` from padded x0 with the engine's one-pass derivatives
    and kinks; ``iterate`` False (``EVALUATE``): the energy, gradient and Hessian at x0 only."""
    import jax.numpy as jnp

    state = jax_newton_state(
        model.energy,
        x0,
        p,
        topo,
        mask,
        options,
        derivatives_fn=model.energy_gradient_hessian,
        kinks=model.kinks(topo),
        iterate=iterate,
    )
    m = minimum_of(state, options)
    finite = jnp.isfinite(state.e)
    g, h = state.g.reshape(x0.shape), state.h.reshape(x0.shape * 2)  # the engine's layouts
    e, g, h = (jnp.where(finite, a, jnp.nan) for a in (state.e, g, h))
    return Minimized(m.x, e, g, h, m.hessian, m.pins, m.active, m.max_gradient, m.iterations, m.converged)


class EngineEvaluation:
    """The engine's (E, dE/dx (Nmax, 3), Hessian) at a padded geometry: from the engine's own
    ``engine_derivatives``, or (``in_minimizer``) from ``engine_minimizer`` with ``EVALUATE``,
    the program a JaxLoss on the same model compiles where it does not minimize stepwise."""

    def __init__(self, model: Any, options: MinimizeOptions, in_minimizer: bool = False):
        self.in_minimizer = in_minimizer
        self.shared = engine_minimizer(model, options) if self.in_minimizer else engine_derivatives(model)
        self._program: Any = None  # the executable for the model's padded shapes (one for all structures)

    def __call__(self, x, p, topo, mask):
        if self._program is None:
            arguments = (x, p, topo, mask, EVALUATE) if self.in_minimizer else (x, p, topo)
            self._program = self.shared.program(*arguments)
        return engine_at(self._program, self.in_minimizer, x, p, topo, mask)


def engine_at(program: Any, in_minimizer: bool, x, p, topo, mask) -> tuple:
    """(E, dE/dx (Nmax, 3), Hessian (Nmax, 3, Nmax, 3)) at x from a compiled engine program
    (``engine_derivatives``) or, ``in_minimizer``, from the minimizer's (``EVALUATE``)."""
    if not in_minimizer:
        return program(x, p, topo)
    found = program(x, p, topo, mask, EVALUATE)
    return found.energy, found.gradient, found.hessian


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
