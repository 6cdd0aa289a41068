"""Real, small fitting problems for the driver tests (picklable: the fd pool ships them to workers).

A weighted linear least-squares fit with a known optimum, split into two
observation kinds, with a reference objective and a differentiable "loss"
that can be made to disagree with it (scaled, shifted, or non-finite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

KINDS = ("bond_k", "bond_k", "angle_k", "angle_theta0", "torsion_v2", "bond_r0")
TRUE_VALUES = np.array([4.0, 2.5, 0.6, 110.0, 1.5, 1.45])


@dataclass(frozen=True)
class KindResult:
    ref: np.ndarray
    calc: np.ndarray
    r2: float
    rmsd: float


@dataclass(frozen=True)
class Evaluation:
    """What the driver reads of a reference evaluation (``q2mm.optimize.protocols.EvaluationLike``)."""

    score: float
    by_kind: dict[str, KindResult]
    residuals: np.ndarray | None = None  # weighted, score = |r|^2 (None where not a sum of squares)
    all_converged: bool = True
    messages: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _stats(ref: np.ndarray, calc: np.ndarray) -> KindResult:
    residual = ref - calc
    ss_tot = float(np.sum((ref - ref.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / ss_tot
    return KindResult(ref, calc, r2, float(np.sqrt(np.mean(residual**2))))


@dataclass
class LinearFit:
    """score(p) = sum (w (ref - A p))^2; observations 0..m/2 are 'bond_length', the rest 'eig_diag'."""

    n_obs: int = 24
    seed: int = 7
    weight: float = 1.0
    matrix: np.ndarray = field(init=False)
    ref: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.matrix = rng.normal(size=(self.n_obs, TRUE_VALUES.size)) / np.abs(TRUE_VALUES)
        self.ref = self.matrix @ TRUE_VALUES

    def residual(self, p: np.ndarray) -> np.ndarray:
        return self.weight * (self.ref - self.matrix @ np.asarray(p, float))

    def score(self, p: np.ndarray) -> float:
        return float(np.sum(self.residual(p) ** 2))

    def gradient(self, p: np.ndarray) -> np.ndarray:
        return -2.0 * self.weight * self.matrix.T @ self.residual(p)


@dataclass
class ReferenceObjective:
    """The reference evaluation of a LinearFit, with per-kind R2."""

    fit: LinearFit
    calls: int = 0

    def __call__(self, p_active: np.ndarray) -> Evaluation:
        self.calls += 1
        calc = self.fit.matrix @ np.asarray(p_active, float)
        half = self.fit.n_obs // 2
        by_kind = {
            "bond_length": _stats(self.fit.ref[:half], calc[:half]),
            "eig_diag": _stats(self.fit.ref[half:], calc[half:]),
        }
        return Evaluation(self.fit.score(p_active), by_kind, self.fit.residual(p_active))


@dataclass(frozen=True)
class LossInfo:
    """What JaxLoss reports about its last evaluation's inner minimizations."""

    converged: np.ndarray


