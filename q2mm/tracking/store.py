"""Which MLflow store a run talks to, and its experiment.

Default: ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts under ``<project>/mlruns/``.
A ``sqlite:///`` URI keeps its artifacts in an ``artifacts/`` folder beside the database; an
``http(s)://`` URI is a tracking server that decides where artifacts go.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from q2mm.errors import ConfigurationError
from q2mm.paths import work_dir

DEFAULT_STORE_DIR = work_dir() / "mlruns"  # the checkout's, or ./mlruns for an installed package
_SQLITE = "sqlite:///"


def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: ``uri`` as given, or the project's sqlite store."""
    if uri is None or uri == "":
        DEFAULT_STORE_DIR.mkdir(parents=True, exist_ok=True)
        return f"{_SQLITE}{DEFAULT_STORE_DIR / 'mlflow.db'}"
    if uri.startswith(_SQLITE):
        Path(uri[len(_SQLITE):]).parent.mkdir(parents=True, exist_ok=True)
        return uri
    if uri.startswith(("http://", "https://", "databricks")):
        return uri
    raise ConfigurationError(
        f"tracking.uri={uri!r}: expected null (project mlruns/), sqlite:///PATH or http(s)://HOST:PORT"
    )


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a sqlite database; the server's choice otherwise."""
    if uri.startswith(_SQLITE):
        return (Path(uri[len(_SQLITE):]).parent / "artifacts").resolve().as_uri()
    return None


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, created (with its artifact location) when missing."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(uri))
