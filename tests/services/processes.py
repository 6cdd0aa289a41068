"""Stopping a daemon the test services started: by its PID (from a PID file), never by name."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def pid_from_file(path: Path) -> int | None:
    """The PID on the first line of ``path`` (a daemon's PID file), or None if there is none."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_pid(pid: int | None, sig: signal.Signals = signal.SIGTERM, wait_s: float = 10.0, kill: bool = True) -> None:
    """Send ``sig`` to ``pid`` and wait up to ``wait_s`` for it to exit; then SIGKILL if ``kill``."""
    if pid is None:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
