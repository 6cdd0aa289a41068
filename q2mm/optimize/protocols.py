"""What the driver needs from the layers below it, as structural protocols.

The driver never imports the engine or the objective: anything with these
shapes can be fitted (the real ``ObjectiveFunction``/``JaxLoss`` pair, or a
small synthetic problem in the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class KindResultLike(Protocol):
    """Agreement statistics of one observation kind."""

    @property
    def r2(self) -> float: ...


@runtime_checkable
class EvaluationLike(Protocol):
    """One reference evaluation: the score and per-kind statistics (read-only)."""

    @property
    def score(self) -> float: ...

    @property
    def by_kind(self) -> Mapping[str, KindResultLike]: ...


@runtime_checkable
class ObjectiveLike(Protocol):
    """The reference objective: active-parameter vector -> evaluation."""

    def __call__(self, p_active: np.ndarray) -> EvaluationLike: ...


@runtime_checkable
class LossLike(Protocol):
    """The differentiable surrogate of the score (``JaxLoss``)."""

    def value(self, p_active: np.ndarray) -> float: ...

    def value_and_grad(self, p_active: np.ndarray) -> tuple[float, np.ndarray]: ...


@runtime_checkable
class ParamRefLike(Protocol):
    """A parameter's identity in a ``.fld`` file: 1-based line, field 1..3."""

    line: int
    field: int
