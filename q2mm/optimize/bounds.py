"""Bounds of the active parameters and the unit-box scaling the optimizers see.

Each parameter gets a fractional interval around its starting value (force
constants +/- fc_fraction |v|, equilibrium values +/- eq_fraction |v|; bond
dipoles their whole sanity interval), intersected with physical sanity bounds
chosen by its kind and with the range a parameter file gives it. Inside the
optimizer a parameter is z = (p - lower) / (upper - lower), so every free
coordinate lives in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from q2mm.errors import ConfigurationError
from q2mm.model.termtable import CLASS_OF_KIND, ParamClass


def param_class(kind: str) -> ParamClass:
    """The bounds class of a parameter kind label (e.g. ``bond_k``, ``torsion_v2``, ``vdw_eps``),
    as the term table (``q2mm.model.termtable``) gives it."""
    try:
        return CLASS_OF_KIND[kind]
    except KeyError:
        known = ", ".join(sorted(CLASS_OF_KIND))
        raise ConfigurationError(f"no bounds rule for parameter kind {kind!r}; known kinds: {known}") from None


def is_force_constant(kind: str) -> bool:
    """True for force constants (bond/angle/torsion/out-of-plane/cross terms, vdW excluded)."""
    return param_class(kind) in (ParamClass.FORCE_CONSTANT, ParamClass.TORSION, ParamClass.CROSS_TERM)


def is_vdw(kind: str) -> bool:
    """True for van der Waals radii, well depths and vdW pair rows."""
    return kind.startswith("vdw")


@dataclass(frozen=True)
class BoundsOptions:
    """Fractional bound widths; ``min_halfwidth_*`` keep zero-valued parameters movable.

    A parameter whose fractional interval would be narrower than the floor
    (e.g. a torsion V started at 0.0) gets +/- the floor instead.
    """

    fc_fraction: float = 0.20
    eq_fraction: float = 0.05
    min_halfwidth_fc: float = 0.1
    min_halfwidth_eq: float = 0.01

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def parameter_bounds(
    values: np.ndarray,
    kinds: tuple[str, ...],
    options: BoundsOptions,
    names: tuple[str, ...] | None = None,
    ranges: Sequence[tuple[float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of each parameter: fractional interval within sanity bounds and
    within its ``ranges`` entry (a parameter file's allowed range; none: unrestricted).

    Raises ConfigurationError when a starting value lies outside its sanity interval or range.
    """
    lower = np.empty(len(values))
    upper = np.empty(len(values))
    for i, (value, kind) in enumerate(zip(values, kinds, strict=True)):
        cls = param_class(kind)
        low_s, high_s = cls.sanity
        name = names[i] if names else f"parameter {i}"
        if not (low_s <= value <= high_s):
            raise ConfigurationError(
                f"{name} ({kind}) starts at {value}, outside its sanity bounds [{low_s}, {high_s}]"
            )
        low_r, high_r = ranges[i] if ranges is not None else (-np.inf, np.inf)
        if not (low_r <= value <= high_r):
            raise ConfigurationError(
                f"{name} ({kind}) starts at {value}, outside the range [{low_r}, {high_r}] its parameter file gives"
            )
        half = _half_width(float(value), cls.rule, options)
        lower[i] = max(value - half, low_s, low_r)
        upper[i] = min(value + half, high_s, high_r)
    return lower, upper


def is_box_bound(kind: str, start: float, bound: float, options: BoundsOptions) -> bool:
    """Whether ``bound`` of a parameter started at ``start`` is its fractional interval's edge
    (the fit's trust box, which a wider fraction or a second fit from the result moves), not
    a sanity bound or a parameter file's range."""
    half = _half_width(float(start), param_class(kind).rule, options)
    return bool(np.isfinite(half) and np.isclose(abs(bound - start), half, rtol=1e-9, atol=1e-12))


def _half_width(value: float, rule: str, options: BoundsOptions) -> float:
    if rule == "span":
        return float("inf")  # the sanity interval bounds it
    if rule == "fc":
        return max(options.fc_fraction * abs(value), options.min_halfwidth_fc)
    return max(options.eq_fraction * abs(value), options.min_halfwidth_eq)


@dataclass(frozen=True)
class BoxScaling:
    """Maps parameters to the unit box and back; zero-width parameters stay fixed."""

    lower: np.ndarray
    upper: np.ndarray
    fixed_values: np.ndarray

    @classmethod
    def from_bounds(cls, lower: np.ndarray, upper: np.ndarray, start: np.ndarray) -> BoxScaling:
        return cls(np.asarray(lower, float), np.asarray(upper, float), np.asarray(start, float).copy())

    @property
    def width(self) -> np.ndarray:
        return self.upper - self.lower

    @property
    def free(self) -> np.ndarray:
        """Mask of parameters the optimizer moves (nonzero bound width)."""
        return self.width > 0

    def to_unit(self, p: np.ndarray) -> np.ndarray:
        """Free coordinates z in [0, 1] of a full active-parameter vector."""
        free = self.free
        return (np.asarray(p, float)[free] - self.lower[free]) / self.width[free]

    def to_params(self, z: np.ndarray) -> np.ndarray:
        """Full active-parameter vector of unit-box coordinates (fixed ones at their start)."""
        p = self.fixed_values.copy()
        free = self.free
        p[free] = self.lower[free] + np.asarray(z, float) * self.width[free]
        return p

    def grad_to_unit(self, grad_p: np.ndarray) -> np.ndarray:
        """Chain rule: dL/dz = dL/dp * width for the free parameters."""
        free = self.free
        return np.asarray(grad_p, float)[free] * self.width[free]
