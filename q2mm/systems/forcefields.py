"""Force fields of a system: a complete MacroModel ``.fld``, or a published file that holds only
substructure blocks, composed with a base MM3* file.

A published file without a ``-1`` function table is a set of substructure blocks; it is
composed with the base force field by inserting its blocks after the base's last ``-3``
line. Only the published substructures are fitted: an ``OPT`` mark left on a base
substructure name line is dropped in the composed file. The composed file is written once
to a cache (named by its content hash), never over an input.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from q2mm.errors import DataNotFoundError, InputFormatError

COMPOSED_CACHE = Path.home() / ".cache" / "q2mm" / "composed"


def is_complete_forcefield(text: str) -> bool:
    """A complete MacroModel .fld has a ``-1`` function table."""
    return any(line.startswith("-1") for line in text.splitlines())


def unmark_opt(line: str) -> str:
    """A substructure name line without its trailing OPT mark (other lines unchanged)."""
    if line.startswith(" C") and line.rstrip().endswith(" OPT"):
        return line.rstrip()[: -len(" OPT")]
    return line


def compose_text(base: str, published: str, published_path: Path) -> str:
    """Base force field text with the published substructure blocks after its last ``-3``."""
    lines = published.splitlines()
    if not any(line.startswith(" C") and line.rstrip().endswith("OPT") for line in lines):
        raise InputFormatError(published_path, None, "a substructure name line ending in OPT")
    start = next(k for k, line in enumerate(lines) if line.startswith(" C"))  # every published block
    blocks = lines[start:]
    if not any(line.startswith("-3") for line in blocks):
        blocks.append("-3")
    base_lines = [unmark_opt(line) for line in base.splitlines()]
    last_end = max((k for k, line in enumerate(base_lines) if line.startswith("-3")), default=None)
    if last_end is None:
        raise InputFormatError("base force field", None, "a '-3' line ending the substructure section")
    return "\n".join(base_lines[: last_end + 1] + blocks + base_lines[last_end + 1 :]) + "\n"


def composed_forcefield(name: str, published_path: Path, base_path: Path, cache: Path = COMPOSED_CACHE) -> Path:
    """The force field to fit: the published file itself, or it composed with the base file."""
    published = published_path.read_text()
    if is_complete_forcefield(published):
        return published_path
    if not base_path.is_file():
        raise DataNotFoundError(
            f"{published_path} is a set of substructure blocks without a -1 function table; "
            f"the base force field it is composed with, {base_path}, is missing "
            "(set base_forcefield in the system file)"
        )
    text = compose_text(base_path.read_text(), published, published_path)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{name}-{digest}.fld"
    if not target.is_file():
        target.write_text(text)
    return target
