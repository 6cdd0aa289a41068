"""Import this before any JAX computation: float64 everywhere, the persistent compile cache and
single-threaded BLAS.

The linear algebra here works on matrices of a few hundred rows (one structure's Hessian):
OpenBLAS threads (NumPy's and SciPy's, which JAX's CPU LAPACK kernels call) only fight XLA's
own threads for the cores. Measured on rh-enamide, 2 cores: JaxLoss value+grad 0.78 s ->
0.46 s, ObjectiveFunction 1.1-1.8 s -> 0.52 s. ``Q2MM_BLAS_THREADS`` sets another limit.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, so the limit below reaches it)
from threadpoolctl import threadpool_limits

jax.config.update("jax_enable_x64", True)

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
