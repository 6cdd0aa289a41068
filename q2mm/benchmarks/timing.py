"""Repeated timings summarised as median, min and max; peak memory; machine facts."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Stats:
    """Seconds of ``n`` repetitions: median, min and max (samples in order of measurement)."""

    median: float
    min: float
    max: float
    n: int
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: list[float] | tuple[float, ...]) -> Stats:
        """Statistics of measured samples (at least one)."""
        if not samples:
            raise ValueError("no samples to summarise")
        values = tuple(float(s) for s in samples)
        return cls(statistics.median(values), min(values), max(values), len(values), values)

    def scaled(self, factor: float) -> Stats:
        """The same statistics multiplied by ``factor`` (e.g. a per-parameter time to all parameters)."""
        return Stats.of([s * factor for s in self.samples])

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = list(self.samples)
        return data


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of ``fn`` took, and what it returned."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def repeat(fn: Callable[[], Any], repeats: int) -> Stats:
    """Time ``repeats`` calls of ``fn`` (call it once before to exclude compilation)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    return Stats.of([time_once(fn)[0] for _ in range(repeats)])


def interleaved(fns: Sequence[Callable[[], Any]], repeats: int) -> list[Stats]:
    """Time ``repeats`` calls of each of ``fns``, one call of each per round in turn, so every
    function meets the same stretches of machine load (call each once before)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, seconds in zip(fns, samples):
            seconds.append(time_once(fn)[0])
    return [Stats.of(s) for s in samples]


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory in MiB of this process (or of its largest finished child)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    kib = resource.getrusage(who).ru_maxrss  # KiB on Linux
    return kib / 1024.0 if sys.platform != "darwin" else kib / 1024.0**2


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what platform reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """CPU count, CPU model, load average, Python, NumPy and JAX versions, device, float64."""
    import jax
    import jaxlib
    import numpy

    from q2mm.jaxconfig import usable_cpus

    device = jax.devices()[0]
    usable = usable_cpus()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "jax_backend": jax.default_backend(),
        "jax_device": f"{device.platform}:{device.device_kind}",
        "float64": bool(jax.config.read("jax_enable_x64")),
    }


def print_probe_result(measure: Callable[[list[str]], dict[str, Any]], argv: Sequence[str] | None = None) -> int:
    """A probe's entry point: ``measure`` of the Hydra overrides (``argv``, else the command
    line), printed as one JSON line on stdout (the parent reads the last line). A bad
    override or input: one line on stderr naming it, exit status 1."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from q2mm.errors import Q2MMError

    try:
        result = measure(list(sys.argv[1:] if argv is None else argv))
    except (Q2MMError, HydraException, OmegaConfBaseException) as error:
        sys.stderr.write(f"{type(error).__name__}: {error}\n")
        return 1
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
