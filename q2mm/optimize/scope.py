"""Parameter scopes: which `.fld` values an optimization may change.

- ``opt``: the OPT substructure(s) plus standard rows marked OPT (bond dipoles stay fixed
  unless ``bond_dipoles``: a fit that scores the ``charge`` kind determines them);
- ``opt_fc``: only the force constants of that set;
- ``opt_valence``: that set without van der Waals parameters;
- ``explicit``: a given list of (line, field), anywhere in the file;
- ``file``: the (line, field) list of a Q2MM parameter file, each with the range it may take
  (``q2mm.io.params``).

Frozen parameters keep their file values and are still evaluated by the objective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from q2mm.errors import ConfigurationError
from q2mm.io.params import read_parameter_file
from q2mm.optimize.bounds import is_force_constant, is_vdw
from q2mm.optimize.choices import ScopeName, parse_choice

LISTED_SCOPES = (ScopeName.explicit, ScopeName.file)  # scopes that list their (line, field) pairs
UNRESTRICTED = (-math.inf, math.inf)


@dataclass(frozen=True)
class ScopeSpec:
    """A named scope; ``params`` lists (line, field) pairs for ``explicit`` and ``file``, ``ranges``
    (``file`` only) the (low, high) each may take; ``source`` names the parameter file;
    ``bond_dipoles`` adds the bond dipoles of a named set (they only matter when charges are scored)."""

    name: ScopeName = ScopeName.opt
    params: tuple[tuple[int, int], ...] = ()
    bond_dipoles: bool = False
    ranges: tuple[tuple[float, float], ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", parse_choice(ScopeName, self.name, "parameter scope"))
        if self.name in LISTED_SCOPES and not self.params:
            raise ConfigurationError(f"scope {self.name!r} needs a non-empty list of (line, field) pairs")
        if self.name not in LISTED_SCOPES and self.params:
            raise ConfigurationError(f"scope {self.name!r} takes no (line, field) list; use scope 'explicit'")
        if self.ranges and len(self.ranges) != len(self.params):
            raise ConfigurationError(
                f"scope {self.name!r}: {len(self.ranges)} ranges for {len(self.params)} parameters"
            )

    def label(self) -> str:
        if self.name == ScopeName.file:
            return f"file({Path(self.source).name}, {len(self.params)})"
        if self.name == ScopeName.explicit:
            return f"explicit({len(self.params)})"
        return str(self.name) + ("+dipoles" if self.bond_dipoles else "")

    def range_of(self, line: int, field_no: int) -> tuple[float, float]:
        """The (low, high) a listed parameter may take; unrestricted unless the scope's file says."""
        if not self.ranges:
            return UNRESTRICTED
        return self.ranges[self.params.index((line, field_no))]


def parameter_file_path(path: str | Path) -> Path:
    """Where ``scope.path`` points: ``~`` expanded, a relative path from the working directory."""
    return Path(path).expanduser()


def parameter_file_scope(path: str | Path) -> ScopeSpec:
    """The scope a Q2MM parameter file selects (``LINE FIELD [neg|pos|both|LOW HIGH]`` per line;
    ``~`` expanded, a relative path taken from the working directory)."""
    path = parameter_file_path(path)
    chosen = read_parameter_file(path)
    return ScopeSpec(
        ScopeName.file,
        tuple((c.line, c.field) for c in chosen),
        ranges=tuple((c.lower, c.upper) for c in chosen),
        source=str(path),
    )


@dataclass(frozen=True)
class ScopedParameters:
    """The active parameters of a scope, in file order, with their kind labels and file values."""

    refs: tuple[Any, ...]
    kinds: tuple[str, ...]
    values: tuple[float, ...]
    scope: ScopeSpec

    @property
    def ranges(self) -> tuple[tuple[float, float], ...]:
        """The (low, high) each active value may take besides its bounds (a parameter file's ranges)."""
        return tuple(self.scope.range_of(ref.line, ref.field) for ref in self.refs)


def resolve_scope(ff: Any, scope: ScopeSpec) -> ScopedParameters:
    """Resolve a scope against a ForceField (``q2mm.model.forcefield.ForceField``)."""
    if scope.name in LISTED_SCOPES:
        refs = _listed_refs(ff, scope)
    else:
        from q2mm.model.forcefield import DEFAULT_EXCLUDED_KINDS

        exclude = () if scope.bond_dipoles else DEFAULT_EXCLUDED_KINDS
        refs = tuple(ref for ref in ff.active_refs(exclude_kinds=exclude) if _keeps(scope.name, ff.kind(ref)[0]))
    if not refs:
        raise ConfigurationError(f"scope {scope.label()} selects no parameters of {ff.path}")
    kinds = tuple(ff.kind(ref)[0] for ref in refs)
    return ScopedParameters(refs, kinds, tuple(ff.value(ref) for ref in refs), scope)


def _keeps(scope_name: str, kind: str) -> bool:
    if scope_name == "opt_fc":
        return is_force_constant(kind)
    if scope_name == "opt_valence":
        return not is_vdw(kind)
    return True


def _listed_refs(ff: Any, scope: ScopeSpec) -> tuple[Any, ...]:
    from q2mm.model.forcefield import ParamRef

    where = scope.source if scope.name == ScopeName.file else "explicit scope"
    refs = []
    for line, field_no in scope.params:
        ref = ParamRef(int(line), int(field_no))
        try:
            ff.kind(ref)
            ff.value(ref)
        except KeyError as exc:
            raise ConfigurationError(f"{where}: {exc.args[0]}") from None
        if ref in refs:
            raise ConfigurationError(f"{where} lists line {line} field {field_no} twice")
        refs.append(ref)
    return tuple(sorted(refs))


def align_with_model(
    params: ScopedParameters, model_refs: Sequence[Any]
) -> tuple[list[int], ScopedParameters, tuple[Any, ...]]:
    """Indices into the engine's parameter vector for the scoped parameters it uses.

    Scoped parameters that no interaction of the training set uses cannot change
    the score; they are dropped and returned separately so the result can say so.
    Returns (indices into model.p0, the kept parameters, the unused refs).
    """
    position = {ref: i for i, ref in enumerate(model_refs)}
    keep = [i for i, ref in enumerate(params.refs) if ref in position]
    unused = tuple(ref for ref in params.refs if ref not in position)
    kept = ScopedParameters(
        tuple(params.refs[i] for i in keep),
        tuple(params.kinds[i] for i in keep),
        tuple(params.values[i] for i in keep),
        params.scope,
    )
    return [position[ref] for ref in kept.refs], kept, unused
