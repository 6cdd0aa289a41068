"""What a training set is: its specification (SystemSpec) and the loaded result (TrainingSet)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from q2mm.errors import ConfigurationError
from q2mm.model.forcefield import ForceField
from q2mm.model.molecule import Molecule
from q2mm.reference.observations import KINDS as OBSERVATION_KINDS
from q2mm.reference.observations import ObservationSettings

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "eig_diag": 0.1,
    "eig_offdiag": 0.0,
    "bond_length": 10.0,
    "bond_angle": 5.0,
    "torsion": 1.0,
    "frequency": 0.0,
    "energy": 0.0,
})

DEFAULT_TEMPERATURE_K = 298.15


@dataclass(frozen=True)
class SelectivitySpec:
    """Transition states grouped by the stereochemical outcome they lead to.

    ``groups`` maps a group name (e.g. 'DuPHOS pro-R') to its structures (titles or 1-based
    indices, as strings); the conformers of one outcome share a group. ``pairs`` are the
    (a, b) groups compared, each reported as E(b) - E(a); empty compares every pair of groups.
    Energies within a group are Boltzmann-combined at ``temperature`` (K).
    """

    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pairs: tuple[tuple[str, str], ...] = ()
    temperature: float = DEFAULT_TEMPERATURE_K

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigurationError(f"selectivity.temperature={self.temperature}: expected a temperature > 0 K")
        for pair in self.pairs:
            if len(pair) != 2 or any(name not in self.groups for name in pair):
                raise ConfigurationError(f"selectivity pair {list(pair)}: expected two of the groups "
                                         f"{sorted(self.groups)}")
        empty = sorted(name for name, members in self.groups.items() if not members)
        if empty:
            raise ConfigurationError(f"selectivity group(s) {empty} name no structure")

    @property
    def compared(self) -> tuple[tuple[str, str], ...]:
        """The pairs compared: the given ones, else every pair of groups in their order."""
        if self.pairs:
            return tuple(self.pairs)
        names = list(self.groups)
        return tuple((a, b) for k, a in enumerate(names) for b in names[k + 1:])


LOADERS = ("embedded", "shared-sn2", "rh-enamide", "ethane", "supporting-info")


def observation_settings(weights: Mapping[str, float | None], invert_ts_curvature: bool) -> ObservationSettings:
    """ObservationSettings from a weight per kind: kinds with a zero or null weight are left out."""
    unknown = set(weights) - set(OBSERVATION_KINDS)
    if unknown:
        raise ConfigurationError(f"unknown observation kinds {sorted(unknown)}; known: {list(OBSERVATION_KINDS)}")
    merged = {**DEFAULT_WEIGHTS, **{k: (0.0 if v is None else float(v)) for k, v in weights.items()}}
    kinds = tuple(kind for kind in OBSERVATION_KINDS if merged[kind] > 0.0)
    return ObservationSettings(kinds=kinds, invert_ts_curvature=invert_ts_curvature,
                               **{f"{kind}_weight": merged[kind] for kind in OBSERVATION_KINDS})


@dataclass(frozen=True)
class SystemSpec:
    """One training set: which loader reads it, from where, and how it is scored.

    ``data_dir`` is relative to the data root (or to the package data for ``embedded``
    systems, or absolute); ``forcefield`` and ``structures`` are relative to ``data_dir``.
    ``alternative_forcefields`` are further start force fields (name -> relative path).
    ``reference`` is the paper that published an external system.
    ``selectivity`` groups the transition states by stereochemical outcome (None: no groups).
    """

    name: str
    loader: str
    data_dir: str
    forcefield: str
    structures: tuple[str, ...] = ()
    weights: Mapping[str, float | None] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    invert_ts_curvature: bool = True
    reference: str | None = None
    alternative_forcefields: Mapping[str, str] = field(default_factory=dict)
    base_forcefield: str | None = None
    selectivity: SelectivitySpec | None = None

    def __post_init__(self) -> None:
        if self.loader not in LOADERS:
            raise ValueError(f"{self.name}: unknown loader {self.loader!r}; known: {LOADERS}")

    @property
    def embedded(self) -> bool:
        return self.loader == "embedded"

    @property
    def settings(self) -> ObservationSettings:
        return observation_settings(self.weights, self.invert_ts_curvature)


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """A loaded system: structures with QM Hessians, the force field to fit, scoring settings.

    ``alternative_forcefields`` maps a start name (e.g. ``'start'``) to another ``.fld`` path
    that can replace ``forcefield_path`` as the starting point.
    """

    name: str
    molecules: tuple[Molecule, ...]
    forcefield_path: Path
    forcefield: ForceField
    settings: ObservationSettings
    alternative_forcefields: Mapping[str, Path] = field(default_factory=dict)
    spec: SystemSpec | None = None

    @property
    def transition_states(self) -> tuple[Molecule, ...]:
        return tuple(m for m in self.molecules if m.properties.get("transition_state"))
