"""Code-quality gates on the package, configured in pyproject.toml: ruff lint, ruff format and mypy.

Each runs the tool as CI does; a finding fails with the tool's own report. mypy checks the
whole package (no module is exempt). The optimizer and the objectives read each other through
written Protocols (``q2mm.optimize.protocols``, ``q2mm.objective.contract``), never by probing
attributes.
"""

from __future__ import annotations

import re
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


def test_optimizer_and_objectives_do_not_probe_attributes():
    probes = [
        f"{path.relative_to(PROJECT_ROOT)}:{n}"
        for layer in ("optimize", "objective")
        for path in sorted((PROJECT_ROOT / "q2mm" / layer).glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\b(hasattr|getattr)\(", line)
    ]
    assert probes == []
