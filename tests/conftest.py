"""Shared fixtures: the data root (Q2MM_DATA, else ../shared/data) and skips without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from q2mm.paths import data_root as _data_root


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if root is None or not root.is_dir():
        pytest.skip("no shared data: set Q2MM_DATA or place shared/data beside the checkout")
    return root


@pytest.fixture(scope="session")
def rh_dir(data_root: Path) -> Path:
    path = data_root / "rh-enamide"
    if not path.is_dir():
        pytest.skip(f"{path} missing from the data root")
    return path


@pytest.fixture(scope="session")
def ethane_dir(data_root: Path) -> Path:
    path = data_root / "ethane"
    if not path.is_dir():
        pytest.skip(f"{path} missing from the data root")
    return path


@pytest.fixture(scope="session")
def sn2_dir(data_root: Path) -> Path:
    path = data_root / "sn2"
    if not path.is_dir():
        pytest.skip(f"{path} missing from the data root")
    return path


SERVICE_FIXTURES = frozenset({"slurm_cluster", "postgres_server", "server_uri"})


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Tests marked heavy run only with Q2MM_HEAVY=1 (tens of minutes on 2 cores).

    Under ``pytest -n 2 --dist loadgroup`` (the README's command) each test module is one
    group, so a module's compiled fixtures are built by one worker only, and every test that
    uses a session service (the SLURM cluster, PostgreSQL, the MLflow server on them) is in
    one group, so each service is started once."""
    for item in items:
        uses_service = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.xdist_group("services" if uses_service else item.nodeid.split("::")[0]))
    if os.environ.get("Q2MM_HEAVY") == "1":
        return
    skip = pytest.mark.skip(reason="heavy: tens of minutes on 2 cores; set Q2MM_HEAVY=1 to run")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent under -p no:xdist
def pytest_xdist_node_collection_finished(node, ids):
    """Stop at once where pytest-xdist did not apply the groups (it tags each worker's node
    ids with ``@group``; pytest 9.2 derives node ids afresh and drops xdist 3.8's tag): split
    groups rebuild module fixtures and start the session services twice."""
    if node.config.getvalue("dist") == "loadgroup" and ids and "@" not in ids[0]:
        pytest.exit(
            f"--dist loadgroup had no effect ({ids[0]} carries no @group): "
            "install the pytest this project pins (pip install -e '.[test]')",
            returncode=4,
        )
