"""The engine contract (q2mm.objective.contract.Engine): the MM3* engine implements every method;
a small engine inherits the defaults, which equal autodiff of its energy."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2mm.mm3.engine import MM3Model
from q2mm.objective.contract import Engine


def test_mm3_engine_implements_every_method_of_the_contract():
    methods = [name for name, _ in inspect.getmembers(Engine, inspect.isfunction) if not name.startswith("_")]
    assert {"energy", "energy_gradient_hessian", "hessian", "hessian_dot", "kinks", "reduction_slots"} <= set(methods)
    assert "atom_charges" in methods
    for name in methods:
        assert getattr(MM3Model, name) is not getattr(Engine, name), name
    assert MM3Model.has_charges and {"p0", "coords", "atom_mask", "topology"} <= set(MM3Model.__dataclass_fields__)


def test_defaults_of_a_small_engine(sn2_model):
    assert not sn2_model.has_charges and sn2_model.kinks(None) is None and sn2_model.reduction_slots().size == 0
    x, p = jnp.asarray(sn2_model.coords[0]), jnp.asarray(sn2_model.p0)
    topo = jax.tree.map(lambda a: a[0], sn2_model.topology)
    h = np.asarray(sn2_model.hessian(x, p, topo))
    np.testing.assert_allclose(h, np.asarray(jax.hessian(sn2_model.energy)(x, p, topo)), rtol=0, atol=0)
    g = np.random.default_rng(1).normal(size=h.shape)
    assert float(sn2_model.hessian_dot(x, p, topo, g)) == pytest.approx(np.sum(g * h), rel=1e-13)
    energy, gradient, hessian = sn2_model.energy_gradient_hessian(x, p, topo)
    assert float(energy) == float(sn2_model.energy(x, p, topo))
    np.testing.assert_array_equal(gradient, jax.grad(sn2_model.energy)(x, p, topo))
    np.testing.assert_array_equal(hessian, h)
