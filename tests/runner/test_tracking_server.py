"""python -m q2mm.tracking.server refuses a backend it cannot use with one message, before starting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from q2mm.errors import ConfigurationError
from q2mm.tracking.server import _redact, check_backend, server_command


def test_backend_mistakes_are_one_message(tmp_path):
    with pytest.raises(ConfigurationError, match="expected a database URI"):
        check_backend("http://127.0.0.1:5000")
    with pytest.raises(ConfigurationError, match="needs the MySQLdb driver|needs the .* driver"):
        check_backend("mysql://u:secret@127.0.0.1/db")
    with pytest.raises(ConfigurationError, match="cannot connect to sqlite"):
        check_backend(f"sqlite:///{tmp_path}/missing/dir/mlflow.db")
    check_backend(f"sqlite:///{tmp_path}/mlflow.db")  # a usable one passes


def test_password_is_never_printed_and_command_is_mlflow_server(tmp_path):
    assert _redact("postgresql+psycopg://alice:secret@db:5432/mlflow") == "postgresql+psycopg://alice@db:5432/mlflow"
    command = server_command("sqlite:///x.db", tmp_path, "0.0.0.0", 5001, 3)
    assert command[1:4] == ["-m", "mlflow", "server"] and command[-6:] == [
        "--host",
        "0.0.0.0",
        "--port",
        "5001",
        "--workers",
        "3",
    ]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "q2mm.tracking.server",
            "--backend-store-uri",
            "postgresql+psycopg://alice:secret@127.0.0.1:1/mlflow",
            "--artifacts-destination",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and "secret" not in done.stderr
    assert done.stderr.startswith("error: --backend-store-uri") and "127.0.0.1:1" in done.stderr
