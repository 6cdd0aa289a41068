"""Where q2mm finds data: the data root and the embedded package data."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


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
