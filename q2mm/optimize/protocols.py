"""What the driver needs from the layers below it, as structural protocols.

The driver never imports the engine or the objective: anything with these
shapes can be fitted (the real ``ObjectiveFunction``/``JaxLoss`` pair, or a
small synthetic problem in the tests). The driver reads its evaluators only
through these members (no ``hasattr``/``getattr``); mypy checks that the
real pair satisfies them where ``q2mm.compose`` builds a ``FitProblem``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class KindResultLike(Protocol):
    """Agreement statistics of one observation kind."""

    @property
    def r2(self) -> float: ...

    @property
    def rmsd(self) -> float: ...


@runtime_checkable
class EvaluationLike(Protocol):
    """One reference evaluation (``q2mm.objective.objective.Evaluation``), read-only: the score,
    per-kind statistics, whether every inner minimization converged, the weighted residuals
    (score = |r|^2; None where the score is no sum of squares), and what it reports:
    ``messages`` (problems, e.g. unconverged minimizations) and ``notes`` (e.g. minima held on
    a kink)."""

    @property
    def score(self) -> float: ...

    @property
    def by_kind(self) -> Mapping[str, KindResultLike]: ...

    @property
    def all_converged(self) -> bool: ...

    @property
    def residuals(self) -> np.ndarray | None: ...

    @property
    def messages(self) -> Sequence[str]: ...

    @property
    def notes(self) -> Sequence[str]: ...


@runtime_checkable
class ObjectiveLike(Protocol):
    """The reference objective: active-parameter vector -> evaluation."""

    def __call__(self, p_active: np.ndarray) -> EvaluationLike: ...


@runtime_checkable
class LossInfoLike(Protocol):
    """What a loss reports about its last evaluation: per structure, whether its inner
    minimization converged (``q2mm.objective.jaxloss.LossInfo``)."""

    @property
    def converged(self) -> np.ndarray: ...


@runtime_checkable
class LossLike(Protocol):
    """The differentiable surrogate of the score (``q2mm.objective.jaxloss.JaxLoss``): value and
    gradient, the weighted residual vector (|r|^2 = value) and its Jacobian (m, n_active) for
    least squares and identifiability, what its last evaluation reported (``last_info``, None
    before the first) and the seconds its ahead-of-time compile took (None if it did not)."""

    @property
    def last_info(self) -> LossInfoLike | None: ...

    @property
    def compile_seconds(self) -> float | None: ...

    def compile(self, jacobian: bool = False, gradient: bool | None = None) -> float:
        """Compile ahead of the first call (``jacobian``: the residual Jacobian too; ``gradient``
        False: scores without their gradient; default: unless ``jacobian``); seconds."""
        ...

    def value(self, p_active: np.ndarray) -> float: ...

    def value_and_grad(self, p_active: np.ndarray) -> tuple[float, np.ndarray]: ...

    def residuals(self, p_active: np.ndarray) -> np.ndarray: ...

    def residuals_and_jacobian(self, p_active: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class ParamRefLike(Protocol):
    """A parameter's identity in a ``.fld`` file: 1-based line, field 1..3."""

    line: int
    field: int
