"""What a job tells the terminal while it runs: phase lines with their times, then the score
every few seconds, through ``logging`` (logger ``q2mm.progress``), so Hydra writes the same
lines to the console and to the job's ``run.log``. The score curve is kept for MLflow."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("q2mm.progress")
INTERVAL_S = 5.0  # at most one score line per this many seconds (besides the first and the last)


class IterationProgress:
    """Callable fed ``(iteration, score)``; keeps the curve and logs a short account of the job.

    ``enabled``: None (default) logs a score line at most every ``interval_s`` seconds, True
    one per iteration, False none (phase lines are always logged). ``label`` prefixes every
    line (a sweep job's run name).
    """

    def __init__(
        self,
        enabled: bool | None = None,
        label: str = "",
        interval_s: float = INTERVAL_S,
        logger: logging.Logger | None = None,
        started_s: float | None = None,
    ):
        """``started_s``: the job's start (epoch seconds, as its MLflow run's start time); now when None."""
        self.enabled = enabled
        self.label = label
        self.interval_s = interval_s
        self.log = logger or log
        self.steps: list[int] = []
        self.scores: list[float] = []
        self.t0 = time.perf_counter() - (0.0 if started_s is None else max(time.time() - started_s, 0.0))
        self._mark = self.t0
        self._last_line: float | None = None
        self._logged_step: int | None = None

    @property
    def elapsed_s(self) -> float:
        """Seconds since the job started."""
        return time.perf_counter() - self.t0

    def say(self, message: str) -> None:
        """One line, prefixed with the label and the job's elapsed time."""
        prefix = f"[{self.label}] " if self.label else ""
        self.log.info("%s%6.1f s  %s", prefix, self.elapsed_s, message)

    @contextmanager
    def phase(self, what: str) -> Iterator[None]:
        """Log ``what`` as it starts and ``what: done in X s`` when it ends."""
        start = time.perf_counter()
        self.say(f"{what} ...")
        yield
        self.say(f"{what}: done in {time.perf_counter() - start:.1f} s")

    def start_fit(self, what: str) -> None:
        """Announce the fit; the first score line then says how long its first evaluation took."""
        self._mark = time.perf_counter()
        self.say(what)

    def __call__(self, iteration: int, score: float) -> None:
        self.steps.append(int(iteration))
        self.scores.append(float(score))
        now = time.perf_counter()
        if len(self.scores) == 1:
            self.say(
                f"start: score {score:.4e} (first evaluation and ratio gate {now - self._mark:.1f} s, "
                "compiling included)"
            )
            self._last_line = now
        elif self.enabled or (self.enabled is None and now - (self._last_line or self.t0) >= self.interval_s):
            self.say(self._line(int(iteration), float(score)))
            self._last_line = now

    def finish_fit(self) -> None:
        """The last score line, unless it was just logged."""
        if len(self.scores) > 1 and self.enabled is not False and self.steps[-1] != self._logged_step:
            self.say(self._line(self.steps[-1], self.scores[-1]))

    def _line(self, iteration: int, score: float) -> str:
        self._logged_step = iteration
        first = self.scores[0]
        change = 100.0 * (score - first) / abs(first) if first else 0.0
        return f"iter {iteration:5d}  score {score:.4e}  ({change:+7.2f} %)"
