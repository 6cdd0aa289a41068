"""Plain-text tables for the terminal (the sweep's closing table, ``q2mm.compare``)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Left-aligned fixed-width columns separated by two spaces, a dashed rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_width(rows: Sequence[Sequence[str]], header: Sequence[str]) -> int:
    """Characters in the widest line :func:`format_table` would print."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return sum(widths) + 2 * max(len(widths) - 1, 0)
