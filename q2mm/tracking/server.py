"""``python -m q2mm.tracking.server``: an MLflow tracking server that many jobs can share.

    python -m q2mm.tracking.server --backend-store-uri postgresql+psycopg://USER@DBHOST:5432/mlflow \\
        --artifacts-destination /shared/q2mm/mlartifacts --host 0.0.0.0 --port 5000

Jobs on any machine then log with ``tracking.uri=http://THIS_HOST:5000``: they talk HTTP to
this one process, which writes runs to the database and artifacts under the shared root.
PostgreSQL takes concurrent writers from every worker; a sqlite file is fine for one
machine (``sqlite:///PATH``) but not for many writers on a shared file system (its locks
rely on POSIX byte-range locking, which NFS and Lustre do not provide reliably).
The backend is checked before the server starts: a wrong URI or an unreachable database is
one message, not a server that fails at its first request.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from q2mm.errors import ConfigurationError, Q2MMError, exit_with_message

DATABASES = ("postgresql", "mysql", "mssql", "sqlite")
DRIVER_PACKAGES = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "pymysql": "pymysql"}


def check_backend(uri: str) -> None:
    """ConfigurationError unless ``uri`` names a database MLflow can use and that answers."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    if scheme not in DATABASES:
        raise ConfigurationError(
            f"--backend-store-uri {uri!r}: expected a database URI ({', '.join(s + '://' for s in DATABASES)}...)"
        )
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(uri)
    except ModuleNotFoundError as error:
        package = DRIVER_PACKAGES.get(error.name or "", error.name)
        raise ConfigurationError(
            f"--backend-store-uri {_redact(uri)}: needs the {error.name} driver: pip install {package}"
        ) from error
    except sqlalchemy.exc.ArgumentError as error:
        raise ConfigurationError(f"--backend-store-uri {_redact(uri)}: {error}") from error
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise ConfigurationError(
            f"--backend-store-uri: cannot connect to {_redact(uri)}: {error.__cause__ or error}"
        ) from error


def _redact(uri: str) -> str:
    """The URI without a password."""
    head, sep, tail = uri.partition("@")
    if not sep or "://" not in head:
        return uri
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}@{tail}"


def server_command(backend: str, artifacts: Path, host: str, port: int, workers: int) -> list[str]:
    """The ``mlflow server`` command line (run with this interpreter)."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        str(artifacts),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m q2mm.tracking.server", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend-store-uri",
        required=True,
        help="postgresql+psycopg://USER[:PASSWORD]@HOST:PORT/DB (many machines) or sqlite:///PATH (one machine)",
    )
    parser.add_argument(
        "--artifacts-destination",
        required=True,
        type=Path,
        help="artifact root: a directory every job's host can reach through this server",
    )
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4, help="server worker processes (default 4)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        check_backend(args.backend_store_uri)
        args.artifacts_destination.mkdir(parents=True, exist_ok=True)
    except Q2MMError as error:
        exit_with_message(error)
    except OSError as error:
        exit_with_message(ConfigurationError(f"--artifacts-destination {args.artifacts_destination}: {error}"))
    command = server_command(
        args.backend_store_uri, args.artifacts_destination.resolve(), args.host, args.port, args.workers
    )
    sys.stderr.write(
        f"q2mm: jobs log with tracking.uri=http://{args.host}:{args.port} "
        f"(backend {_redact(args.backend_store_uri)}, artifacts {args.artifacts_destination})\n"
    )
    sys.stderr.flush()
    os.execv(command[0], command)  # the server takes this process's place (and PID)


if __name__ == "__main__":
    main()
