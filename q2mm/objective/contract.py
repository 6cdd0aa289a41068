"""The engine contract: what ``ObjectiveFunction`` and ``JaxLoss`` need from a force-field engine.

An engine holds a training set compiled for evaluation: ``p0`` (the flat parameter vector),
``coords`` (S, Nmax, 3) A and ``atom_mask`` (S, Nmax) of the padded structures, and
``topology`` (a pytree with a leading structure axis; the objectives slice one structure and
pass it back). ``energy(x, p, topo)`` (kcal/mol, pure JAX, one padded structure) is the one
method without a default. ``q2mm.mm3.engine.MM3Model`` implements every method itself; a
small engine (the test fixture's harmonic model) subclasses ``Engine`` and inherits the
defaults: the autodiff Hessian (and the gradient beside it), its plain contraction, no kinks,
no hydrogen reduction factors, no charges. What the optimizer in turn reads of the objectives (``JaxLoss``,
``Evaluation``) is written in ``q2mm.optimize.protocols`` (``LossLike``, ``EvaluationLike``).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from q2mm.mm3.minimize import Kinks

Array = Any  # a jax or numpy array


class Engine(Protocol):
    """A compiled training set the objectives evaluate (see module docstring)."""

    p0: np.ndarray
    coords: Array
    atom_mask: Array
    topology: Any
    has_charges: ClassVar[bool] = False  # ``atom_charges`` is implemented (the charge kind)

    def energy(self, x: Array, p: Array, topo: Any) -> Array:
        """Total energy (kcal/mol) of one padded structure x (Nmax, 3) A."""
        ...

    def hessian(self, x: Array, p: Array, topo: Any) -> Array:
        """Cartesian Hessian (Nmax, 3, Nmax, 3), kcal/mol/A^2; default: autodiff of ``energy``."""
        return jax.hessian(self.energy)(x, p, topo)

    def energy_gradient_hessian(self, x: Array, p: Array, topo: Any) -> tuple[Array, Array, Array]:
        """(energy, gradient (Nmax, 3), ``hessian``) at x: every Newton step's inputs, in one
        program; default: the autodiff gradient beside ``hessian``."""
        energy, gradient = jax.value_and_grad(self.energy)(x, p, topo)
        return energy, gradient, self.hessian(x, p, topo)

    def hessian_dot(self, x: Array, p: Array, topo: Any, g: Array) -> Array:
        """sum(g * hessian(x, p, topo)), differentiable in p (the eigenmatrix score's gradient);
        an engine may give a cheaper p-gradient, valid while no ``reduction_slots`` is fitted."""
        return jnp.sum(g * self.hessian(x, p, topo))

    def at_geometry(self, x: Array, p: Array, topo: Any) -> Any:
        """The gradient (Nmax, 3) and Hessian at a fixed x as functions of q: an object with
        ``gradient(q)``, ``hessian(q)``, ``diagonal(vectors, q)`` (u_k^T H u_k) and
        ``diagonal_jacobian(vectors, q)`` (its dq), cheap to differentiate in q (the residual
        Jacobian); valid while no ``reduction_slots`` varies. Default: the engine's own at x."""
        return FixedX(self, x, topo)

    def kinks(self, topo: Any) -> Kinks | None:
        """Pairs whose energy has an upward derivative jump (``q2mm.mm3.minimize``); default none."""
        return None

    def reduction_slots(self) -> np.ndarray:
        """Indices into p that ``hessian_dot``'s p-gradient holds fixed; default none."""
        return np.zeros(0, dtype=np.int64)

    def atom_charges(self, p: Array, topo: Any) -> Array:
        """Partial charges (e) of one structure; only where ``has_charges``."""
        raise NotImplementedError(f"{type(self).__name__} has no atomic charges")


def quadratic_forms(vectors: Array, h: Array) -> Array:
    """u_k^T H u_k (d,) for the columns u_k of ``vectors`` (3 Nmax, d), H any (3 Nmax)^2-sized Hessian."""
    n = vectors.shape[0]
    return jnp.einsum("id,ij,jd->d", vectors, h.reshape(n, n), vectors)


class FixedX(NamedTuple):
    """``Engine.at_geometry``'s default: autodiff of the engine's energy at a fixed x."""

    engine: Any
    x: Array
    topo: Any

    def gradient(self, q: Array) -> Array:
        return jax.grad(self.engine.energy)(self.x, q, self.topo)

    def hessian(self, q: Array) -> Array:
        return self.engine.hessian(self.x, q, self.topo)

    def diagonal(self, vectors: Array, q: Array) -> Array:
        """u_k^T H u_k for the columns u_k of ``vectors`` (3 Nmax, d)."""
        return quadratic_forms(vectors, self.hessian(q))

    def diagonal_jacobian(self, vectors: Array, q: Array) -> Array:
        """d(u_k^T H u_k)/dq (d, len(q))."""
        return jax.jacfwd(lambda qq: self.diagonal(vectors, qq))(q)
