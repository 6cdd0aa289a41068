"""``python -m q2mm.check [overrides]``: can this system be fitted? Seconds, nothing compiled.

Takes the runner's overrides (``--config-dir DIR system=NAME``, ``data_root=``, ``scope=``,
``system.forcefield=...``), loads and pairs every structure, types and assigns MM3* parameters
exactly as a fit would, and prints per structure: atoms, charge, imaginary modes (TS or
minimum), where the QM data, types and bonds came from, how the pair aligned, the
substructures matched and every interaction left without parameters (with the atom types it
needs); then the active parameters and the observation counts per kind. Exit 0 only when the
system can be fitted (no missing parameters, at least one active parameter used by the
structures, observations to fit); 1 when it cannot; 2 on a user's mistake (one message).
Writes nothing: no output directory, no MLflow run.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hydra
from omegaconf import DictConfig

from q2mm.config import register_configs
from q2mm.errors import ConfigurationError, Q2MMError, exit_with_message
from q2mm.paths import CONF_DIR

register_configs()

# Hydra writes nothing for a check: no run directory of its own, no .hydra copy, no log file.
QUIET_HYDRA = (
    "hydra.run.dir=.",
    "hydra.output_subdir=null",
    "hydra/job_logging=disabled",
    "hydra/hydra_logging=disabled",
)


@dataclass
class CheckReport:
    """What :func:`check_training_set` found; ``fittable`` decides the exit status."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def fittable(self) -> bool:
        return not self.problems

    def text(self) -> str:
        verdict = "fittable: yes" if self.fittable else "fittable: NO\n" + "\n".join(f"  - {p}" for p in self.problems)
        return "\n".join(self.lines + [verdict])


