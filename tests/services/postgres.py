"""A throw-away PostgreSQL cluster on 127.0.0.1 from Debian's postgresql package.

initdb into a fresh directory (owned by the ``postgres`` user when we are root: the server
refuses to run as root), trust authentication on loopback only, one database ``mlflow``.
Stopped by the PID in its ``postmaster.pid`` (fast shutdown), never by name.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.services.processes import pid_from_file, stop_pid

DATABASE = "mlflow"
USER = "q2mm"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def unavailable_reason() -> str | None:
    if pg_bin() is None:
        return "PostgreSQL not installed (apt-get install postgresql, as .ci/setup.d/30-postgres.sh does)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'psycopg[binary]'; part of the test and server extras)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "root without runuser: cannot run PostgreSQL as its own user"
    return None


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresCluster:
    directory: Path
    port: int

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "data" / "postmaster.pid"

    @classmethod
    def start(cls, pid_copy: Path | None = None) -> PostgresCluster:
        """initdb, start and create the database; ``pid_copy`` gets the server's PID (for CI teardown)."""
        directory = Path(tempfile.mkdtemp(prefix="q2mm-postgres-"))  # outside root-only temp dirs
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        cluster = cls(directory, _free_port())
        binaries = pg_bin()
        run = lambda *cmd: subprocess.run(
            _as_owner([str(c) for c in cmd]),
            check=True,
            capture_output=True,  # noqa: E731
            text=True,
            timeout=120,
        )
        run(binaries / "initdb", "-D", directory / "data", "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {cluster.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        run(binaries / "pg_ctl", "-D", directory / "data", "-l", directory / "server.log", "-w", "-o", options, "start")
        if pid_copy is not None:
            pid_copy.write_text(cluster.pid_file.read_text().splitlines()[0] + "\n")
        run(binaries / "createdb", "-h", "127.0.0.1", "-p", cluster.port, "-U", USER, DATABASE)
        return cluster

    def stop(self, wait_s: float = 30.0) -> None:
        # SIGINT is PostgreSQL's fast shutdown; no SIGKILL (it would leave shared memory behind)
        stop_pid(pid_from_file(self.pid_file), signal.SIGINT, wait_s, kill=False)
        shutil.rmtree(self.directory, ignore_errors=True)
