"""The reference objective: a plain, step-by-step evaluation of the score for one parameter vector.

For each structure: the engine's MM Hessian at the QM geometry gives the eigenmatrix; the MM
structure minimized (``newton_minimize``, tight gtol) from the QM geometry gives the geometry,
frequency and energy observations; the engine's atomic charges (parameters only) the charge
observations. The rows of every kind follow ``residual_layout``, as JaxLoss's do. Nothing
here differentiates the loss; engine energies, gradients and Hessians are reused. Every failure is reported in ``Evaluation.messages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

import q2mm.jaxconfig  # noqa: F401  (float64, compile cache)
from q2mm.errors import ConfigurationError
from q2mm.mm3.minimize import Kinks, MinimizeOptions, MinimizeResult, newton_minimize
from q2mm.model.molecule import Molecule
from q2mm.model.units import KCAL_PER_MOL_A2_TO_HARTREE_BOHR2
from q2mm.objective.contract import Engine
from q2mm.objective.shared import EngineEvaluation, map_structures
from q2mm.reference import stats, vibrations
from q2mm.reference.eigenmatrix import EIGEN_SCORE_UNIT, eigenmatrix
from q2mm.reference.geometry import angle_values, bond_values, torsion_values
from q2mm.reference.observations import (
    PERIODIC_KINDS,
    ObservationSettings,
    StructureObservations,
    build_observations,
    check_reference_data,
    residual_layout,
)

COORD_TOLERANCE = 1e-6  # Angstrom: the model's input geometry must be the QM geometry


@dataclass(frozen=True)
class KindResult:
    """One observation kind over all structures: per-entry arrays and its statistics."""

    ref: np.ndarray
    calc: np.ndarray
    weight: np.ndarray
    structure: np.ndarray
    r2: float
    rmsd: float

    @property
    def score(self) -> float:
        res = stats.residuals(self.ref, self.calc, periodic=False)
        return float(np.sum((self.weight * res) ** 2))


@dataclass(frozen=True)
class Evaluation:
    """Score and its parts for one parameter vector; ``converged`` per structure.

    ``messages`` report problems (a minimization that did not converge, a non-finite score);
    ``notes`` what is worth knowing about a sound evaluation (a minimum on a kink).
    """

    score: float
    by_kind: dict[str, KindResult]
    converged: np.ndarray
    messages: list[str]
    minima: list[np.ndarray | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. minima held on the vdW softcut kink
    energies: list[float | None] = field(default_factory=list)  # MM3* energy of each minimum, kcal/mol

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))

    @property
    def residuals(self) -> np.ndarray:
        """Weighted residuals w (ref - calc), score = |r|^2: by kind (KINDS order), then
        structure, then entry (torsions wrapped); ``JaxLoss.residuals`` lists the same rows."""
        return np.concatenate([np.zeros(0)] + [r.weight * (r.ref - r.calc) for r in self.by_kind.values()])

    @property
    def residual_kinds(self) -> np.ndarray:
        """The observation kind of each row of ``residuals``."""
        return np.array([k for k, r in self.by_kind.items() for _ in range(r.ref.size)], dtype=object)


def check_model_matches(model: Engine, molecules: list[Molecule], settings: ObservationSettings | None = None) -> None:
    """Refuse a model whose structures are not the molecules (count, atoms, QM geometry), or
    that cannot give what ``settings`` scores (atomic charges)."""
    if settings is not None and settings.uses("charge") and not model.has_charges:
        raise ConfigurationError(f"the charge observation kind needs a model with atomic charges (MM3*), not {model!r}")
    coords = np.asarray(model.coords)
    if coords.shape[0] != len(molecules):
        raise ConfigurationError(f"model has {coords.shape[0]} structures, molecules {len(molecules)}")
    for s, mol in enumerate(molecules):
        n = int(np.sum(np.asarray(model.atom_mask)[s]))
        if n != mol.n_atoms or np.max(np.abs(coords[s, :n] - mol.coords)) > COORD_TOLERANCE:
            raise ConfigurationError(f"structure {s} ({mol.title}): model geometry is not the QM geometry")


def prepare(
    model: Engine, molecules: list[Molecule], settings: ObservationSettings | None, active
) -> tuple[ObservationSettings, np.ndarray, np.ndarray, list[StructureObservations]]:
    """What both objectives start from, checked: the settings (default ``ObservationSettings()``),
    p0, the active indices into it (all when None) and each structure's observations."""
    settings = settings or ObservationSettings()
    check_model_matches(model, molecules, settings)
    check_reference_data(molecules, settings)
    p0 = np.asarray(model.p0, dtype=np.float64)
    indices = np.arange(p0.size) if active is None else np.asarray(active, dtype=np.int64)
    return settings, p0, indices, build_observations(molecules, settings)


def full_parameters(p0: np.ndarray, active: np.ndarray, p_active) -> np.ndarray:
    """The full parameter vector with the active entries replaced."""
    p = np.array(p0, dtype=np.float64)
    values = np.asarray(p_active, dtype=np.float64)
    if values.shape != active.shape:
        raise ValueError(f"expected {active.size} active parameters, got shape {values.shape}")
    p[active] = values
    return p


class ObjectiveFunction:
    """score(p_active) = sum (w (ref - calc))^2 over the enabled observation kinds.

    ``active`` indexes ``model.p0`` (all parameters when None). Call with the active values.
    ``engine_in_minimizer``: the engine's energy, gradient and Hessian at each Newton step come
    from the minimizer program a JaxLoss on the same model compiles where it minimizes in one
    loop (``shared.EngineEvaluation``; a fit problem's pair then compiles the engine's Hessian
    once, ``q2mm.compose``), else from the engine's own smaller program.
    """

    def __init__(
        self,
        model: Engine,
        molecules: list[Molecule],
        settings: ObservationSettings | None = None,
        active=None,
        options: MinimizeOptions = MinimizeOptions(),
        engine_in_minimizer: bool = False,
    ):
        self.settings, self.p0, self.active, self.observations = prepare(model, molecules, settings, active)
        self.model = model
        self.molecules = molecules
        self.options = options
        self.layout = residual_layout(self.observations, self.settings)
        self._charges = jax.jit(model.atom_charges) if self.settings.uses("charge") else None
        # the engine's energy, gradient and Hessian from the program shared with JaxLoss (q2mm.objective.shared)
        self.engine_in_minimizer = engine_in_minimizer
        self._engine = EngineEvaluation(model, options, engine_in_minimizer)
        self._masks = jnp.asarray(np.asarray(model.atom_mask, dtype=bool))
        # per structure, once: the topology slice and the kink pairs among the real atoms
        self._topologies = [structure_slice(model.topology, s) for s in range(len(molecules))]
        self._kinks = [self._real_kinks(s, mol.n_atoms) for s, mol in enumerate(molecules)]

    def full_parameters(self, p_active) -> np.ndarray:
        return full_parameters(self.p0, self.active, p_active)

    def __call__(self, p_active) -> Evaluation:
        p = jnp.asarray(self.full_parameters(p_active))
        parts, minima, converged, messages, energies, notes = [], [], [], [], [], []
        found = map_structures(lambda s: self._structure(s, self.observations[s], p), len(self.observations))
        for s, (obs, (part, result)) in enumerate(zip(self.observations, found)):
            parts.append(part)
            minima.append(None if result is None else result.x)
            energies.append(None if result is None else result.energy)
            converged.append(True if result is None else result.converged)
            if result is not None and not result.converged:
                messages.append(f"structure {s} ({obs.title}): minimization {result.message}")
            elif result is not None and result.pinned:
                notes.append(f"structure {s} ({obs.title}): minimization {result.message}")
        if self.settings.uses("energy"):
            parts.append(self._energy_part(energies))
        by_kind = _collect(parts, self.layout)
        score = _score(by_kind)
        if not np.isfinite(score):
            messages.append(f"non-finite score {score}")
        return Evaluation(score, by_kind, np.array(converged), messages, minima, notes, energies)

    # -- one structure ------------------------------------------------------------------
    def _egh_real(self, s: int, p, n: int):
        topo = self._topologies[s]
        template = np.array(self.model.coords[s], dtype=np.float64)

        def egh(x_real: np.ndarray):
            padded = template.copy()
            padded[:n] = x_real
            x = jnp.asarray(padded)
            e, g, h = self._engine(x, p, topo, self._masks[s])
            h = np.asarray(h).reshape(x.size, x.size)[: 3 * n, : 3 * n]
            return float(e), np.asarray(g)[:n].reshape(-1), h

        return egh

    def _real_kinks(self, s: int, n: int) -> Kinks | None:
        """The structure's kink pairs among its real atoms (None if the model has none)."""
        kinks = self.model.kinks(self._topologies[s])
        if kinks is None:
            return None
        pairs = np.asarray(kinks.pairs)[np.asarray(kinks.mask, dtype=bool)]
        pairs = pairs[(pairs < n).all(axis=1)]
        return Kinks(pairs, np.ones(len(pairs), dtype=bool), kinks.distance)

    def _structure(self, s: int, obs: StructureObservations, p) -> tuple[list, MinimizeResult | None]:
        mol = self.molecules[s]
        egh = self._egh_real(s, p, mol.n_atoms)
        part: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        if self._charges is not None and obs.charge_ref is not None:
            calc = np.asarray(self._charges(p, self._topologies[s]))[: mol.n_atoms]
            part.append(("charge", obs.charge_ref, calc, np.full(calc.size, self.settings.weight("charge"))))
        if obs.eigen is not None and (self.settings.uses("eig_diag") or self.settings.uses("eig_offdiag")):
            part += _eigen_entries(obs, egh(mol.coords)[2], self.settings)
        if not self.settings.needs_minimum:
            return [(k, r, c, w, s) for k, r, c, w in part], None
        result = newton_minimize(egh, mol.coords, self.options, self._kinks[s])
        part += _geometry_entries(obs, result.x, self.settings)
        if self.settings.uses("frequency") and obs.frequency_ref is not None:
            part.append(_frequency_entries(obs, egh(result.x)[2], result.x, self.settings))
        return [(k, r, c, w, s) for k, r, c, w in part], result

    def _energy_part(self, energies: list[float | None]) -> list:
        rows = []
        for s, obs in enumerate(self.observations):
            if obs.energy_anchor is None:
                continue
            e, anchor = energies[s], energies[obs.energy_anchor]
            assert e is not None and anchor is not None  # scoring energies minimizes every structure
            calc = e - anchor
            rows.append(
                ("energy", np.array([obs.energy_ref]), np.array([calc]), np.array([self.settings.weight("energy")]), s)
            )
        return rows


