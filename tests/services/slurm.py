"""A single-node SLURM cluster on 127.0.0.1 from Debian's slurm-wlm + munge, in one directory.

Everything (munge key and socket, slurm.conf, spool and state, logs, PID files) lives in
``state_dir``; clients find the cluster through ``SLURM_CONF``. Measured pitfalls of
slurm-wlm 22.05 this handles: ``CgroupPlugin=disabled`` does not exist before Slurm 24
(autodetect + ``IgnoreSystemd=yes`` instead); slurmctld may call the node idle before slurmd
has registered (wait for a fresh ``SlurmdStartTime``); there is no accounting, so ``sacct``
fails (``q2mm.launcher`` falls back to ``squeue``). Daemons are stopped by PID file only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.services.processes import pid_from_file, stop_pid

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
DAEMON_PIDS = ("slurmd.pid", "slurmctld.pid", "munged.pid")


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return f"SLURM not installed ({', '.join(missing)} missing; apt-get install slurm-wlm munge, as .ci/setup.d/20-slurm.sh does)"
    if os.geteuid() != 0:
        return "a single-node SLURM cluster here runs its daemons as root; not root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@dataclass
class SlurmCluster:
    """A running cluster: its directory, config and partition."""

    state_dir: Path
    partition: str = "q2mm"

    @property
    def conf(self) -> Path:
        return self.state_dir / "etc" / "slurm.conf"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env(), capture_output=True, text=True, check=check, timeout=60)

    # ------------------------------------------------------------ start

    @classmethod
    def start(cls, state_dir: Path, timeout_s: float = 30.0) -> SlurmCluster:
        cluster = cls(Path(state_dir).resolve())
        cluster._write_files()
        cluster._start_munge()
        since = time.time()
        cluster._daemon("slurmctld", "-f", str(cluster.conf))
        cluster._daemon("slurmd", "-f", str(cluster.conf))
        cluster._wait_ready(since, timeout_s)
        return cluster

    def _write_files(self) -> None:
        d = self.state_dir
        for sub in ("etc", "ctld", "spool", "munge", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / "munge", 0o700)
        key = d / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        host = socket.gethostname().split(".")[0]
        cpus = max(os.cpu_count() or 1, 8)  # declared CPUs (config_overrides): six 1-CPU jobs run at once
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        self.conf.write_text(f"""\
# single-node test cluster written by tests/services/slurm.py
ClusterName=q2mmtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge/munge.socket,cred_expire=30
StateSaveLocation={d}/ctld
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
# cred_expire (above) is also how long a requeued job waits before it starts again (default 120 s)
MinJobAge=600
SlurmdTimeout=60
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={self.partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        (self.conf.parent / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")

    def _start_munge(self) -> None:
        d = self.state_dir / "munge"
        subprocess.run(
            [
                _exe("munged"),
                f"--socket={d}/munge.socket",
                f"--key-file={d}/munge.key",
                f"--pid-file={self.state_dir}/munged.pid",
                f"--log-file={self.state_dir}/log/munged.log",
                f"--seed-file={d}/munged.seed",
                "--force",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def _daemon(self, name: str, *args: str) -> None:
        subprocess.run([_exe(name), *args], env=self.env(), check=True, capture_output=True, text=True, timeout=30)

    def _wait_ready(self, since: float, timeout_s: float) -> None:
        """Until the node is idle with a SlurmdStartTime after ``since`` (slurmctld may report it
        idle from its saved state before this slurmd registered)."""
        deadline = time.time() + timeout_s
        last = ""
        while time.time() < deadline:
            out = self.run("scontrol", "-o", "show", "node", check=False)
            last = out.stdout + out.stderr
            fields = dict(f.split("=", 1) for f in out.stdout.split() if "=" in f)
            started = fields.get("SlurmdStartTime", "None")
            state = fields.get("State", "")
            if state.startswith("IDLE") and started not in ("None", "Unknown"):
                stamp = time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%S"))
                if stamp >= int(since) - 1:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"SLURM node not ready after {timeout_s} s: {last.strip()}\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for log in sorted((self.state_dir / "log").glob("*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
        return "\n".join(parts)

    # ------------------------------------------------------------ stop

    def stop(self) -> None:
        stop_by_pid_files(self.state_dir)


def stop_by_pid_files(state_dir: Path, wait_s: float = 10.0) -> None:
    """SIGTERM each daemon named by a PID file in ``state_dir`` (never by process name), then wait."""
    for name in DAEMON_PIDS:
        stop_pid(pid_from_file(Path(state_dir) / name), signal.SIGTERM, wait_s)


def cluster_state_dir(tmp_path_factory, name: str) -> Path:
    """Under ``$Q2MM_CI_STATE`` in CI (so .ci/teardown.d finds the PID files), else a pytest temp dir."""
    root = os.environ.get("Q2MM_CI_STATE")
    if root:
        path = Path(root) / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp(name)


try:
    import pytest
except ImportError:  # pragma: no cover - only the fixtures need pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def slurm_cluster(tmp_path_factory):
        """A running single-node cluster for the session (``SLURM_CONF`` set); skips with the reason."""
        reason = unavailable_reason()
        if reason:
            pytest.skip(reason)
        cluster = SlurmCluster.start(cluster_state_dir(tmp_path_factory, "slurm"))
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            yield cluster
        finally:
            cluster.stop()
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous
