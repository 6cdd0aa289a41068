"""Compile times measured in a fresh process: ``python -m q2mm.benchmarks.compile_probe OVERRIDES...``.

The parent chooses the persistent compilation cache through ``Q2MM_JAX_CACHE`` (an empty
directory gives a cold compile, one filled by an earlier probe a warm one) and reads the
JSON object this prints as its last stdout line: seconds to trace, lower and compile the
engine's energy, gradient and Hessian for the largest structure, and JaxLoss's
value_and_grad; the setup seconds; and this process's peak memory.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from q2mm.benchmarks.timing import peak_rss_mib, print_probe_result, time_once

ENGINE_FUNCTIONS = ("energy", "gradient", "hessian")


def engine_compile_seconds(model: Any, k: int) -> dict[str, float]:
    """Seconds to trace, lower and compile each engine function for structure ``k``."""
    import jax.numpy as jnp

    args = (model.coords[k], jnp.asarray(model.p0), model.structure(k))
    return {name: time_once(lambda: model.compiled(name).lower(*args).compile())[0] for name in ENGINE_FUNCTIONS}


def measure(overrides: Sequence[str]) -> dict[str, Any]:
    """Setup, engine and JaxLoss compile seconds of the configured system, in this process."""
    import q2mm.jaxconfig  # noqa: F401  (float64 and the cache directory chosen by the parent)
    from q2mm.benchmarks.setup import compose_config, largest_structure, load_training_set
    from q2mm.compose import problem_from_config

    cfg = compose_config(overrides)
    setup_s, (training_set, problem) = time_once(lambda: _setup(cfg, problem_from_config, load_training_set))
    engine = engine_compile_seconds(problem.loss.model, largest_structure(training_set))
    loss_s = problem.loss.compile()
    return {
        "setup_s": setup_s,
        "engine": engine,
        "jaxloss": loss_s,
        "cache_dir": str(q2mm.jaxconfig.CACHE_DIR),
        "peak_rss_mib": peak_rss_mib(),
    }


def _setup(cfg, problem_from_config, load_training_set):
    training_set = load_training_set(cfg)
    return training_set, problem_from_config(training_set, cfg)


def main(argv: Sequence[str] | None = None) -> int:
    return print_probe_result(measure, argv)


if __name__ == "__main__":
    sys.exit(main())
