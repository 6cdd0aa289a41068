"""Q2MM parameter files: which ``.fld`` values a fit changes, one per line, with an optional range.

The format Q2MM's ``parameters.py -pf FILE`` reads (its ``loop.in`` ``PARM FILE`` step)::

    1858 1          # r0 of the bond on .fld line 1858 (field 1 = r0 / theta0 / V1)
    1858 2          # its force constant (field 2 = k / V2; field 3 = bond dipole / V3)
    1891 1 neg      # V1 kept <= 0
    1892 3 pos      # V3 kept >= 0
    1892 1 both     # no sign restriction
    1985 2 -1. 1.   # V2 kept in [-1, 1]
    1861 2 0.0 inf  # kept >= 0

Everything after ``#`` or ``!`` is a comment. A range restricts the value the fit may reach; q2mm
intersects it with the parameter's own bounds (``optimizer.bounds``, the sanity interval of its
kind), so ``both`` or ``-inf inf`` leaves those bounds as they are.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from q2mm.errors import InputFormatError
from q2mm.io.text import read_text

LINE_FORMAT = "LINE FIELD [neg|pos|both|LOW HIGH]"  # one line of the file, as messages and q2mm.fld write it
SIGN_RANGES = {"neg": (-math.inf, 0.0), "pos": (0.0, math.inf), "both": (-math.inf, math.inf)}
LINE_SHAPE = "'LINE FIELD' with FIELD 1..3, then optionally neg, pos, both or 'LOW HIGH'"


@dataclass(frozen=True)
class ChosenParameter:
    """One value a parameter file selects: its ``.fld`` line and field, and the range it may take."""

    line: int
    field: int
    lower: float = -math.inf
    upper: float = math.inf


def read_parameter_file(path: str | os.PathLike[str]) -> tuple[ChosenParameter, ...]:
    """The parameters a Q2MM parameter file selects, in file order (each (line, field) once)."""
    chosen: list[ChosenParameter] = []
    seen: dict[tuple[int, int], int] = {}
    for number, raw in enumerate(read_text(path, "Q2MM parameter file").splitlines(), start=1):
        words = raw.partition("#")[0].partition("!")[0].split()
        if not words:
            continue
        choice = _parse_line(path, number, words)
        key = (choice.line, choice.field)
        if key in seen:
            raise InputFormatError(
                path, number, "each LINE FIELD once", f"{choice.line} {choice.field} again (first on line {seen[key]})"
            )
        seen[key] = number
        chosen.append(choice)
    if not chosen:
        raise InputFormatError(path, None, f"at least one parameter line ({LINE_SHAPE})", "none")
    return tuple(chosen)


def _parse_line(path: str | os.PathLike[str], number: int, words: list[str]) -> ChosenParameter:
    text = " ".join(words)
    try:
        line, field = int(words[0]), int(words[1])
    except (IndexError, ValueError):
        raise InputFormatError(path, number, LINE_SHAPE, text) from None
    if line < 1 or field not in (1, 2, 3):
        raise InputFormatError(path, number, LINE_SHAPE, text)
    rest = words[2:]
    if not rest:
        return ChosenParameter(line, field)
    if len(rest) == 1 and rest[0].lower() in SIGN_RANGES:
        return ChosenParameter(line, field, *SIGN_RANGES[rest[0].lower()])
    try:
        lower, upper = (float(word) for word in rest)
    except ValueError:
        raise InputFormatError(path, number, LINE_SHAPE, text) from None
    if math.isnan(lower) or math.isnan(upper) or lower > upper:
        raise InputFormatError(path, number, "a range LOW HIGH with LOW <= HIGH", text)
    return ChosenParameter(line, field, lower, upper)
