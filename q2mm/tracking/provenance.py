"""What a run was made from: project git state, input-data fingerprint, versions, device."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

from q2mm import __version__
from q2mm.paths import IN_CHECKOUT, PROJECT_ROOT

UNKNOWN = "unknown"


def _git(*args: str) -> str | None:
    if not IN_CHECKOUT:  # an installed package: a repository around site-packages is not ours
        return None
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state() -> dict[str, str]:
    """``git_sha`` and ``git_dirty`` ("true"/"false") of the project checkout, or "unknown"."""
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_sha": sha.strip() if sha else UNKNOWN,
        "git_dirty": UNKNOWN if status is None else str(bool(status.strip())).lower(),
    }


def _expand(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            files.append(path)
    return sorted(set(files))


def fingerprint(paths: Iterable[Path]) -> str:
    """SHA-256 over the names and bytes of the input files (directories walked), order-free."""
    files = _expand(paths)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def software_tags() -> dict[str, str]:
    """q2mm and JAX versions and the device JAX computes on."""
    import jax

    device = jax.devices()[0]
    return {
        "q2mm_version": __version__,
        "jax_version": jax.__version__,
        "jax_device": f"{device.platform}:{device.device_kind}",
    }