def check_training_set(training_set: Any, scope: Any) -> CheckReport:
    """Assign every structure (missing parameters listed, not raised) and count what a fit would use."""
    from q2mm.compose import with_charge_parameters
    from q2mm.mm3.interactions import assign_parameters
    from q2mm.optimize.problem import scope_spec
    from q2mm.optimize.scope import resolve_scope
    from q2mm.reference.observations import build_observations

    ff = training_set.forcefield
    report = CheckReport()
    opt = [s for s in ff.substructures if s.opt]
    report.lines.append(
        f"system {training_set.name}: {len(training_set.molecules)} structures; force field "
        f"{training_set.forcefield_path} ({len(ff.substructures)} substructures, {len(opt)} OPT)"
    )
    used = set()
    for number, molecule in enumerate(training_set.molecules, start=1):
        assignment = assign_parameters(molecule, ff, allow_missing=True)
        used |= set(assignment.refs())
        report.lines += structure_lines(number, molecule, assignment, ff)
        if assignment.missing:
            report.problems.append(
                f"structure {number} ({molecule.title}): {len(assignment.missing)} interactions without parameters"
            )
    try:
        scoped = resolve_scope(ff, with_charge_parameters(scope_spec(scope), training_set.settings))
    except ConfigurationError as error:
        report.problems.append(str(error))
        return report
    active = [(ref, kind) for ref, kind in zip(scoped.refs, scoped.kinds) if ref in used]
    kinds = Counter(kind for _, kind in active)
    report.lines.append(
        f"active parameters ({scoped.scope.label()}): {len(active)} used by the structures, of "
        f"{len(scoped.refs)} in scope: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    )
    if not active:
        report.problems.append("no active parameter is used by any structure (mark a substructure or rows OPT)")
    counts = observation_counts(
        build_observations(list(training_set.molecules), training_set.settings), training_set.settings
    )
    report.lines.append(
        "observations: "
        + ", ".join(f"{kind} {n} (weight {training_set.settings.weight(kind):g})" for kind, n in counts.items())
    )
    if not any(counts.values()):
        report.problems.append("no observations to fit (all weights 0?)")
    return report


def structure_lines(number: int, molecule: Any, assignment: Any, ff: Any) -> list[str]:
    """The lines of one structure: identity, provenance, substructures, missing parameters."""
    props = molecule.properties
    n_imag = props.get("n_imaginary")
    state = "TS" if props.get("transition_state") else "minimum"
    modes = "" if n_imag is None else f" ({n_imag} imaginary mode{'s' if n_imag != 1 else ''})"
    lines = [f"{number:3d}  {molecule.title}: {molecule.n_atoms} atoms, charge {molecule.charge:+d}, {state}{modes}"]
    lines.append(f"       qm: {props.get('qm_source', molecule.source)}")
    lines.append(
        f"       types: {props.get('types_from', '?')}; bonds: {props.get('bonds_from', '?')} "
        f"({len(molecule.bonds)} bonds, {sum(1 for b in molecule.bonds if b.order == 0)} zero-order)"
    )
    sets = props.get("qm_charge_sets", {})
    if sets:
        chosen = f"; compared: {props['qm_charges_source']}" if "qm_charges" in props else ""
        lines.append(f"       QM charges: {', '.join(sorted(sets))}{chosen}")
    pairing = props.get("pairing")
    if pairing:
        frame = "rotated into the geometry file's frame" if pairing["rotated"] else "same frame"
        lines.append(f"       paired: RMSD {pairing['rmsd']:.4f} A after superposition, {frame}")
    subs = Counter(
        int(it.source.split()[1])
        for items in assignment.interactions.values()
        for it in items
        if it.source.startswith("substructure")
    )
    names = {s.number: s.name for s in ff.substructures}
    matched = "; ".join(f"#{k} {names.get(k, '?')} ({n} interactions)" for k, n in sorted(subs.items())) or "none"
    lines.append(f"       substructures matched: {matched}")
    if assignment.missing:
        lines.append(
            f"       without parameters ({len(assignment.missing)}): "
            + "; ".join(m.describe() for m in assignment.missing)
        )
        unmatched = [s for s in ff.substructures if s.opt and s.number not in subs]
        if unmatched:
            lines.append(f"       OPT substructures it does not match: {unmatched_patterns(unmatched)}")
    return lines


def unmatched_patterns(substructures: list[Any]) -> str:
    """Each OPT substructure a structure left unmatched, with its patterns: the bonds the geometry
    file must draw ('.' a zero-order bond, as a TS's forming bond)."""
    return "; ".join(f"#{s.number} {s.name} (pattern {' / '.join(s.patterns)})" for s in substructures) + (
        "; the pattern's atoms, types and bonds ('.' a zero-order bond) must all be in the geometry file"
    )


def observation_counts(observations: list[Any], settings: Any) -> dict[str, int]:
    """Scored entries (weight not 0) per enabled kind over all structures."""
    import numpy as np

    counts: dict[str, int] = {}
    for kind in settings.kinds:
        total = 0
        for obs in observations:
            if kind in ("eig_diag", "eig_offdiag"):
                weights = getattr(obs, f"{kind}_weight")
                total += 0 if weights is None else int(np.count_nonzero(weights))
            elif kind == "frequency":
                total += 0 if obs.frequency_ref is None else len(obs.frequency_ref)
            elif kind == "energy":
                total += int(obs.energy_ref is not None)
            elif kind == "charge":
                total += 0 if obs.charge_ref is None else obs.charge_ref.size
            else:
                total += len(obs.geometry_ref.get(kind, ()))
        counts[kind] = total
    return counts


def run_check(cfg: DictConfig) -> CheckReport:
    """Load the configured system and check it."""
    from q2mm.compose import scope_from_config
    from q2mm.config import check_config
    from q2mm.paths import data_root
    from q2mm.pipeline import system_spec
    from q2mm.systems import load_system

    check_config(cfg)
    spec = system_spec(cfg.system)
    training_set = load_system(spec, None if spec.embedded else data_root(cfg.data_root))
    return check_training_set(training_set, scope_from_config(cfg.scope))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    """Hydra task: print the check; exit 0 when fittable, 1 when not, 2 on a user's mistake."""
    try:
        report = run_check(cfg)
    except Q2MMError as error:
        exit_with_message(error)
    print(report.text())
    sys.stdout.flush()
    raise SystemExit(0 if report.fittable else 1)


def cli() -> None:
    """Console script ``q2mm-check``: the same as ``python -m q2mm.check``."""
    given = {arg.split("=", 1)[0] for arg in sys.argv[1:]}
    sys.argv += [o for o in QUIET_HYDRA if o.split("=", 1)[0] not in given]
    main()


if __name__ == "__main__":
    cli()
