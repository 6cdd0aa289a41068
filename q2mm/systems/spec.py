"""What a training set is: its description (SystemSpec, the schema of ``conf/system/*.yaml``)
and the loaded result (TrainingSet).

A system is one YAML file; these dataclasses are its schema (Hydra validates a system file
against them while composing) and, converted with ``OmegaConf.to_object``, the object that
:func:`q2mm.systems.load_system` reads. A YAML states only what differs from the defaults here.
Paths: ``data_dir`` is absolute, relative to the data root, or ``package:NAME`` (shipped in
q2mm/data); every other path is relative to ``data_dir`` (or ``package:...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path

from omegaconf import MISSING

from q2mm.errors import ConfigurationError
from q2mm.model.forcefield import ForceField
from q2mm.model.molecule import Molecule
from q2mm.reference.observations import KINDS as OBSERVATION_KINDS
from q2mm.reference.observations import ObservationSettings, default_weights

PACKAGE_PREFIX = "package:"
# The QM atomic charges a system's ``charge`` kind can compare with, as the readers name them.
CHARGE_METHODS = {
    "esp": "ESP-fitted: Gaussian Pop=ChelpG/MK 'ESP charges', Jaguar 'Atomic charges from electrostatic "
    "potential' (.out) or r_j_ESP_Charges (.mae)",
    "mulliken": "Mulliken: Gaussian 'Mulliken charges', Jaguar 'Atomic charges from Mulliken population analysis' "
    "(.out) or r_j_Mulliken_Charges (.mae)",
}
DEFAULT_TEMPERATURE_K = 298.15


@dataclass
class StructureSpec:
    """One training structure, or a pattern covering several (see docs/own-system.md).

    ``geometry``: where atom types and bonds come from: a ``.mae`` (MacroModel type numbers
    through atom.typ, bonds with orders; one or many structures), a ``.mol2`` (MM3 type names),
    q2mm's own ``metadata.json`` (types, bonds, charge per named structure), or nothing: the QM
    file itself (bonds perceived, types guessed). ``qm``: the reference data: Jaguar ``.01.in``
    (&hess), Gaussian ``.log`` (archive Hessian) or ``.fchk``, ``.xyz`` with an ``.npy`` Hessian.
    Both may be globs; ``qm`` may name ``{stem}`` (the geometry file's stem), ``{title}``,
    ``{number}`` (the title's leading number) and ``{index}`` (1-based within the file).
    ``hessian`` / ``energy``: the ``.npy`` Hessian and a Hartree energy text file of an ``.xyz``
    (default ``{qm stem}-hessian.npy``; no energy file).
    """

    geometry: str | None = None
    qm: str | None = None
    hessian: str | None = None
    energy: str | None = None


# Weight per observation kind (score = sum (w (ref - calc))^2; 0 leaves a kind out). The
# defaults are q2mm.reference.observations.default_weights(), the one table of them.
ObservationWeights = make_dataclass(
    "ObservationWeights",
    [(kind, float, field(default=weight)) for kind, weight in default_weights().items()],
)
ObservationWeights.__module__ = __name__
ObservationWeights.__doc__ = (
    "Weight per observation kind (0 leaves the kind out); defaults: observations.default_weights()."
)


@dataclass
class SelectivitySpec:
    """Transition states grouped by the stereochemical outcome they lead to (no groups: none).

    ``groups`` maps a group name (e.g. 'DuPHOS pro-R') to its structures (titles or 1-based
    indices, as strings); the conformers of one outcome share a group. ``pairs`` are the
    (a, b) groups compared, each reported as E(b) - E(a); empty compares every pair of groups.
    Energies within a group are Boltzmann-combined at ``temperature`` (K).
    """

    groups: dict[str, list[str]] = field(default_factory=dict)
    pairs: list[list[str]] = field(default_factory=list)
    temperature: float = DEFAULT_TEMPERATURE_K

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigurationError(f"selectivity.temperature={self.temperature}: expected a temperature > 0 K")
        for pair in self.pairs:
            if len(pair) != 2 or any(name not in self.groups for name in pair):
                raise ConfigurationError(
                    f"selectivity pair {list(pair)}: expected two of the groups {sorted(self.groups)}"
                )
        empty = sorted(name for name, members in self.groups.items() if not members)
        if empty:
            raise ConfigurationError(f"selectivity group(s) {empty} name no structure")

    @property
    def compared(self) -> tuple[tuple[str, str], ...]:
        """The pairs compared: the given ones, else every pair of groups in their order."""
        if self.pairs:
            return tuple((str(a), str(b)) for a, b in self.pairs)
        names = list(self.groups)
        return tuple((a, b) for k, a in enumerate(names) for b in names[k + 1 :])


@dataclass
class SystemSpec:
    """One training set: its files, how its structures pair, how it is scored.

    ``atom_types``: a MacroModel atom.typ (default: ``atom.typ`` in ``data_dir`` when there is
    one). ``forcefield``: the ``.fld`` whose OPT substructures are fitted; ``base_forcefield``:
    the MM3* file a published substructure-only ``.fld`` is composed into. ``alternative_forcefields``:
    further start force fields (name -> path). ``reference``: the publication of a system whose
    data are not shipped; ``stand_in``: an open system to try when its data are missing.
    ``selectivity`` groups the transition states by stereochemical outcome (no groups: none).
    ``charges``: which QM atomic charges the ``charge`` kind compares with (CHARGE_METHODS).
    """

    name: str = MISSING
    data_dir: str = MISSING
    forcefield: str = MISSING
    structures: list[StructureSpec] = field(default_factory=list)
    atom_types: str | None = None
    weights: ObservationWeights = field(default_factory=ObservationWeights)  # type: ignore[valid-type]
    invert_ts_curvature: bool = True
    reference: str | None = None
    stand_in: str | None = None
    alternative_forcefields: dict[str, str] = field(default_factory=dict)
    base_forcefield: str | None = None
    selectivity: SelectivitySpec = field(default_factory=SelectivitySpec)
    charges: str = "esp"

    def __post_init__(self) -> None:
        if self.charges not in CHARGE_METHODS:
            raise ConfigurationError(
                f"system charges={self.charges!r}: expected one of {list(CHARGE_METHODS)} "
                + "("
                + "; ".join(f"{k}: {v}" for k, v in CHARGE_METHODS.items())
                + ")"
            )
        if self.selectivity.groups and not self.settings.needs_minimum:
            raise ConfigurationError(
                "selectivity groups compare the MM3* energies of minimized structures, but no observation "
                f"kind with a weight ({', '.join(self.settings.kinds) or 'none'}) minimizes them: give "
                "bond_length, bond_angle or torsion a weight under weights:, or remove selectivity"
            )

    @property
    def embedded(self) -> bool:
        """Shipped inside the package (``data_dir: package:NAME``): needs no data root."""
        return self.data_dir.startswith(PACKAGE_PREFIX)

    @property
    def settings(self) -> ObservationSettings:
        weights = self.weights if isinstance(self.weights, Mapping) else vars(self.weights)
        return observation_settings(weights, self.invert_ts_curvature)


def observation_settings(weights: Mapping[str, float | None], invert_ts_curvature: bool) -> ObservationSettings:
    """ObservationSettings from a weight per kind: kinds with a zero or null weight are left out."""
    unknown = set(weights) - set(OBSERVATION_KINDS)
    if unknown:
        raise ConfigurationError(f"unknown observation kinds {sorted(unknown)}; known: {list(OBSERVATION_KINDS)}")
    merged = {**default_weights(), **{k: (0.0 if v is None else float(v)) for k, v in weights.items()}}
    kinds = tuple(kind for kind in OBSERVATION_KINDS if merged[kind] > 0.0)
    return ObservationSettings(
        kinds=kinds,
        invert_ts_curvature=invert_ts_curvature,
        **{f"{kind}_weight": merged[kind] for kind in OBSERVATION_KINDS},
    )


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
