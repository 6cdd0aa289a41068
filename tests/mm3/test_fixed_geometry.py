"""The fixed-geometry gradient and Hessian (q2mm.mm3.fixed_geometry) against the engine's own
(autodiff of the energy, the per-interaction Hessian assembly): values, and their p-tangents
against central differences of the engine's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2mm.mm3 import fixed_geometry
from q2mm.mm3.engine import MM3Model
from q2mm.systems import load_system


@jax.jit
def _fixed(x, p, t, u, topo):
    """(gradient, Hessian, u_k^T H u_k) at x as functions of p and their tangents along t."""
    f = fixed_geometry.factors(x, p, topo)

    def of(q):
        return (
            fixed_geometry.gradient(f, q, topo),
            fixed_geometry.hessian(f, q, topo),
            fixed_geometry.diagonal(f, u, q, topo),
        )

    return jax.jvp(of, (p,), (t,)), fixed_geometry.diagonal_jacobian(f, u, p, topo)


def _diagonal(hessian, u):
    n = u.shape[0]
    return lambda x, p, topo: jnp.einsum("id,ij,jd->d", u, hessian(x, p, topo).reshape(n, n), u)


@pytest.mark.parametrize("system", ["ethane"])
def test_gradient_hessian_and_their_parameter_tangents_equal_the_engine(system, data_root):
    """Every parameter varies except the hydrogen reduction factors (the module holds them);
    ethane has reduced hydrogens and vdW/electrostatic pairs, sn2 special vdW pair rows."""
    if system == "ethane" and not (data_root / "ethane").is_dir():
        pytest.skip("ethane missing from the data root")
    ts = load_system(system, data_root)
    model = MM3Model.build(ts.molecules, ts.forcefield)
    rng = np.random.default_rng(3)
    p = model.p0 * (1.0 + 0.05 * rng.standard_normal(model.p0.size))
    t = rng.standard_normal(model.p0.size) * np.maximum(np.abs(model.p0), 0.1)
    t[model.reduction_slots()] = 0.0
    step = 1e-5
    for k in range(model.n_structures):
        x = model.coords[k] + 0.02 * jnp.asarray(rng.standard_normal(model.coords[k].shape))  # off any minimum
        args = (x, jnp.asarray(p), model.structure(k))
        u = jnp.asarray(rng.standard_normal((x.size, 7)))
        ((g, h, diag), (dg, dh, ddiag)), diag_jac = _fixed(x, jnp.asarray(p), jnp.asarray(t), u, model.structure(k))
        # the diagonal's Jacobian (per-interaction forward mode, pulled back through the
        # parameter gathering) along t is forward mode's tangent
        np.testing.assert_allclose(diag_jac @ t, ddiag, rtol=0, atol=1e-13 * np.abs(ddiag).max())
        grad, hess = model.compiled("gradient"), model.compiled("hessian")
        for mine, engine, tangent in ((g, grad, dg), (h, hess, dh), (diag, _diagonal(hess, u), ddiag)):
            ref = np.asarray(engine(*args))
            np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
            up, down = (np.asarray(engine(x, jnp.asarray(p + s * step * t), args[2])) for s in (1, -1))
            fd = (up - down) / (2 * step)
            assert np.abs(fd).max() > 0
            np.testing.assert_allclose(tangent, fd, rtol=0, atol=1e-7 * np.abs(fd).max())
