"""A fit's cold start in a fresh process: ``python -m q2mm.benchmarks.start_probe OVERRIDES...``.

Builds the configured problem, then runs what ``fit`` runs before its first iteration:
JaxLoss's compile for the configured optimizer (``driver.compile_for``; least-squares: the
Jacobian stage too), then its first call beside the reference objective's first call in a
second thread. Prints one JSON object: seconds of imports, setup, each first call and
the start as a whole, JaxLoss's per-stage lowering and compile seconds, both scores (repr), and
the warm value+grad and reference call. The parent chooses ``Q2MM_JAX_CACHE`` (empty: cold).
"""

from __future__ import annotations

import time

START = time.perf_counter()

import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

import q2mm.jaxconfig  # noqa: E402, F401  (float64 and the cache directory chosen by the parent)
from q2mm.benchmarks.timing import print_probe_result  # noqa: E402


def measure(overrides: Sequence[str]) -> dict[str, Any]:
    """The cold start of the configured fit, measured in this process."""
    from q2mm.benchmarks.setup import compose_config, load_training_set
    from q2mm.compose import problem_from_config
    from q2mm.optimize.choices import parse_method
    from q2mm.optimize.driver import compile_for

    t0 = time.perf_counter()
    cfg = compose_config(overrides)
    problem = problem_from_config(load_training_set(cfg), cfg)
    t1 = time.perf_counter()
    loss, objective, start = problem.loss, problem.objective, problem.start_values
    assert loss is not None  # a fit problem of the runner always has its JaxLoss
    reference: dict[str, Any] = {}

    def first_reference():
        s = time.perf_counter()
        reference["score"] = float(objective(start).score)
        reference["seconds"] = time.perf_counter() - s

    s = time.perf_counter()
    compile_for(loss, parse_method(cfg.optimizer.method))  # as the fit's start: compile, then both calls
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(first_reference)
        value = float(loss.value(start))
        loss_s = time.perf_counter() - s
        pending.result()
    t2 = time.perf_counter()
    s = time.perf_counter()
    loss.value_and_grad(start)
    value_and_grad_s = time.perf_counter() - s
    s = time.perf_counter()
    objective(start)
    reference_warm_s = time.perf_counter() - s
    return {
        "imports_s": t0 - START,
        "setup_s": t1 - t0,
        "loss_first_s": loss_s,
        "reference_first_s": reference["seconds"],
        "start_s": t2 - t1,
        "stage_seconds": dict(getattr(loss, "stage_seconds", {})),
        "loss": repr(value),
        "reference": repr(reference["score"]),
        "value_and_grad_s": value_and_grad_s,
        "reference_warm_s": reference_warm_s,
    }


def main(argv: Sequence[str] | None = None) -> int:
    return print_probe_result(measure, argv)


if __name__ == "__main__":
    sys.exit(main())
