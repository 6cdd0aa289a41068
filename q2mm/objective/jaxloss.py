"""JaxLoss: the score as jitted, pure-JAX float64 functions with analytic gradients.

Structures are padded to one shape, so a system compiles its per-structure functions once
(ahead of time, ``compile_seconds``) and parameter changes never recompile. They minimize a
structure from the QM geometry (``jax_newton``, stopping as soon as that structure
converges), differentiate the minimum implicitly
(``make_implicit_minimum``: -H^+ d(grad E)/dp with rigid modes and padded atoms projected out,
never by unrolling iterations) and take the eigenmatrix from the engine's assembled Hessian at
the QM geometry; its parameter gradient contracts the score's cotangent with the Hessian
(``MM3Model.hessian_dot``), so no third derivative of the geometry is ever compiled.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import q2mm.jaxconfig  # noqa: F401  (float64, compile cache)
from q2mm.errors import ConfigurationError
from q2mm.jaxconfig import usable_cpus
from q2mm.mm3.minimize import (
    Kinks,
    MinimizeOptions,
    TrustRegion,
    jax_projector,
    make_implicit_minimum,
    make_implicit_minimum_jvp,
    stepwise_newton,
    trust_region_start,
)
from q2mm.model.molecule import Molecule
from q2mm.model.units import HARTREE_BOHR2_AMU_TO_CM1, KCAL_PER_MOL_A2_TO_HARTREE_BOHR2
from q2mm.objective.contract import Engine, quadratic_forms
from q2mm.objective.objective import full_parameters, prepare, structure_slice
from q2mm.objective.shared import (
    ITERATE,
    CompiledOnce,
    engine_at,
    engine_derivatives,
    engine_minimizer,
    map_structures,
    minimizes_stepwise,
)
from q2mm.reference.eigenmatrix import EIGEN_SCORE_UNIT, eigenmatrix, mass_weighted_mm_hessian
from q2mm.reference.geometry import angle_values, bond_values, torsion_values, wrap_degrees
from q2mm.reference.observations import (
    ObservationSettings,
    StructureObservations,
    layout_kinds,
    residual_layout,
)

# padded internal coordinates point at these ghost points appended to x (never degenerate)
GHOST = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [1.5, 1.0, 0.0], [2.4, 1.2, 0.9]]) - 100.0
FREQUENCY_PAD = 1e3  # Hartree/(Bohr^2 amu) given to rigid/padded modes so they sort last
MINIMUM = object()  # stands for the minimum (x, Hessian, pins, their flags) among a stage's arguments
# XLA compiles of the stages at once (Q2MM_COMPILE_THREADS; default: the CPUs this process may use)
COMPILE_THREADS = int(os.environ.get("Q2MM_COMPILE_THREADS", str(usable_cpus())))
# the stages lowered in this order, the longest XLA compiles first (rh-enamide: the minimizer's
# loop with the engine's Hessian inside, shared with the reference objective, 10-15 s; eigen 8 s;
# at_minimum 4 s; small sets: the engine's program, shared, 4-10 s), so the last compile to finish
# starts as early as possible
_LOWERING_ORDER = (
    *("minimize", "engine", "eigen", "charge", "at_minimum", "jacobian"),
    *("eigen_value", "charge_value", "at_minimum_value"),  # small: residuals without their gradient
)


@dataclass(frozen=True)
class LossInfo:
    """Diagnostics of the last evaluation: per structure convergence and per kind scores."""

    converged: np.ndarray
    iterations: np.ndarray
    max_gradient: np.ndarray
    kind_scores: dict[str, float]
    messages: list[str]
    pinned: list[list[tuple[int, int]]]  # per structure: atom pairs held on the softcut kink


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
    for kind, atoms, width in (
        ("bond_length", lambda c: c.bonds, 2),
        ("bond_angle", lambda c: c.angles, 3),
        ("torsion", lambda c: c.torsions, 4),
    ):
        idx = [atoms(o.internal) for o in obs]
        data[kind] = {
            "idx": _pad_rows(idx, width, np.arange(n_max, n_max + width)),
            "ref": _pad_rows([o.geometry_ref[kind] for o in obs], 0, 0.0),
            "w": _pad_rows(
                [np.full(len(i), settings.weight(kind) if settings.uses(kind) else 0.0) for i in idx], 0, 0.0
            ),
        }
    return data


def _pad_square(mats: list[np.ndarray], size: int) -> np.ndarray:
    out = np.zeros((len(mats), size, size))
    for s, m in enumerate(mats):
        out[s, : m.shape[0], : m.shape[1]] = m
    return out


def _pack_eigen(obs: list[StructureObservations], d: int, settings: ObservationSettings) -> dict:
    def vec(o, values):
        v = np.zeros(d)
        if o.eigen is not None:
            src = values(o)
            v[: src.size] = src
        return v

    empty = np.zeros((0, 0))
    return {
        "basis": _pad_square([o.eigen.basis if o.eigen is not None else empty for o in obs], d),
        "ref": np.stack([vec(o, lambda o: o.eigen.eigenvalues) for o in obs]),
        "w": np.stack([vec(o, lambda o: o.eig_diag_weight) for o in obs]) * settings.uses("eig_diag"),
        "w_off": _pad_square([o.eig_offdiag_weight if o.eig_offdiag_weight is not None else empty for o in obs], d)
        * settings.uses("eig_offdiag"),
    }


def _pack_frequency(obs: list[StructureObservations], d: int, settings: ObservationSettings) -> dict:
    refs = [o.frequency_ref if o.frequency_ref is not None else np.zeros(0) for o in obs]
    idx = [o.frequency_drop + np.arange(r.size) for o, r in zip(obs, refs)]
    return {
        "ref": _pad_rows(refs, 0, 0.0),
        "idx": _pad_rows(idx, 0, np.int64(d - 1)),
        "w": _pad_rows([np.full(r.size, settings.weight("frequency")) for r in refs], 0, 0.0),
    }


def _pack_energy(obs: list[StructureObservations], settings: ObservationSettings) -> dict:
    has = [o.energy_anchor is not None for o in obs]
    return {
        "anchor": np.array([o.energy_anchor if h else o.index for o, h in zip(obs, has)]),
        "ref": np.array([o.energy_ref if h else 0.0 for o, h in zip(obs, has)]),
        "w": np.array([settings.weight("energy") if h else 0.0 for h in has]),
    }


def _pack_charge(obs: list[StructureObservations], n_max: int, settings: ObservationSettings) -> dict:
    """QM charges (e) and weights per atom slot; padded atoms and structures without charges 0."""
    ref, w = np.zeros((len(obs), n_max)), np.zeros((len(obs), n_max))
    for s, o in enumerate(obs):
        if o.charge_ref is not None:
            ref[s, : o.charge_ref.size] = o.charge_ref
            w[s, : o.charge_ref.size] = settings.weight("charge")
    return {"ref": ref, "w": w}


def pack_observations(obs: list[StructureObservations], model: Engine, settings: ObservationSettings) -> dict:
    """Padded arrays (leading structure axis) of every reference value and weight."""
    mask = np.asarray(model.atom_mask, dtype=bool)
    n_max = mask.shape[1]
    masses = np.ones(mask.shape)
    for s, o in enumerate(obs):
        masses[s, : o.masses.size] = o.masses
    data = {
        "qm": np.asarray(model.coords, dtype=np.float64),
        "mask": mask,
        "masses": masses,
        "geometry": _pack_geometry(obs, n_max, settings),
        "eigen": _pack_eigen(obs, 3 * n_max, settings),
        "frequency": _pack_frequency(obs, 3 * n_max, settings),
        "energy": _pack_energy(obs, settings),
        "charge": _pack_charge(obs, n_max, settings),
    }
    return jax.tree.map(jnp.asarray, data)


class JaxLoss:
    """Jitted score and analytic gradient over the active parameters (``active`` indexes model.p0).

    Three functions, each compiled once for the padded structure shape, evaluate one
    structure: ``minimize`` (the inner Newton minimization from the QM geometry,
    ``jax_newton``: ``shared.engine_minimizer``, whose evaluate-only pass also gives the
    Hessian at the QM geometry and the reference objective's engine), ``eigen`` (the
    eigenmatrix scores and their gradient) and ``at_minimum`` (geometry and frequency scores
    at the minimum and their gradient through the implicit derivative); ``charge`` (MM3*
    atomic charges, a function of the parameters alone) when the charge kind is scored.
    ``value_and_grad`` runs them for each structure in turn and adds the results, so every
    minimization stops as soon as its own structure has converged. A least-squares fit
    (``compile(jacobian=True)``) or a derivative-free one (``compile(gradient=False)``)
    evaluates by value stages instead (``eigen_value``, ``charge_value``,
    ``at_minimum_value``: the same residuals without their gradient, a fraction of the
    tracing and compiling) beside the Jacobian stage.

    ``stepwise_minimize=True`` compiles only one trust-region step (``TrustRegion.advance``)
    and drives it from the host (``stepwise_newton``) around the engine's energy, gradient
    and Hessian program (``shared.engine_derivatives``): same steps and results, a smaller
    compile than the whole loop, but each step costs a host round trip. ``None`` (the
    default) chooses by size (``shared.minimizes_stepwise``, as ``q2mm.compose`` does for the
    reference objective): stepwise for training sets of at most ``shared.STEPWISE_MAX_ATOMS``
    padded atoms in all, where a fit is mostly compiling (sn2, 12: value+grad +5 ms, the
    default run 22.0 -> 18.9 s), the whole loop above it (pd-allyl-xtb, 42: value+grad 73 ->
    170 ms, its fit 51 -> 76 s; rh-enamide, 558: +130-220 ms; docs/performance.md).

    ``warm_start=True`` starts each minimization from that structure's previous minimum
    instead: fewer Newton steps, but the score then depends on the path of earlier calls
    (a structure with several minima near its QM geometry can settle in another one than
    the reference objective finds from the QM geometry), so fits leave it off.
    """

    def __init__(
        self,
        model: Engine,
        molecules: list[Molecule],
        settings: ObservationSettings | None = None,
        active=None,
        options: MinimizeOptions = MinimizeOptions(),
        warm_start: bool = False,
        jacobian_mode: str = "auto",
        fixed_geometry_jacobian: bool = True,
        stepwise_minimize: bool | None = None,
    ):
        self.settings, self.p0, self.active, self.observations = prepare(model, molecules, settings, active)
        self.model = model
        self.options = options
        self.warm_start = warm_start
        data = pack_observations(self.observations, model, self.settings)
        self._energy_data = {k: np.asarray(v) for k, v in data.pop("energy").items()}
        n = len(self.observations)
        self._structures = [structure_slice((data, model.topology), s) for s in range(n)]
        self._qm = np.asarray(model.coords, dtype=np.float64)
        self.stepwise_minimize = minimizes_stepwise(self._qm.shape) if stepwise_minimize is None else stepwise_minimize
        self._kinks = [model.kinks(topo) for _, topo in self._structures]  # concrete, per structure
        distances = {k.distance for k in self._kinks if k is not None}
        if len(distances) > 1:
            raise ValueError(f"the engine's kink distances differ between structures: {sorted(distances)}")
        self._kink_distance = distances.pop() if distances else 0.0
        self._step_arguments: dict[int, tuple] = {}  # per structure: the minimize stage's last arguments
        # the engine's Hessian contraction differentiates without third derivatives, valid while
        # no hydrogen reduction factor is fitted
        self._fast_eigen_gradient = not np.isin(self.active, model.reduction_slots()).any()
        self._uses_eigen = self.settings.uses("eig_diag") or self.settings.uses("eig_offdiag")
        # the Jacobian's columns through the engine's fixed-geometry functions (else the full path)
        self._fixed_geometry_jacobian = fixed_geometry_jacobian
        self._compiled: dict[str, Any] = {}  # the compiled stages by name (compile)
        self.reset_start()
        self.compile_seconds: float | None = None
        self.last_info: LossInfo | None = None
        self._rows = residual_layout(self.observations, self.settings, 3 * self._qm.shape[1])
        self.residual_kinds = layout_kinds(self._rows)
        if jacobian_mode not in ("auto", "forward", "reverse"):
            raise ConfigurationError(f"jacobian_mode must be 'auto', 'forward' or 'reverse', not {jacobian_mode!r}")
        padded_rows = sum(_padded_rows(data, self.settings).values())
        forward = self.active.size <= padded_rows or self.settings.uses("eig_offdiag")
        self._jacobian_mode = jacobian_mode if jacobian_mode != "auto" else ("forward" if forward else "reverse")
        self.jacobian_compile_seconds: float | None = None
        self.stage_seconds: dict[str, dict[str, float]] = {}  # per compiled stage: lower, compile
        self._last: dict[str, Any] = {}  # the last evaluation: parameters, per-structure results, residuals

    # -- public API -----------------------------------------------------------------------
    def value(self, p_active) -> float:
        """The score at the active values: by the value stages where a least-squares start
        compiled them (``compile(jacobian=True)``), else by value_and_grad's."""
        return self._evaluate_cheapest(p_active)[0]

    def value_and_grad(self, p_active) -> tuple[float, np.ndarray]:
        """Score and its gradient with respect to the active parameters."""
        value, grad = self._evaluate_all(p_active, gradient=True)
        assert grad is not None
        return value, grad

    def _evaluate_cheapest(self, p_active) -> tuple[float, np.ndarray | None]:
        """``_evaluate_all`` by the value stages where they are compiled, else with the gradient."""
        return self._evaluate_all(p_active, gradient=not self._value_stages_ready())

    def _evaluate_all(self, p_active, gradient: bool) -> tuple[float, np.ndarray | None]:
        """Score (and its gradient if ``gradient``) over every structure; the evaluation's
        parameters, per-structure results and residual vector kept in ``_last``."""
        p = jnp.asarray(full_parameters(self.p0, self.active, p_active))
        self._ensure(self._stage_names(gradient))
        results = map_structures(lambda s: self._evaluate(s, p, gradient), len(self._structures))
        kinds: dict[str, float] = {}
        for r in results:
            for kind, value in r["kinds"].items():
                kinds[kind] = kinds.get(kind, 0.0) + float(value)
        grad = np.sum([np.asarray(r["grad"]) for r in results], axis=0) if gradient else None
        blocks = [r["residuals"] for r in results]
        if self.settings.uses("energy"):
            kinds["energy"], energy_grad, energy_residual = self._energy_term(results, gradient)
            grad = None if grad is None else grad + energy_grad
            blocks = [{**b, "energy": energy_residual[s : s + 1]} for s, b in enumerate(blocks)]
        self._record(results, kinds)
        self._last = {"p": np.asarray(p), "results": results, "residuals": self._assemble(blocks)}
        return float(sum(kinds.values())), None if grad is None else grad[self.active]

    def residuals(self, p_active) -> np.ndarray:
        """The weighted residual vector r(p), score = |r|^2, in the reference objective's
        order (``Evaluation.residuals``: by kind, then structure, then entry; torsions wrapped);
        ``residual_kinds`` names each row's kind."""
        self._evaluate_at(p_active)
        return self._last["residuals"].copy()

    def residuals_and_jacobian(self, p_active) -> tuple[np.ndarray, np.ndarray]:
        """r(p) and its Jacobian dr/dp_active (m, n) through the implicit derivative of each
        minimum; minima of an evaluation at the same p are reused."""
        self._evaluate_at(p_active)
        self.compile_jacobian()
        p, results = jnp.asarray(self._last["p"]), self._last["results"]
        active = jnp.asarray(self.active)

        def structure(s: int) -> tuple[dict, np.ndarray]:
            data, topo = self._structures[s]
            minimum = results[s].get("minimum", (None, None, None, None))
            j, eg = self._compiled["jacobian"](p, active, *minimum, data, topo)
            return jax.device_get(j), np.asarray(eg)

        jacs, energy_grads = (list(part) for part in zip(*map_structures(structure, len(self._structures))))
        if self.settings.uses("energy"):
            e = self._energy_data
            de = np.stack(energy_grads)
            rows = -e["w"][:, None] * (de - de[e["anchor"]])
            jacs = [{**j, "energy": rows[s : s + 1]} for s, j in enumerate(jacs)]
        jac = self._assemble(jacs, width=self.active.size)
        return self._last["residuals"].copy(), jac

    def forget(self) -> None:
        """Drop the cached last evaluation: the next Jacobian minimizes again (for timing)."""
        self._last = {}

    def compile_jacobian(self) -> float:
        """Compile the Jacobian stage once (ahead of time); the seconds it took."""
        self.compile(jacobian=True)
        return self.jacobian_compile_seconds or 0.0

    def _jacobian_stage_args(self) -> tuple:
        """The Jacobian stage and its arguments for ``_compile_stages`` (MINIMUM: the minimum's shapes)."""
        data, topo = self._structures[0]
        minimum = (MINIMUM,) if self.settings.needs_minimum else (None,) * 4
        return (self._jacobian_stage, jnp.asarray(self.p0), jnp.asarray(self.active), *minimum, data, topo)

    def _evaluate_at(self, p_active) -> None:
        p = full_parameters(self.p0, self.active, p_active)
        if not self._last or not np.array_equal(self._last["p"], p):
            self._evaluate_cheapest(p_active)

    def _assemble(self, blocks: list[dict], width: int | None = None) -> np.ndarray:
        """Stack the real rows of per-structure padded blocks: by kind, structure, entry."""
        parts = [np.asarray(blocks[s][kind])[rows] for kind, per in self._rows.items() for s, rows in enumerate(per)]
        empty = np.zeros((0,) if width is None else (0, width))
        return np.concatenate([empty] + [np.reshape(a, (-1,) if width is None else (-1, width)) for a in parts])

    def reset_start(self) -> None:
        """Start the next inner minimizations from the QM geometries again (no warm start)."""
        self._x_start = self._qm.copy()

    def compile(self, jacobian: bool = False, gradient: bool | None = None) -> float:
        """Compile the stages of an evaluation once (ahead of time) and return the seconds the
        first compile took; ``stage_seconds`` holds each stage's trace + lowering and its XLA
        compile. ``gradient`` (default: unless ``jacobian``): value_and_grad's stages, else the
        value stages (scores and residuals without their gradient, which ``value`` and
        ``residuals`` then use: least squares and the derivative-free methods never ask for a
        gradient; value_and_grad compiles its own stages when first called). ``jacobian``
        (a least-squares fit's start): the Jacobian stage too, in the same pool so its compile
        overlaps the others' (alone where an evaluation's stages are compiled already)."""
        gradient = not jacobian if gradient is None else gradient
        names = [] if jacobian and self._compiled else self._stage_names(gradient)
        self._ensure([*names, "jacobian"] if jacobian else names)
        return self.compile_seconds or 0.0

    def _stage_names(self, gradient: bool) -> list[str]:
        """The stages one evaluation runs, with the score's gradient or without it."""
        names = []
        if self._uses_eigen or self.settings.needs_minimum:  # the program with the engine's Hessian
            names.append("engine" if self.stepwise_minimize else "minimize")  # (shared.EngineEvaluation)
        if self._uses_eigen:
            names.append("eigen" if gradient else "eigen_value")
        if self.settings.uses("charge"):
            names.append("charge" if gradient else "charge_value")
        if self.settings.needs_minimum:
            names += ["minimize"] if self.stepwise_minimize else []  # its trust-region step
            names.append("at_minimum" if gradient else "at_minimum_value")
        return names

    def _value_stages_ready(self) -> bool:
        return all(name in self._compiled for name in self._stage_names(gradient=False))

    def _ensure(self, names: list[str]) -> None:
        """Compile the stages among ``names`` not compiled yet, together (``_compile_stages``)."""
        missing = sorted((n for n in names if n not in self._compiled), key=_LOWERING_ORDER.index)
        if not missing:
            return
        start = time.perf_counter()
        self._compiled.update(self._compile_stages({name: self._stage(name) for name in missing}))
        seconds = time.perf_counter() - start
        if "jacobian" in missing:
            self.jacobian_compile_seconds = seconds
        if self.compile_seconds is None:
            self.compile_seconds = seconds

    def _stage(self, name: str) -> tuple:
        """Stage ``name``'s function and its arguments for ``_compile_stages`` (shapes of
        structure 0: every structure is padded alike)."""
        data, topo = self._structures[0]
        p, x_qm = jnp.asarray(self.p0), jnp.asarray(data["qm"])
        h = jax.ShapeDtypeStruct(x_qm.shape * 2, x_qm.dtype)  # the engine's Hessian at x_qm
        if name == "minimize" and self.stepwise_minimize:
            # one trust-region step after the engine program's energy, gradient and Hessian
            energy, gradient = jax.ShapeDtypeStruct((), x_qm.dtype), jax.ShapeDtypeStruct(x_qm.shape, x_qm.dtype)
            return (self._advance, *self._start(0, self._qm[0]), energy, gradient, h, *self._step_inputs(0))
        stages = {
            "engine": lambda: (engine_derivatives(self.model), x_qm, p, topo),
            "minimize": lambda: (engine_minimizer(self.model, self.options), x_qm, p, topo, data["mask"], ITERATE),
            "eigen": lambda: (self._eigen, p, h, data, topo),
            "eigen_value": lambda: (self._eigen_value, h, data),
            "charge": lambda: (self._charge, p, data, topo),
            "charge_value": lambda: (self._charge_value, p, data, topo),
            "at_minimum": lambda: (self._at_minimum, p, MINIMUM, data, topo),
            "at_minimum_value": lambda: (self._at_minimum_value, p, MINIMUM, data, topo),
            "jacobian": self._jacobian_stage_args,
        }
        return stages[name]()

    def _compile_stages(self, stages: dict) -> dict:
        """Each stage ``name: (fn, *args)`` traced and lowered in turn (Python, one thread);
        each lowered program goes at once to one of ``COMPILE_THREADS`` threads for its XLA
        compile (XLA releases the GIL and compiles one program on one core), so the compiles
        overlap the tracing of the later stages. ``stage_seconds[name]``: its lowering, and
        the seconds from the end of its lowering until its compile was done."""

        def compile_one(name, program, t0):
            out = program.compile()
            self.stage_seconds[name]["compile"] = time.perf_counter() - t0
            return out

        with ThreadPoolExecutor(max(1, min(len(stages), COMPILE_THREADS))) as pool:
            pending = {}
            for name, (fn, *args) in stages.items():
                if isinstance(fn, CompiledOnce):  # the engine's shared program: lowered here, compiled in the pool
                    pending[name] = self._start_shared(name, fn, args, pool)
                    continue
                program = self._lower(name, fn, args)
                pending[name] = pool.submit(compile_one, name, program, time.perf_counter())
            return {name: job.result() for name, job in pending.items()}

    def _start_shared(self, name: str, shared: CompiledOnce, args, pool: ThreadPoolExecutor):
        """An engine program shared with the reference objective: lowered in this thread (in
        its turn of ``_LOWERING_ORDER``, no other tracing beside it), compiled in ``pool``;
        whoever asks for the same shape first makes it (``CompiledOnce.start``)."""
        t0 = time.perf_counter()
        future = shared.start(pool, *args)
        lowered = time.perf_counter()
        self.stage_seconds[name] = {"lower": lowered - t0}
        future.add_done_callback(
            lambda _: self.stage_seconds[name].__setitem__("compile", time.perf_counter() - lowered)
        )
        return future

    def _lower(self, name: str, fn, args: list):
        """jit(fn) traced and lowered for ``args`` (MINIMUM: shaped like the minimize stage's
        first four outputs); its seconds into ``stage_seconds[name]``."""
        t0 = time.perf_counter()
        at = next((i for i, a in enumerate(args) if a is MINIMUM), None)
        if at is not None:
            args = [*args[:at], *self._minimum_shapes(), *args[at + 1 :]]
        program = jax.jit(fn).lower(*args)
        self.stage_seconds[name] = {"lower": time.perf_counter() - t0}
        return program

    # -- internals ------------------------------------------------------------------------
    def _evaluate(self, s: int, p, gradient: bool) -> dict:
        """Structure s's scores by kind, residual blocks, minimum and (if ``gradient``) the
        gradient of its scores with respect to the full p."""
        data, topo = self._structures[s]
        stages = self._compiled
        out: dict[str, Any] = {"kinds": {}, "residuals": {}, "grad": np.zeros(self.p0.size), "converged": True}
        out.update(iterations=0, gmax=0.0)

        def add(kinds, residuals, grad=None):
            out["kinds"], out["residuals"] = {**out["kinds"], **kinds}, {**out["residuals"], **residuals}
            if gradient:
                out["grad"] = out["grad"] + grad

        if self._uses_eigen:
            h = self._qm_hessian(s, p)
            add(*(stages["eigen"](p, h, data, topo) if gradient else stages["eigen_value"](h, data)))
        if self.settings.uses("charge"):
            add(*(stages["charge"](p, data, topo) if gradient else stages["charge_value"](p, data, topo)))
        if self.settings.needs_minimum:
            found = self._minimize(s, p, self._x_start[s])
            if self.warm_start and not bool(found[-1]):  # retry cold from the QM geometry
                found = self._minimize(s, p, self._qm[s])
            x_min, h_min, pins, active, out["energy"], out["gmax"], out["iterations"], out["converged"] = found
            out["pinned"] = [
                tuple(int(a) for a in pair) for pair, on in zip(np.asarray(pins), np.asarray(active)) if on
            ]
            if self.warm_start and bool(out["converged"]):  # the converged minimum seeds the next call
                self._x_start[s] = np.asarray(x_min)
            out["minimum"] = (x_min, h_min, pins, active)
            if gradient:
                kinds, residuals, grad, out["energy_grad"] = stages["at_minimum"](p, *out["minimum"], data, topo)
                add(kinds, residuals, grad)
            else:
                add(*stages["at_minimum_value"](p, *out["minimum"], data, topo))
        return out

    def _energy_term(self, results: list[dict], gradient: bool) -> tuple[float, np.ndarray | None, np.ndarray]:
        """Relative MM energies of the minima against their QM references, and (if
        ``gradient``) the gradient (dE(x*(p), p)/dp = dE/dp at a minimum)."""
        e = self._energy_data
        energies = np.array([float(r["energy"]) for r in results])
        residual = e["w"] * (e["ref"] - (energies - energies[e["anchor"]]))
        grad = None
        if gradient:
            de = np.stack([np.asarray(r["energy_grad"]) for r in results])
            grad = -2.0 * (e["w"] * residual) @ (de - de[e["anchor"]])
        return float(np.sum(residual**2)), grad, residual

    def _record(self, results: list[dict], kinds: dict[str, float]) -> None:
        conv = np.array([bool(r["converged"]) for r in results])
        iterations = np.array([int(r["iterations"]) for r in results])
        gmax = np.array([float(r["gmax"]) for r in results])
        messages = [
            f"structure {s} ({self.observations[s].title}): minimization not converged "
            f"(max |g| {gmax[s]:.3e} kcal/mol/A after {iterations[s]} iterations)"
            for s in np.flatnonzero(~conv)
        ]
        pinned = [r.get("pinned", []) for r in results]
        self.last_info = LossInfo(conv, iterations, gmax, kinds, messages, pinned)

    # -- the compiled stages (one structure each) ---------------------------------------------
    def _hessian(self):
        return self.model.hessian  # the engine's own (MM3*: assembled per interaction)

    def _start(self, s: int, x_start: np.ndarray) -> tuple:
        """The trust-region loop's first state and proposal from x_start (host arrays)."""
        return trust_region_start(np.array(x_start, dtype=np.float64), self.options, self._kinks[s])

    def _step_inputs(self, s: int) -> tuple:
        """Structure s's atom mask and kink pairs, the minimize stage's last arguments."""
        if s not in self._step_arguments:
            kinks = self._kinks[s]
            pairs = () if kinks is None else (jnp.asarray(kinks.pairs), jnp.asarray(kinks.mask))
            self._step_arguments[s] = (jnp.asarray(self._structures[s][0]["mask"]), *pairs)
        return self._step_arguments[s]

    def _minimum_shapes(self) -> tuple:
        """Shapes of a minimum (x, Hessian, pins, their flags), the at_minimum stage's inputs."""
        state = self._start(0, self._qm[0])[0]
        return tuple(
            jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype)
            for a in (state.x, state.h_l, state.pins, state.active)
        )

    def _minimize(self, s: int, p, x_start: np.ndarray) -> tuple:
        """(x_min, Hessian at x_min, pinned pairs, their flags, energy, max |g|, iterations,
        converged) of structure s from x_start, by the compiled minimize stage: the whole
        ``jax_newton`` loop, or (``stepwise_minimize``) one trust-region step driven from the
        host, the engine's energy, gradient and Hessian at each trial point from the programs
        shared with the reference objective (the same algorithm and steps)."""
        stages = self._compiled
        data, topo = self._structures[s]
        if not self.stepwise_minimize:
            m = stages["minimize"](jnp.asarray(x_start), p, topo, data["mask"], ITERATE)
            tail = (m.energy, m.max_gradient, m.iterations, m.converged)
            return (m.x, m.hessian_l, m.pins, m.active, *(v.item() for v in jax.device_get(tail)))
        engine, advance = stages["engine"], stages["minimize"]
        inputs = self._step_inputs(s)

        def evaluate(x):  # each program waited for: faster on CPU than queuing the next behind it
            return jax.block_until_ready(engine(x, p, topo))

        def step(state, proposal, e, g, h):
            return advance(state, proposal, e, g, h, *inputs)

        m = stepwise_newton(step, evaluate, self._start(s, x_start))
        gmax, energy = float(m.gmax), float(m.e)
        converged = gmax < self.options.gtol and np.isfinite(energy)
        return m.x, m.h_l, m.pins, m.active, energy, gmax, int(m.it) - 1, converged

    def _qm_hessian(self, s: int, p):
        """The engine's Hessian at structure s's QM geometry, from the program shared with the
        reference objective: the engine's own (stepwise) or the minimizer's, evaluating only."""
        data, topo = self._structures[s]
        program = self._compiled["engine" if self.stepwise_minimize else "minimize"]
        return engine_at(program, not self.stepwise_minimize, data["qm"], p, topo, data["mask"])[2]

    def _advance(self, state, proposal, e, g, h, mask, *kink_pairs):
        """One trust-region step (``TrustRegion.advance``) of a structure with atom ``mask``
        and kink pairs (pairs, their mask) at the engine's kink distance."""
        kinks = Kinks(kink_pairs[0], kink_pairs[1], self._kink_distance) if kink_pairs else None
        loop = TrustRegion(mask, self.options, self.options.max_iter, kinks)
        return loop.advance(state, proposal, e, g, h)

    def _eigen(self, p, h, d, topo):
        """Eigenmatrix scores by kind and the gradient of their sum wrt the full p: the score's
        cotangent G on the Hessian h at the QM geometry (the engine's shared program gives h,
        so this stage does not compile the Hessian again), then d sum(G * H(p)) / dp."""
        hessian = self._hessian()

        def score(hess):
            residuals = _eigen_residuals(hess, d, self.settings)
            kinds = _squares(residuals)
            return sum(kinds.values(), jnp.zeros(())), (kinds, residuals)

        (_, (kinds, residuals)), g = jax.value_and_grad(score, has_aux=True)(h)
        if self._fast_eigen_gradient:
            grad = jax.grad(lambda q: self.model.hessian_dot(d["qm"], q, topo, g))(p)
        else:
            grad = jax.vjp(lambda q: hessian(d["qm"], q, topo), p)[1](g)[0]
        return kinds, residuals, grad

    def _eigen_value(self, h, d):
        """``_eigen``'s scores and residuals alone, from the engine's Hessian h at the QM geometry."""
        residuals = _eigen_residuals(h, d, self.settings)
        return _squares(residuals), residuals

    def _charge(self, p, d, topo):
        """Charge scores and their gradient wrt the full p (charges depend on parameters only)."""

        def score(q):
            residuals = _charge_residuals(self.model, q, d, topo)
            kinds = _squares(residuals)
            return sum(kinds.values(), jnp.zeros(())), (kinds, residuals)

        (_, (kinds, residuals)), grad = jax.value_and_grad(score, has_aux=True)(p)
        return kinds, residuals, grad

    def _charge_value(self, p, d, topo):
        """``_charge``'s scores and residuals alone."""
        residuals = _charge_residuals(self.model, p, d, topo)
        return _squares(residuals), residuals

    def _at_minimum(self, p, x_min, h_min, pins, active, d, topo):
        """Geometry (and frequency) scores at the minimum, their gradient through the implicit
        derivative of x*(p), and dE/dp at the minimum (for relative energies)."""
        energy, s, model = self.model.energy, self.settings, self.model
        # d(grad_x E)/dp at the minimum through the fixed-geometry gradient (a first derivative
        # of the per-interaction energies in p, much smaller to compile than reverse mode twice
        # through the energy), valid while no reduction factor is fitted
        gradient = (lambda x, q, t: model.at_geometry(x, q, t).gradient(q)) if self._fast_eigen_gradient else None
        minimum = make_implicit_minimum(energy, gradient)

        def score(q):
            x = minimum(q, x_min, h_min, topo, d["mask"], pins, active)
            residuals = self._minimum_residuals(x, q, d, topo)
            kinds = _squares(residuals)
            return sum(kinds.values(), jnp.zeros(())), (kinds, residuals)

        (_, (kinds, residuals)), grad = jax.value_and_grad(score, has_aux=True)(p)
        energy_grad = jax.grad(energy, argnums=1)(x_min, p, topo) if s.uses("energy") else jnp.zeros_like(p)
        return kinds, residuals, grad, energy_grad

    def _at_minimum_value(self, p, x_min, h_min, pins, active, d, topo):
        """``_at_minimum``'s scores and residuals alone (the minimum's other parts unused)."""
        residuals = self._minimum_residuals(x_min, p, d, topo)
        return _squares(residuals), residuals

    def _minimum_residuals(self, x, q, d, topo) -> dict:
        """Geometry (and frequency) residuals of the minimum x."""
        residuals = _geometry_residuals(x, d["geometry"], self.settings)
        if self.settings.uses("frequency"):
            residuals["frequency"] = _frequency_residual(self._hessian()(x, q, topo), x, d)
        return residuals

    def _jacobian_stage(self, p, active, x_min, h_min, pins, pinned, d, topo):
        """The Jacobian of one structure's padded residual blocks (by kind) with respect to
        ``p[active]``, and dE/dp[active] at the minimum (the residuals themselves are the
        evaluation's, ``residuals_and_jacobian``). The minimum moves by the implicit
        derivative -H^+ d(grad E)/dp: one factorization of its Hessian serves every direction.
        Forward mode (one tangent per active parameter) when there are no more parameters
        than residual rows, reverse mode (one cotangent per row) otherwise.

        The columns of parameters other than hydrogen reduction factors differentiate the
        engine's ``at_geometry`` functions of p (MM3*: ``q2mm.mm3.fixed_geometry``: geometric
        factors computed once, derivatives only through the per-interaction energy
        derivatives; eig_diag alone by ``diagonal_jacobian``): the Hessian at the QM geometry
        and the gradient whose p-derivative moves each minimum. Frequencies (the Hessian at
        the moving minimum), the reduction factors' columns (they move the working
        coordinates) and ``fixed_geometry_jacobian=False`` differentiate the full Hessian
        assembly and the energy's gradient."""
        a = p[active]
        held = np.isin(self.active, self.model.reduction_slots())  # static: which columns need the full path
        if not self._fixed_geometry_jacobian:
            held[:] = True
        jac = None
        for columns, fixed in ((np.flatnonzero(~held), True), (np.flatnonzero(held), False)):
            if columns.size:
                part = self._jacobian_columns(p, active, columns, fixed, x_min, h_min, pins, pinned, d, topo)
                if columns.size == a.size:
                    jac = part
                else:
                    jac = jac or jax.tree.map(lambda b: jnp.zeros(b.shape[:-1] + a.shape, b.dtype), part)
                    jac = jax.tree.map(lambda full, b, c=columns: full.at[..., c].set(b), jac, part)
        energy_grad = (
            jax.grad(self.model.energy, argnums=1)(x_min, p, topo)[active]
            if self.settings.uses("energy")
            else jnp.zeros_like(a)
        )
        return jac, energy_grad

    def _jacobian_columns(self, p, active, columns, fixed, x_min, h_min, pins, pinned, d, topo):
        """The Jacobian's ``columns`` (positions in ``active``), by the fixed-geometry functions
        or the full path (``fixed``), in the stage's mode."""
        fn = self._stage_residuals(p, active, fixed, x_min, h_min, pins, pinned, d, topo)
        a = p[active]

        def of_columns(b):
            return fn(a.at[columns].set(b))

        return (jax.jacfwd if self._jacobian_mode == "forward" else jax.jacrev)(of_columns)(a[columns])

    def _stage_residuals(self, p, active, fixed, x_min, h_min, pins, pinned, d, topo):
        """The padded residual blocks as a function of p[active] at one structure's minimum,
        exact in first derivative at p[active], which is all the Jacobian stage takes (the
        fixed path gives eig_diag's linear term only, not its value)."""
        s = self.settings
        model = self.model
        eigen = s.uses("eig_diag") or s.uses("eig_offdiag")
        if fixed:
            at_qm: Any = model.at_geometry(d["qm"], p, topo) if eigen else None
            # eig_diag's p-Jacobian at p: a constant of ``residuals``, traced once outside the
            # Jacobian's jvp and vmap (inside, every one of its ops went through both)
            diagonal = eigen and not s.uses("eig_offdiag")
            diagonal_jacobian = at_qm.diagonal_jacobian(_eigen_vectors(d), p) if diagonal else None

            def hessian_qm(x, q, t):
                return at_qm.hessian(q)

            minimum = make_implicit_minimum_jvp(model.energy, lambda x, q, t: model.at_geometry(x, q, t).gradient(q))
        else:
            full = self._jacobian_mode == "forward" or not self._fast_eigen_gradient
            hessian_qm = self._hessian() if full else _hessian_by_dot(model)
            minimum = make_implicit_minimum_jvp(model.energy)

        def residuals(a):
            q = p.at[active].set(a)
            if not eigen:
                out = {}
            elif s.uses("eig_offdiag"):
                out = _eigen_residuals(hessian_qm(d["qm"], q, topo), d, s)
            elif fixed:  # the diagonal alone: the quadratic forms' Jacobian, no Hessian
                out = _eigen_diagonal_tangent(diagonal_jacobian, p, q, d)
            else:
                out = _eigen_diagonal_of(hessian_qm(d["qm"], q, topo), d)
            if s.uses("charge"):
                out.update(_charge_residuals(model, q, d, topo))
            if s.needs_minimum:
                out.update(self._minimum_residuals(minimum(q, x_min, h_min, topo, d["mask"], pins, pinned), q, d, topo))
            return out

        return residuals


