"""Reading a text input file, as every reader here does: strict UTF-8, and a file that cannot
be read or a byte that is not UTF-8 becomes an InputFormatError naming the file (and the
byte's 1-based line)."""

from __future__ import annotations

import os
from pathlib import Path

from q2mm.errors import InputFormatError


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """The text of ``path``; ``what`` names the file in the message ("a readable .fld file")."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFormatError(path, None, f"a readable {what}", str(exc)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFormatError(path, line, "UTF-8 text", f"byte {data[exc.start : exc.end]!r}") from exc
