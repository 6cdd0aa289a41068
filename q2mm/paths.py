"""Where q2mm finds data: the data root, the embedded package data and the Hydra configs.

q2mm runs from a checkout (editable install or PYTHONPATH) or from an installed wheel.
The configs live once, at the top of the repository (``conf/``, ``experiments/``); a wheel
ships them inside the package (``q2mm/conf``, ``q2mm/experiments``: the package-dir
mapping in setup.py), so each is found beside the package first, else in the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
PACKAGE_DATA = PACKAGE_DIR / "data"


def _shipped(name: str) -> Path:
    """``q2mm/<name>`` in an installed package, else ``<checkout>/<name>``."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PROJECT_ROOT / name


CONF_DIR = _shipped("conf")  # Hydra's primary config directory
EXPERIMENTS_DIR = _shipped("experiments")  # the experiment=NAME presets
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()  # False for an installed package


def work_dir() -> Path:
    """Where a run keeps project-level state by default (the MLflow store): the checkout, or
    the current directory for an installed package."""
    return PROJECT_ROOT if IN_CHECKOUT else Path.cwd()


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the shared data root, or None when there is none.

    Order: an explicit path, the ``Q2MM_DATA`` environment variable, then
    ``../shared/data`` beside the project checkout.
    """
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("Q2MM_DATA")
    if env:
        return Path(env).expanduser().resolve()
    beside = PROJECT_ROOT.parent / "shared" / "data"
    return beside if beside.is_dir() else None
