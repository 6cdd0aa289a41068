"""The engine programs shared by both objectives: each shape lowered and compiled once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jax.numpy as jnp
import numpy as np
import pytest

from q2mm.objective.shared import CompiledOnce


def test_each_shape_is_compiled_once_whoever_asks_first():
    """``start`` (lowered here, compiled in a pool) and ``program`` from other threads share one
    executable per shape; another shape gets its own."""
    traces = []

    def double(x):
        traces.append(x.shape)  # runs once per trace
        return 2.0 * x

    shared = CompiledOnce(double)
    x = jnp.arange(3.0)
    with ThreadPoolExecutor(2) as pool:
        future = shared.start(pool, x)
        programs = list(pool.map(lambda _: shared.program(x), range(4)))
    assert all(p is future.result() for p in programs)
    np.testing.assert_array_equal(future.result()(x), [0.0, 2.0, 4.0])
    shared.program(jnp.arange(4.0))
    assert traces == [(3,), (4,)]


def test_a_failed_lowering_reaches_every_caller():
    def broken(x):
        raise ValueError("no program for this")

    shared = CompiledOnce(broken)
    x = jnp.arange(3.0)
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="no program"):
        shared.start(pool, x)
    with pytest.raises(ValueError, match="no program"):
        shared.program(x)