def structure_slice(tree, s: int):
    """Structure ``s`` of every padded array in ``tree`` (leading structure axis), sliced in
    NumPy: indexing a JAX array compiles a small program per array shape (about 1 s of a
    cold start over a topology)."""
    return jax.tree.map(lambda a: jnp.asarray(np.asarray(a)[s]), tree)


def _eigen_entries(obs: StructureObservations, hess_kcal: np.ndarray, settings: ObservationSettings) -> list:
    assert obs.eigen is not None  # the caller scores eigenmatrices of structures that have them
    calc = eigenmatrix(hess_kcal, obs.masses, obs.eigen.basis) * EIGEN_SCORE_UNIT
    out = []
    if settings.uses("eig_diag"):
        out.append(("eig_diag", obs.eigen.eigenvalues * EIGEN_SCORE_UNIT, np.diag(calc), obs.eig_diag_weight))
    if settings.uses("eig_offdiag"):
        iu = np.triu_indices(calc.shape[0], k=1)
        assert obs.eig_offdiag_weight is not None  # set wherever eig_offdiag is scored
        out.append(("eig_offdiag", np.zeros(iu[0].size), calc[iu], obs.eig_offdiag_weight[iu]))
    return out


def _geometry_entries(obs: StructureObservations, x: np.ndarray, settings: ObservationSettings) -> list:
    measure = {
        "bond_length": (bond_values, obs.internal.bonds),
        "bond_angle": (angle_values, obs.internal.angles),
        "torsion": (torsion_values, obs.internal.torsions),
    }
    out = []
    for kind, (fn, idx) in measure.items():
        if settings.uses(kind) and len(idx):
            ref = obs.geometry_ref[kind]
            out.append((kind, ref, fn(x, idx), np.full(ref.size, obs.geometry_weight[kind])))
    return out


def _frequency_entries(
    obs: StructureObservations, hess_kcal: np.ndarray, x: np.ndarray, settings: ObservationSettings
) -> tuple:
    freqs = vibrations.frequencies(hess_kcal * KCAL_PER_MOL_A2_TO_HARTREE_BOHR2, obs.masses, coords=x)
    ref = obs.frequency_ref
    assert ref is not None  # the caller scores frequencies of structures that have them
    calc = freqs[obs.frequency_drop : obs.frequency_drop + ref.size]
    return ("frequency", ref, calc, np.full(ref.size, settings.weight("frequency")))


def _collect(parts: list[list], layout: dict[str, list[np.ndarray]]) -> dict[str, KindResult]:
    """Per kind, in the order of ``residual_layout``: entries of every structure and their
    statistics. A structure whose entries differ from the layout is a bug, never data."""
    rows: dict[str, list] = {}
    for part in parts:
        for kind, ref, calc, weight, s in part:
            rows.setdefault(kind, []).append((ref, calc, weight, np.full(np.size(ref), s)))
    out = {}
    for kind, per_structure in layout.items():
        expected = [s for s, entries in enumerate(per_structure) for _ in entries]
        found = [int(s) for *_, struct in rows.get(kind, []) for s in struct]
        if found != expected:
            raise RuntimeError(f"{kind}: entries per structure {found} differ from the residual layout {expected}")
        if kind not in rows:
            continue
        ref, calc, weight, struct = (np.concatenate(col) for col in zip(*rows[kind]))
        periodic = kind in PERIODIC_KINDS
        if periodic:  # store calc as the value nearest ref, so ref - calc is the wrapped residual
            calc = ref - stats.residuals(ref, calc, periodic=True)
        out[kind] = KindResult(
            ref,
            calc,
            weight,
            struct,
            stats.r_squared(ref, calc, weight, periodic),
            stats.rmsd(ref, calc, weight, periodic),
        )
    return out


def _score(by_kind: dict[str, KindResult]) -> float:
    return float(sum(r.score for r in by_kind.values()))
