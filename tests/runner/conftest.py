"""Fixtures of the runner tests: composed configs and temporary MLflow stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from q2mm.config import register_configs
from q2mm.paths import PROJECT_ROOT
from tests.services.slurm import slurm_cluster  # noqa: F401  (one session cluster for every runner test)

register_configs()


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory) -> Path:
    """One sqlite tracking store for the session (creating a store costs seconds of migrations);
    tests keep apart by experiment name."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def store_uri(store_dir: Path) -> str:
    uri = f"sqlite:///{store_dir / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # create the schema once
    return uri


@pytest.fixture
def experiment(request) -> str:
    """An experiment name unique to the test."""
    return request.node.name.replace("[", "-").replace("]", "")


@pytest.fixture
def make_cfg():
    """compose(overrides) of the runner's primary config (hydra keys included)."""

    def _make(*overrides: str):
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=True)

    return _make


def experiment_runs(uri: str, name: str) -> list:
    """Every run of experiment ``name`` in the store at ``uri``."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    return [] if found is None else client.search_runs([found.experiment_id], max_results=1000)


def artifact_names(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    """Every artifact file of a run, walked recursively."""
    names: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            names |= artifact_names(client, run_id, item.path)
        else:
            names.add(item.path)
    return names
