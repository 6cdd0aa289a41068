"""The enumerated options of a fit: the one place their allowed values are spelled.

Each is a ``StrEnum`` whose member *names* are the spellings accepted in YAML and on
the command line (OmegaConf looks Enum config values up by name), so a Hydra schema
typed with them rejects a bad value while composing; the members compare equal to
those strings, so code that reads ``options.jac == "fd"`` needs no change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from q2mm.errors import ConfigurationError

C = TypeVar("C", bound=StrEnum)


def parse_choice(kind: type[C], value: object, what: str) -> C:
    """``value`` as a member of ``kind``; ConfigurationError naming ``what`` and the choices otherwise."""
    try:
        return kind(str(value))
    except ValueError:
        raise ConfigurationError(f"unknown {what} {value!r}; choose from {', '.join(kind)}") from None


# Functional form: "nelder-mead" is a config spelling but not a Python identifier (values = names).
Method = StrEnum("Method", ["lbfgsb", "nelder-mead", "powell", "adam", "least-squares", "none"])
"""The minimizer (``optimizer.method``); ``none`` fits nothing: the runner scores the start
(the job of ``python -m q2mm.evaluate``) and :func:`q2mm.optimize.fit` refuses it."""

METHOD_ALIASES = {
    "l-bfgs-b": "lbfgsb",
    "neldermead": "nelder-mead",
    "least_squares": "least-squares",
    "trf": "least-squares",
}  # accepted by OptimizerOptions only


def parse_method(value: object) -> Method:
    """The optimizer method ``value`` names, an alias (``METHOD_ALIASES``) resolved."""
    method = str(value).lower()
    return parse_choice(Method, METHOD_ALIASES.get(method, method), "optimizer method")


class JacMode(StrEnum):
    """Where gradients come from (``optimizer.jac``): the ratio gate decides (auto), JaxLoss, or finite differences."""

    auto = "auto"
    jax = "jax"
    fd = "fd"


class OnRatioFail(StrEnum):
    """What a failed ratio gate does (``optimizer.on_ratio_fail``): fall back to finite differences, or stop."""

    fd = "fd"
    stop = "stop"


class ScopeName(StrEnum):
    """Which ``.fld`` values are fitted (``scope.name``); see q2mm.optimize.scope."""

    opt = "opt"
    opt_fc = "opt_fc"
    opt_valence = "opt_valence"
    explicit = "explicit"
    file = "file"


class StartName(StrEnum):
    """Where the active values start (``start.name``): the file as published, or a QFUERZA estimate."""

    published = "published"
    qfuerza = "qfuerza"


class XScale(StrEnum):
    """How least-squares scales its trust region (``optimizer.x_scale``): the unit box itself, or
    SciPy's column norms of the Jacobian."""

    unit = "unit"
    jac = "jac"


class LsqSolver(StrEnum):
    """How least-squares steps (``optimizer.lsq_solver``): q2mm's bounded Levenberg-Marquardt
    with an active set (``q2mm.optimize.lm``), or SciPy's trust-region reflective ``trf``."""

    lm = "lm"
    trf = "trf"
