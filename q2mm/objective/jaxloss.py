"""JaxLoss: the score as one jitted, pure-JAX float64 function with analytic gradients.

All structures are padded to one shape and vmapped, so a system compiles once (ahead of
time, ``compile_seconds``) and parameter changes never recompile. The minimized geometry
x*(p) comes from ``jax_newton`` (warm-started from the previous minimum; optionally, with
``chord_iterations`` > 0, first gradient-only steps on the previous minimum's Hessian; off by
default: measured slower on rh-enamide, 60 s vs 21-28 s warm value+grad) and is
differentiated implicitly (``make_implicit_minimum``: -H^+ d(grad E)/dp with rigid modes
and padded atoms projected out), never by unrolling the iterations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

import q2mm.jaxconfig  # noqa: F401  (float64, compile cache)
import jax
import jax.numpy as jnp

from q2mm.errors import ConfigurationError
from q2mm.model.molecule import Molecule
from q2mm.model.units import HARTREE_BOHR2_AMU_TO_CM1, KCAL_PER_MOL_A2_TO_HARTREE_BOHR2
from q2mm.objective.minimize import MinimizeOptions, jax_newton, jax_projector, make_implicit_minimum
from q2mm.objective.objective import check_model_matches
from q2mm.reference.eigenmatrix import EIGEN_SCORE_UNIT, eigenmatrix, mass_weighted_mm_hessian
from q2mm.reference.geometry import angle_values, bond_values, torsion_values, wrap_degrees
from q2mm.reference.observations import (ObservationSettings, StructureObservations, build_observations,
                                         missing_hessians)

# padded internal coordinates point at these ghost points appended to x (never degenerate)
GHOST = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [1.5, 1.0, 0.0], [2.4, 1.2, 0.9]]) - 100.0
FREQUENCY_PAD = 1e3  # Hartree/(Bohr^2 amu) given to rigid/padded modes so they sort last


@dataclass(frozen=True)
class LossInfo:
    """Diagnostics of the last evaluation: per structure convergence and per kind scores."""

    converged: np.ndarray
    iterations: np.ndarray
    max_gradient: np.ndarray
    kind_scores: dict[str, float]
    messages: list[str]


def _pad_rows(rows: list[np.ndarray], width: int, fill) -> np.ndarray:
    size = max([len(r) for r in rows] + [1])
    out = np.empty((len(rows), size, width) if width else (len(rows), size), dtype=np.asarray(fill).dtype)
    out[...] = fill
    for s, r in enumerate(rows):
        if len(r):
            out[s, : len(r)] = r
    return out


def _pack_geometry(obs: list[StructureObservations], n_max: int, settings: ObservationSettings) -> dict:
    data = {}
    for kind, attr, width in (("bond_length", "bonds", 2), ("bond_angle", "angles", 3), ("torsion", "torsions", 4)):
        idx = [getattr(o.internal, attr) for o in obs]
        data[kind] = {
            "idx": _pad_rows(idx, width, np.arange(n_max, n_max + width)),
            "ref": _pad_rows([o.geometry_ref[kind] for o in obs], 0, 0.0),
            "w": _pad_rows([np.full(len(i), settings.weight(kind) if settings.uses(kind) else 0.0) for i in idx], 0, 0.0),
        }
    return data


def _pad_square(mats: list[np.ndarray], size: int) -> np.ndarray:
    out = np.zeros((len(mats), size, size))
    for s, m in enumerate(mats):
        out[s, : m.shape[0], : m.shape[1]] = m
    return out


def _pack_eigen(obs: list[StructureObservations], d: int, settings: ObservationSettings) -> dict:
    def vec(o, attr):
        v = np.zeros(d)
        if o.eigen is not None:
            src = getattr(o.eigen, attr) if attr == "eigenvalues" else getattr(o, attr)
            v[: src.size] = src
        return v

    empty = np.zeros((0, 0))
    return {
        "basis": _pad_square([o.eigen.basis if o.eigen is not None else empty for o in obs], d),
        "ref": np.stack([vec(o, "eigenvalues") for o in obs]),
        "w": np.stack([vec(o, "eig_diag_weight") for o in obs]) * settings.uses("eig_diag"),
        "w_off": _pad_square([o.eig_offdiag_weight if o.eigen is not None else empty for o in obs], d)
        * settings.uses("eig_offdiag"),
    }


def _pack_frequency(obs: list[StructureObservations], d: int, settings: ObservationSettings) -> dict:
    refs = [o.frequency_ref if o.frequency_ref is not None else np.zeros(0) for o in obs]
    idx = [o.frequency_drop + np.arange(r.size) for o, r in zip(obs, refs)]
    return {"ref": _pad_rows(refs, 0, 0.0), "idx": _pad_rows(idx, 0, np.int64(d - 1)),
            "w": _pad_rows([np.full(r.size, settings.weight("frequency")) for r in refs], 0, 0.0)}


def _pack_energy(obs: list[StructureObservations], settings: ObservationSettings) -> dict:
    has = [o.energy_anchor is not None for o in obs]
    return {"anchor": np.array([o.energy_anchor if h else o.index for o, h in zip(obs, has)]),
            "ref": np.array([o.energy_ref if h else 0.0 for o, h in zip(obs, has)]),
            "w": np.array([settings.weight("energy") if h else 0.0 for h in has])}


def pack_observations(obs: list[StructureObservations], model, settings: ObservationSettings) -> dict:
    """Padded arrays (leading structure axis) of every reference value and weight."""
    mask = np.asarray(model.atom_mask, dtype=bool)
    n_max = mask.shape[1]
    masses = np.ones(mask.shape)
    for s, o in enumerate(obs):
        masses[s, : o.masses.size] = o.masses
    data = {"qm": np.asarray(model.coords, dtype=np.float64), "mask": mask, "masses": masses,
            "geometry": _pack_geometry(obs, n_max, settings),
            "eigen": _pack_eigen(obs, 3 * n_max, settings),
            "frequency": _pack_frequency(obs, 3 * n_max, settings),
            "energy": _pack_energy(obs, settings)}
    return jax.tree.map(jnp.asarray, data)


class JaxLoss:
    """Jitted score and analytic gradient over the active parameters (``active`` indexes model.p0)."""

    def __init__(self, model, molecules: list[Molecule], settings: ObservationSettings | None = None,
                 active=None, options: MinimizeOptions = MinimizeOptions(), warm_start: bool = True,
                 chord_iterations: int = 0):
        check_model_matches(model, molecules)
        self.settings = settings or ObservationSettings()
        missing = missing_hessians(molecules, self.settings)
        if missing:
            raise ConfigurationError(f"eigenmatrix/frequency observations need QM Hessians; missing for {missing}")
        self.model = model
        self.options = options
        self.warm_start = warm_start
        self.chord_iterations = int(chord_iterations)
        self.p0 = np.asarray(model.p0, dtype=np.float64)
        self.active = np.arange(self.p0.size) if active is None else np.asarray(active, dtype=np.int64)
        self.observations = build_observations(molecules, self.settings)
        self._data = pack_observations(self.observations, model, self.settings)
        self._qm = np.asarray(model.coords, dtype=np.float64)
        self._compiled = None
        self.reset_start()
        self.compile_seconds: float | None = None
        self.last_info: LossInfo | None = None

    # -- public API -----------------------------------------------------------------------
    def value(self, p_active) -> float:
        """The score at the active values (same compiled function as value_and_grad)."""
        return self.value_and_grad(p_active)[0]

    def value_and_grad(self, p_active) -> tuple[float, np.ndarray]:
        """Score and its gradient with respect to the active parameters."""
        p_active = jnp.asarray(np.asarray(p_active, dtype=np.float64))
        (score, aux), grad = self._run(p_active, self._x_start, self._h_start, self._use_chord)
        if self.warm_start and not bool(np.all(aux["converged"])):  # retry cold from the QM geometry
            (score, aux), grad = self._run(p_active, self._qm, self._h_start, np.zeros_like(self._use_chord))
        self._record(aux)
        return float(score), np.asarray(grad)

    def reset_start(self) -> None:
        """Start the next inner minimizations from the QM geometries again (no warm start)."""
        self._x_start = self._qm.copy()
        dof = self._qm.shape[1] * 3
        self._h_start = np.broadcast_to(np.eye(dof), (self._qm.shape[0], dof, dof)).copy()
        self._use_chord = np.zeros(self._qm.shape[0], dtype=bool)

    def compile(self) -> float:
        """Compile once (ahead of time) and return the seconds it took."""
        if self._compiled is None:
            start = time.perf_counter()
            fn = jax.jit(jax.value_and_grad(self._loss, has_aux=True))
            args = (jnp.asarray(self.p0[self.active]), jnp.asarray(self._qm), jnp.asarray(self._h_start),
                    jnp.asarray(self._use_chord), jnp.asarray(self.p0), jnp.asarray(self.active), self._data,
                    self.model.topology)
            self._compiled = fn.lower(*args).compile()
            self.compile_seconds = time.perf_counter() - start
        return self.compile_seconds

    # -- internals ------------------------------------------------------------------------
    def _run(self, p_active, x_start, h_start, use_chord):
        self.compile()
        return self._compiled(p_active, jnp.asarray(x_start), jnp.asarray(h_start), jnp.asarray(use_chord),
                              jnp.asarray(self.p0), jnp.asarray(self.active), self._data, self.model.topology)

    def _record(self, aux) -> None:
        conv = np.asarray(aux["converged"])
        x = np.asarray(aux["x"])
        if self.warm_start:  # converged minima (and their Hessians) seed the next call
            self._x_start = np.where(conv[:, None, None], x, self._qm)
            self._h_start = np.where(conv[:, None, None], np.asarray(aux["h"]), self._h_start)
            self._use_chord = conv.copy()
        messages = [f"structure {s} ({self.observations[s].title}): minimization not converged "
                    f"(max |g| {float(aux['gmax'][s]):.3e} kcal/mol/A after {int(aux['iterations'][s])} iterations)"
                    for s in np.flatnonzero(~conv)]
        self.last_info = LossInfo(conv, np.asarray(aux["iterations"]), np.asarray(aux["gmax"]),
                                  {k: float(v) for k, v in aux["kinds"].items()}, messages)

    def _loss(self, p_active, x_start, h_start, use_chord, p0, active, data, topology):
        p = p0.at[active].set(p_active)
        per = jax.vmap(self._structure, in_axes=(None, 0, 0, 0, 0, 0))
        kinds, x, conv, it, gmax, e_min, h = per(p, x_start, h_start, use_chord, _per_structure(data), topology)
        kinds = {k: jnp.sum(v) for k, v in kinds.items()}
        if self.settings.uses("energy"):
            e = data["energy"]
            calc = e_min - e_min[e["anchor"]]
            kinds["energy"] = jnp.sum((e["w"] * (e["ref"] - calc)) ** 2)
        score = sum(kinds.values())
        return score, {"kinds": kinds, "x": x, "h": h, "converged": conv, "iterations": it, "gmax": gmax}

    def _structure(self, p, x_start, h_start, use_chord, d, topo):
        energy = self.model.energy
        s = self.settings
        kinds = {}
        if s.uses("eig_diag") or s.uses("eig_offdiag"):
            kinds.update(_eigen_terms(energy, p, d, topo, s))
        if not s.needs_minimum:
            zero = jnp.zeros(())
            return kinds, x_start, jnp.array(True), jnp.array(0), zero, zero, h_start
        chord = jnp.where(use_chord, self.chord_iterations, 0)
        h0 = h_start if self.chord_iterations > 0 else None  # chord phase off: exact Newton only
        x_raw, _, gmax, it, conv, h_raw = jax_newton(energy, x_start, jax.lax.stop_gradient(p), topo, d["mask"],
                                                     self.options, h0=h0, chord_iterations=chord,
                                                     hessian_fn=getattr(self.model, "hessian", None))
        x = make_implicit_minimum(energy)(p, x_raw, h_raw, topo, d["mask"])
        kinds.update(_geometry_terms(x, d["geometry"], s))
        if s.uses("frequency"):
            kinds["frequency"] = _frequency_term(energy, p, x, d, topo)
        return kinds, x_raw, conv, it, gmax, energy(x, p, topo), h_raw


def _per_structure(data: dict) -> dict:
    """The data with the cross-structure energy block removed (it is used outside the vmap)."""
    return {k: v for k, v in data.items() if k != "energy"}


def _mode_curvatures(energy, p, x, directions, topo):
    """u^T H u for each row u (Cartesian, (Nmax, 3)) of ``directions`` by forward-over-forward
    differentiation: no Hessian is formed, and its p-gradient compiles far faster than the
    reverse pass through ``jax.hessian``."""
    def along(u):
        first = lambda t: jax.jvp(lambda s: energy(x + s * u, p, topo), (t,), (1.0,))[1]
        return jax.jvp(first, (0.0,), (1.0,))[1]

    return jax.vmap(along)(directions)


def _eigen_terms(energy, p, d, topo, s: ObservationSettings) -> dict:
    e = d["eigen"]
    x = d["qm"]
    out = {}
    if s.uses("eig_diag"):
        inv_sqrt_m = jnp.repeat(1.0 / jnp.sqrt(d["masses"]), 3)
        directions = (e["basis"] * inv_sqrt_m[:, None]).T.reshape(-1, *x.shape)
        diag = _mode_curvatures(energy, p, x, directions, topo) * KCAL_PER_MOL_A2_TO_HARTREE_BOHR2
        out["eig_diag"] = jnp.sum((e["w"] * EIGEN_SCORE_UNIT * (e["ref"] - diag)) ** 2)
    if s.uses("eig_offdiag"):
        n = x.size
        h = jax.hessian(energy)(x, p, topo).reshape(n, n)
        calc = eigenmatrix(h, d["masses"], e["basis"], xp=jnp)
        out["eig_offdiag"] = jnp.sum((e["w_off"] * EIGEN_SCORE_UNIT * calc) ** 2)
    return out


def _geometry_terms(x, g: dict, s: ObservationSettings) -> dict:
    xe = jnp.concatenate([x, jnp.asarray(GHOST)], axis=0)
    out = {}
    for kind, fn in (("bond_length", bond_values), ("bond_angle", angle_values), ("torsion", torsion_values)):
        if s.uses(kind):
            delta = g[kind]["ref"] - fn(xe, g[kind]["idx"], xp=jnp)
            if kind == "torsion":
                delta = wrap_degrees(delta, xp=jnp)
            out[kind] = jnp.sum((g[kind]["w"] * delta) ** 2)
    return out


def _frequency_term(energy, p, x, d, topo):
    n = x.size
    h = jax.hessian(energy)(x, p, topo).reshape(n, n)
    hmw = mass_weighted_mm_hessian(h, d["masses"], xp=jnp)
    # the rigid-body projector's own derivative contributes nothing to the eigenvalues
    proj = jax_projector(jax.lax.stop_gradient(x), d["mask"], weights=jnp.sqrt(d["masses"]))
    a = proj @ hmw @ proj + FREQUENCY_PAD * (jnp.eye(n, dtype=x.dtype) - proj)
    values = eigvalsh(0.5 * (a + a.T))[d["frequency"]["idx"]]
    freqs = jnp.sign(values) * jnp.sqrt(jnp.abs(values)) * HARTREE_BOHR2_AMU_TO_CM1
    f = d["frequency"]
    return jnp.sum((f["w"] * (f["ref"] - freqs)) ** 2)


@jax.custom_jvp
def eigvalsh(a):
    """Ascending eigenvalues of a symmetric matrix with a derivative that stays finite at
    degeneracies: dl_i = u_i^T dA u_i (jnp.linalg.eigvalsh's rule divides by l_i - l_j)."""
    return jnp.linalg.eigvalsh(a)


@eigvalsh.defjvp
def _eigvalsh_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    values, vectors = jnp.linalg.eigh(a)
    return values, jnp.einsum("ji,jk,ki->i", vectors, da, vectors)
