"""Import this before any JAX computation: float64 everywhere, the persistent compile cache,
XLA's CPU compiler options and single-threaded BLAS.

The linear algebra here works on matrices of a few hundred rows (one structure's Hessian):
OpenBLAS threads (NumPy's and SciPy's, which JAX's CPU LAPACK kernels call) only fight XLA's
own threads for the cores. Measured on rh-enamide, 2 cores: JaxLoss value+grad 0.78 s ->
0.46 s, ObjectiveFunction 1.1-1.8 s -> 0.52 s. ``Q2MM_BLAS_THREADS`` sets another limit.

XLA's CPU backend compiles each fusion through MLIR by default (``xla_cpu_use_fusion_emitters``);
its older LLVM emitters compile the same programs 2-3x faster here and run them as fast: a cold
rh-enamide compile (2 cores) went from 83 s to 39 s for JaxLoss, 96 s to 28 s for its Jacobian
stage and 39 s to 10 s for the reference objective's first call, scores equal to 1e-15 and
value+grad 0.93 s -> 0.80 s. The flag joins ``XLA_FLAGS`` unless the user's ``XLA_FLAGS`` sets
it; it must be in place before JAX starts its CPU backend (the first computation).
"""

from __future__ import annotations

import os
from pathlib import Path

import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, so the limit below reaches it)
from threadpoolctl import threadpool_limits

XLA_CPU_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)
# jaxlib releases known to have these flags (XLA aborts the process on an unknown one): check
# the flags again before widening the range
XLA_FLAGS_JAXLIB = ((0, 8), (0, 11))


def _jaxlib_version() -> tuple[int, ...]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(part) for part in version("jaxlib").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return (0,)


def _add_xla_flags(flags: tuple[str, ...]) -> None:
    """Append each flag to XLA_FLAGS unless the environment already sets that option or the
    installed jaxlib is outside the range known to have them."""
    low, high = XLA_FLAGS_JAXLIB
    if not low <= _jaxlib_version() < high:
        return
    current = os.environ.get("XLA_FLAGS", "")
    extra = [f for f in flags if f.split("=")[0] not in current]
    if extra:
        os.environ["XLA_FLAGS"] = " ".join([current, *extra]).strip()


_add_xla_flags(XLA_CPU_FLAGS)

import jax  # noqa: E402  (after XLA_FLAGS)

jax.config.update("jax_enable_x64", True)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


BLAS_THREADS = int(os.environ.get("Q2MM_BLAS_THREADS", "1"))
threadpool_limits(limits=BLAS_THREADS, user_api="blas")

_CACHE = Path(os.environ.get("Q2MM_JAX_CACHE", Path.home() / ".cache" / "q2mm" / "jax"))
try:
    _CACHE.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(_CACHE))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
except OSError:  # read-only home: run without the persistent cache
    pass

CACHE_DIR = _CACHE