@dataclass
class SurrogateLoss:
    """A differentiable loss: scale * score(p - shift); NaN once p[nan_index] exceeds nan_above.

    Once p[unconverged_index] exceeds unconverged_above the loss reports unconverged inner
    minimizations (``last_info``) and a value ten times too low, as a failed minimization can.
    """

    fit: LinearFit
    scale: float = 1.0
    shift: np.ndarray | None = None
    nan_index: int | None = None
    nan_above: float = np.inf
    compile_seconds: float | None = 0.0
    unconverged_index: int | None = None
    unconverged_above: float = np.inf
    last_info: LossInfo | None = None
    n_unconverged: int = 0

    def _point(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, float)
        return p if self.shift is None else p - self.shift

    def _poisoned(self, p: np.ndarray) -> bool:
        return self.nan_index is not None and p[self.nan_index] > self.nan_above

    def value(self, p_active: np.ndarray) -> float:
        if self._poisoned(np.asarray(p_active)):
            return float("nan")
        failed = self.unconverged_index is not None and p_active[self.unconverged_index] > self.unconverged_above
        self.last_info = LossInfo(np.array([not failed]))
        self.n_unconverged += failed
        return self.scale * self.fit.score(self._point(p_active)) * (0.1 if failed else 1.0)

    def value_and_grad(self, p_active: np.ndarray) -> tuple[float, np.ndarray]:
        grad = self.scale * self.fit.gradient(self._point(p_active))
        return self.value(p_active), grad

    def residuals(self, p_active: np.ndarray) -> np.ndarray:
        """r with |r|^2 = value (the same poisoning and failures)."""
        value = self.value(p_active)
        r = self.fit.residual(self._point(p_active))
        return r * np.sqrt(value / float(r @ r)) if math.isfinite(value) and r @ r > 0 else r * value

    def compile(self, jacobian: bool = False, gradient: bool | None = None) -> float:
        return 0.0  # nothing to compile

    def residuals_and_jacobian(self, p_active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.residuals(p_active)
        return r, -np.sqrt(self.scale) * self.fit.weight * self.fit.matrix


def start_values(offset_fc: float = 1.15, offset_eq: float = 1.03) -> np.ndarray:
    """A start away from the optimum but with the optimum inside the default bounds."""
    factors = np.array([offset_fc, 1 / offset_fc, offset_fc, offset_eq, offset_fc, 1 / offset_eq])
    return TRUE_VALUES * factors


@dataclass(frozen=True)
class Ref:
    """A (line, field) parameter identity for problems without a .fld file."""

    line: int
    field: int


def refs() -> tuple[Ref, ...]:
    return tuple(Ref(100 + i, 1 + i % 3) for i in range(TRUE_VALUES.size))


@dataclass
class RecoveryObjective:
    """Recover known target values of real .fld parameters: score = sum ((p - target) / width)^2.

    Observations are grouped by parameter kind so per-kind R2 is meaningful.
    """

    target: np.ndarray
    width: np.ndarray
    kinds: tuple[str, ...]

    def __call__(self, p_active: np.ndarray) -> Evaluation:
        p = np.asarray(p_active, float)
        by_kind = {}
        for kind in sorted(set(self.kinds)):
            mask = np.array([k == kind for k in self.kinds])
            if mask.sum() >= 2 and np.ptp(self.target[mask]) > 0:
                by_kind[kind] = _stats(self.target[mask], p[mask])
        return Evaluation(float(np.sum(((p - self.target) / self.width) ** 2)), by_kind)


@dataclass
class RecoveryLoss:
    """The differentiable twin of RecoveryObjective (residuals (p - target) / width)."""

    objective: RecoveryObjective
    last_info: LossInfo | None = None
    compile_seconds: float | None = None

    def value(self, p_active: np.ndarray) -> float:
        return self.objective(p_active).score

    def residuals(self, p_active: np.ndarray) -> np.ndarray:
        return (np.asarray(p_active, float) - self.objective.target) / self.objective.width

    def compile(self, jacobian: bool = False, gradient: bool | None = None) -> float:
        return 0.0  # nothing to compile

    def residuals_and_jacobian(self, p_active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.residuals(p_active), np.diag(1.0 / self.objective.width)

    def value_and_grad(self, p_active: np.ndarray) -> tuple[float, np.ndarray]:
        p = np.asarray(p_active, float)
        o = self.objective
        return self.value(p), 2.0 * (p - o.target) / o.width**2


def _refuse_to_load() -> None:
    raise RuntimeError("this objective cannot be rebuilt in another process")


@dataclass
class HomeOnlyObjective:
    """Pickles, but cannot be rebuilt in a worker (as an objective holding process-local state)."""

    inner: ReferenceObjective

    def __call__(self, p_active: np.ndarray) -> Evaluation:
        return self.inner(p_active)

    def __reduce__(self):
        return (_refuse_to_load, ())
