"""Code-quality gates on the package, configured in pyproject.toml: ruff lint, ruff format and mypy.

Each runs the tool as CI does; a finding fails with the tool's own report. The mypy modules
listed under ``[[tool.mypy.overrides]] ignore_errors`` are the typing debt found when mypy was
introduced: remove a module from that list once it checks clean.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from q2mm.paths import PROJECT_ROOT

TARGETS = ("q2mm", "tests")


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_ruff_lint_is_clean():
    pytest.importorskip("ruff", reason="ruff is in the test extra: pip install -e '.[test]'")
    done = _run("ruff", "check", "--no-cache", *TARGETS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean():
    pytest.importorskip("ruff", reason="ruff is in the test extra: pip install -e '.[test]'")
    done = _run("ruff", "format", "--check", "--no-cache", *TARGETS)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_is_clean_on_the_package():
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    done = _run("mypy", "--cache-dir", str(PROJECT_ROOT / ".mypy_cache"))
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
