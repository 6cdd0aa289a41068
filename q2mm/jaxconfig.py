"""Import this before any JAX computation: float64 everywhere and the persistent compile cache."""

from __future__ import annotations

import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

_CACHE = Path(os.environ.get("Q2MM_JAX_CACHE", Path.home() / ".cache" / "q2mm" / "jax"))
try:
    _CACHE.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(_CACHE))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
except OSError:  # read-only home: run without the persistent cache
    pass

CACHE_DIR = _CACHE