def _padded_rows(data: dict, s: ObservationSettings) -> dict[str, int]:
    """Residual rows per structure of each used kind in the padded blocks."""
    d = data["eigen"]["ref"].shape[1]
    sizes = {"eig_diag": d, "eig_offdiag": d * (d - 1) // 2, "frequency": data["frequency"]["ref"].shape[1]}
    sizes.update({k: v["ref"].shape[1] for k, v in data["geometry"].items()})
    sizes["charge"] = data["charge"]["ref"].shape[1]
    return {k: n for k, n in sizes.items() if s.uses(k)}


def _hessian_by_dot(model: Engine):
    """The engine's Hessian with a reverse-mode rule through ``hessian_dot`` (the cotangent
    contracted with the Hessian via internal coordinates, no third geometry derivatives)."""

    @jax.custom_vjp
    def hessian(x, q, topo):
        return model.hessian(x, q, topo)

    def fwd(x, q, topo):
        return model.hessian(x, q, topo), (x, q, topo)

    def bwd(res, g):
        x, q, topo = res
        return None, jax.grad(lambda qq: model.hessian_dot(x, qq, topo, g))(q), None

    hessian.defvjp(fwd, bwd)
    return hessian


def _eigen_residuals(h, d, s: ObservationSettings) -> dict:
    """Weighted eigenmatrix residuals from the MM Hessian (Nmax, 3, Nmax, 3) at the QM geometry:
    eig_diag w (ref - diag) (d rows), eig_offdiag w (0 - calc) over the upper triangle (row-major)."""
    e = d["eigen"]
    n = e["basis"].shape[0]
    calc = eigenmatrix(h.reshape(n, n), d["masses"], e["basis"], xp=jnp) * EIGEN_SCORE_UNIT
    out = {}
    if s.uses("eig_diag"):
        out["eig_diag"] = e["w"] * (EIGEN_SCORE_UNIT * e["ref"] - jnp.diagonal(calc))
    if s.uses("eig_offdiag"):
        iu = np.triu_indices(n, k=1)
        out["eig_offdiag"] = -(e["w_off"] * calc)[iu]  # reference 0
    return out


def _eigen_vectors(d) -> jnp.ndarray:
    """u_k = M^-1/2 v_k (3 Nmax, d): the eigenmatrix diagonal is u_k^T H u_k (unit factors aside)."""
    return jnp.repeat(1.0 / jnp.sqrt(d["masses"]), 3)[:, None] * d["eigen"]["basis"]


def _eigen_diagonal_rows(diag, d) -> dict:
    """The eig_diag rows from u_k^T H u_k (kcal/mol/A^2 amu^-1)."""
    e = d["eigen"]
    return {
        "eig_diag": e["w"]
        * (EIGEN_SCORE_UNIT * e["ref"] - diag * (KCAL_PER_MOL_A2_TO_HARTREE_BOHR2 * EIGEN_SCORE_UNIT))
    }


def _eigen_diagonal_of(h, d) -> dict:
    """``_eigen_residuals``' eig_diag rows from the Hessian: u_k^T H u_k, one product with H
    (where the eigenmatrix takes two)."""
    return _eigen_diagonal_rows(quadratic_forms(_eigen_vectors(d), h), d)


def _eigen_diagonal_tangent(diagonal_jacobian, p, q, d) -> dict:
    """The eig_diag rows' linear term in q - p: -w (u_k^T dH/dp u_k) (q - p) in the rows' units,
    from ``diagonal_jacobian`` = d(u_k^T H u_k)/dp at p (u_k = M^-1/2 v_k; the engine's
    ``at_geometry(...).diagonal_jacobian``), without the Hessian. Its derivative in q is the
    rows' exact derivative at q = p, all the Jacobian stage takes from it; the rows' value at p
    (``diagonal``), a constant here, is not traced."""
    rows = diagonal_jacobian @ (q - p)
    return {"eig_diag": -d["eigen"]["w"] * rows * (KCAL_PER_MOL_A2_TO_HARTREE_BOHR2 * EIGEN_SCORE_UNIT)}


def _eigen_terms(h, d, s: ObservationSettings) -> dict:
    """Eigenmatrix scores from the MM Hessian (Nmax, 3, Nmax, 3) at the QM geometry."""
    return _squares(_eigen_residuals(h, d, s))


def _charge_residuals(model, q, d, topo) -> dict:
    """Weighted charge residuals w (ref - calc) of every atom slot (e; padded slots weight 0)."""
    c = d["charge"]
    return {"charge": c["w"] * (c["ref"] - model.atom_charges(q, topo))}


def _squares(residuals: dict) -> dict:
    return {kind: jnp.sum(r**2) for kind, r in residuals.items()}


def _geometry_residuals(x, g: dict, s: ObservationSettings) -> dict:
    """Weighted residuals w (ref - calc) of bonds, angles and torsions (wrapped to +-180)."""
    xe = jnp.concatenate([x, jnp.asarray(GHOST)], axis=0)
    out = {}
    for kind, fn in (("bond_length", bond_values), ("bond_angle", angle_values), ("torsion", torsion_values)):
        if s.uses(kind):
            delta = g[kind]["ref"] - fn(xe, g[kind]["idx"], xp=jnp)
            if kind == "torsion":
                delta = wrap_degrees(delta, xp=jnp)
            out[kind] = g[kind]["w"] * delta
    return out


def _geometry_terms(x, g: dict, s: ObservationSettings) -> dict:
    return _squares(_geometry_residuals(x, g, s))


def _frequency_residual(h, x, d):
    """Weighted frequency residuals w (ref - calc) in cm^-1 (imaginary ones negative)."""
    n = x.size
    hmw = mass_weighted_mm_hessian(h.reshape(n, n), d["masses"], xp=jnp)
    # the rigid-body projector's own derivative contributes nothing to the eigenvalues
    proj = jax_projector(jax.lax.stop_gradient(x), d["mask"], weights=jnp.sqrt(d["masses"]))
    a = proj @ hmw @ proj + FREQUENCY_PAD * (jnp.eye(n, dtype=x.dtype) - proj)
    values = eigvalsh(0.5 * (a + a.T))[d["frequency"]["idx"]]
    freqs = jnp.sign(values) * jnp.sqrt(jnp.abs(values)) * HARTREE_BOHR2_AMU_TO_CM1
    f = d["frequency"]
    return f["w"] * (f["ref"] - freqs)


def _frequency_term(h, x, d):
    return jnp.sum(_frequency_residual(h, x, d) ** 2)


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
