"""One exception hierarchy for everything q2mm raises on purpose.

Catch :class:`Q2MMError` to handle any failure the tool reports knowingly; the
subclasses say which layer refused and why.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn


class Q2MMError(Exception):
    """Base class of every error q2mm raises deliberately."""


class InputFormatError(Q2MMError):
    """A file could not be read: names the file, the 1-based line and what was expected."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, expected: str, found: str | None = None):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = f"{self.path}:{line}" if line is not None else self.path
        msg = f"{where}: expected {expected}"
        if found is not None:
            msg += f", found {found!r}"
        super().__init__(msg)


class FieldOverflowError(Q2MMError):
    """A value does not fit the fixed-width field it must be written into."""


class UnknownAtomTypeError(Q2MMError):
    """An atom type is not known to atom.typ or to the standard MacroModel table."""


class ParameterAssignmentError(Q2MMError):
    """An interaction has no force-field parameter (names atoms and types)."""


class ConvergenceError(Q2MMError):
    """An iterative procedure (geometry minimization, TS search) did not converge."""


class DataNotFoundError(Q2MMError):
    """Input data (a training set, a data root) is not where the configuration says."""


class ConfigurationError(Q2MMError):
    """A configuration is inconsistent in a way the schema cannot express."""


class DivergenceError(Q2MMError):
    """An optimization produced a non-finite loss or gradient."""


class PatternSyntaxError(InputFormatError):
    """A ``.fld`` substructure pattern (`` 9`` line) that cannot be parsed.

    Raised by the pattern parser with only the pattern (``path`` '<pattern>'); the
    assignment re-raises it naming the ``.fld`` file and the pattern's line.
    """

    def __init__(self, problem: str, path: str | Path = "<pattern>", line: int | None = None):
        self.problem = problem
        super().__init__(path, line, "a substructure pattern of atom types, bonds, branches and ring closures", problem)


class StructureError(Q2MMError, ValueError):
    """A structure whose parts disagree: coordinates, Hessian or bonds for another number of
    atoms, or an element without a covalent radius (names the structure)."""


class ParameterLookupError(Q2MMError, KeyError):
    """A force-field lookup that names no parameter (a line without a row, a blank field, a
    parameter that is not active). A KeyError too, so lookups can still be tried."""

    def __str__(self) -> str:  # the message itself, not KeyError's quoted repr
        return str(self.args[0]) if self.args else ""


class ForceFieldWriteError(Q2MMError):
    """Refused to write a force field (e.g. over the file it was read from)."""


class OutputExistsError(Q2MMError):
    """An output file already exists: a fit never writes over an input or an earlier output."""


class UnknownAtomTypeInFileError(InputFormatError, UnknownAtomTypeError):
    """An atom type number in a structure file that no type table knows."""


class PairingError(InputFormatError):
    """A geometry file and a QM file that do not describe the same structure (names both)."""


class BenchError(Q2MMError):
    """A measurement could not be made (e.g. a compile probe process failed)."""


def exit_with_message(error: Q2MMError, code: int = 2) -> NoReturn:
    """End a command-line tool on a user's mistake: one ``error: ...`` line, no traceback."""
    sys.stderr.write(f"error: {error}\n")
    raise SystemExit(code)


class CheckpointError(Q2MMError):
    """A fit cannot resume: its checkpoint is missing, unreadable or belongs to another fit."""
