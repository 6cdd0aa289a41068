"""Per-iteration progress: records the score curve and prints one line per iteration on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class IterationProgress:
    """Callable fed ``(iteration, score)``; keeps the curve for MLflow and prints when wanted.

    ``enabled=None`` prints only when ``stream`` is a terminal, so logs and CI stay quiet.
    """

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None, label: str = ""):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.steps: list[int] = []
        self.scores: list[float] = []
        self._t0 = time.perf_counter()

    def __call__(self, iteration: int, score: float) -> None:
        self.steps.append(int(iteration))
        self.scores.append(float(score))
        if self.enabled:
            self.stream.write(self._line(int(iteration), float(score)) + "\n")
            self.stream.flush()

    def _line(self, iteration: int, score: float) -> str:
        first = self.scores[0]
        change = 100.0 * (score - first) / abs(first) if first else 0.0
        elapsed = time.perf_counter() - self._t0
        prefix = f"[{self.label}] " if self.label else ""
        return f"{prefix}iter {iteration:5d}  score {score:.6e}  ({change:+7.2f} %)  {elapsed:7.1f} s"
