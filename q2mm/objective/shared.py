"""The engine's programs compiled once per process and shared by both objectives.

The engine's Hessian is the largest single XLA compile of a cold start (MM3*: about 4.5-7 s
of CPU even for six atoms, the valence kinds unrolled and differentiated twice), its energy
and gradient the next. ``JaxLoss`` takes the Hessian at each QM geometry from it (its eigen
stage receives the matrix) and, only with ``stepwise_minimize=True`` (off by default: slower
per evaluation), runs its inner minimization as compiled trust-region steps around both
programs; ``ObjectiveFunction`` calls both at every Newton step. So each is compiled once. Sharing the engine's functions keeps the ratio gate an independent check: the
two objectives still share no loss or derivative code. The first call of either compiles
under a lock, so the reference objective's thread and JaxLoss's compile threads never
compile one twice.
"""

from __future__ import annotations

import threading
from typing import Any

import jax

_LOCK = threading.Lock()  # guards the creation of each model's program (a short critical section)


class CompiledOnce:
    """``jax.jit(fn)`` compiled ahead of time once per argument shapes, thread-safe."""

    def __init__(self, fn):
        self._jit = jax.jit(fn)
        self._lock = threading.Lock()
        self._programs: dict[Any, Any] = {}

    def program(self, *args):
        """The compiled executable for arguments shaped like ``args`` (arrays or ShapeDtypeStructs)."""
        leaves, tree = jax.tree.flatten(args)
        key = (tree, tuple((tuple(a.shape), str(a.dtype)) for a in leaves))
        with self._lock:
            if key not in self._programs:
                self._programs[key] = self._jit.lower(*args).compile()
            return self._programs[key]


def _shared(model: Any, key: str, fn) -> CompiledOnce:
    with _LOCK:
        shared = model.__dict__.get(key)
        if shared is None:
            shared = CompiledOnce(fn())
            model.__dict__[key] = shared
    return shared


def engine_hessian(model: Any) -> CompiledOnce:
    """The compiled ``model.hessian(x, p, topo)`` of this model object, made on first use."""
    return _shared(model, "_q2mm_shared_hessian", lambda: model.hessian)


def engine_energy_gradient(model: Any) -> CompiledOnce:
    """The compiled ``(E, dE/dx)`` of ``model.energy(x, p, topo)`` (x padded (Nmax, 3))."""
    return _shared(model, "_q2mm_shared_energy_gradient", lambda: jax.value_and_grad(model.energy))
