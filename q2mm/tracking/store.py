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
UI_DEFAULT = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store by default
# The experiment's kind: MLflow 3 UIs without the GenAI / Model training switch open such an
# experiment on its runs. MLflow 3.17 follows the switch instead (default GenAI, kept in the
# browser) and the address's ``workflowType``: its runs list is :func:`runs_page_url`.
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")


def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: ``uri`` as given, or the project's sqlite store."""
    if uri is None or uri == "":
        DEFAULT_STORE_DIR.mkdir(parents=True, exist_ok=True)
        return f"{_SQLITE}{DEFAULT_STORE_DIR / 'mlflow.db'}"
    if uri.startswith(_SQLITE):
        Path(uri[len(_SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
        return uri
    if uri.startswith(("http://", "https://", "databricks")):
        return uri
    raise ConfigurationError(
        f"tracking.uri={uri!r}: expected null (project mlruns/), sqlite:///PATH or http(s)://HOST:PORT"
    )


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a sqlite database; the server's choice otherwise."""
    if uri.startswith(_SQLITE):
        return (Path(uri[len(_SQLITE) :]).parent / "artifacts").resolve().as_uri()
    return None


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, created (with its artifact location) when missing; an
    experiment without a kind is marked as model training so that the UI opens on its runs."""
    existing = client.get_experiment_by_name(name)
    key, value = EXPERIMENT_KIND_TAG
    if existing is not None:
        if key not in existing.tags:
            client.set_experiment_tag(existing.experiment_id, key, value)
        return existing.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(uri), tags={key: value})


def existing_store(uri: str | None) -> str:
    """The URI of a store that exists (for reading): a sqlite file that is there, or a server
    that answers; anything else is a ConfigurationError, never a new empty store."""
    if uri is None or uri == "":
        path = DEFAULT_STORE_DIR / "mlflow.db"
        if not path.is_file():
            raise ConfigurationError(
                f"no MLflow store at {path}: run `python -m q2mm.run` first, or pass --tracking-uri"
            )
        return f"{_SQLITE}{path}"
    if uri.startswith(_SQLITE):
        if not Path(uri[len(_SQLITE) :]).is_file():
            raise ConfigurationError(f"--tracking-uri {uri}: no such sqlite file ({uri[len(_SQLITE) :]})")
        return uri
    if uri.startswith(("http://", "https://")):
        import urllib.request

        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10).close()
        except OSError as error:
            raise ConfigurationError(f"--tracking-uri {uri}: no MLflow server answers there ({error})") from None
        return uri
    return resolve_uri(uri)


def ui_base(uri: str) -> str:
    """The web address of the UI for a store: the server itself, else where `mlflow ui` serves."""
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else UI_DEFAULT


def runs_page_url(uri: str, experiment_id: str) -> str:
    """The experiment's runs list (MLflow 3's model-training view)."""
    return f"{ui_base(uri)}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def run_page_url(uri: str, experiment_id: str, run_id: str) -> str:
    """One run's page, in MLflow 3's model-training view."""
    return f"{ui_base(uri)}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def ui_command(uri: str) -> str:
    """The command that serves a local store's UI at :data:`UI_DEFAULT` ('' for a server)."""
    return f"mlflow ui --backend-store-uri {uri}" if uri.startswith(_SQLITE) else ""
