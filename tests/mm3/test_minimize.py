"""Trust-region Newton minimizer: reaches a gradient norm of 1e-8 kcal/mol/A on the real
rh-enamide transition-state structures, keeps padded atoms frozen, and says when it fails."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.errors import ConvergenceError
from q2mm.io.fld import read_fld
from q2mm.io.mae import read_mae
from q2mm.mm3.engine import MM3Model
from q2mm.mm3.minimize import minimize, minimize_coords, rigid_modes


@pytest.fixture(scope="module")
def model(rh_dir) -> MM3Model:
    molecules = read_mae(rh_dir / "rh_enamide_training_set.mae", rh_dir / "atom.typ")
    return MM3Model.build(molecules, read_fld(rh_dir / "mm3.fld"))


def _check_minimum(model: MM3Model, k: int) -> None:
    result = minimize(model, k, gtol=1e-8).require()
    n = model.molecules[k].n_atoms
    assert result.converged and result.gradient_norm < 1e-8
    assert result.energy < model.energy_of(k)
    assert np.linalg.norm(model.gradient_of(k, result.x)) < 1e-8
    # padded atoms never move
    np.testing.assert_array_equal(result.x[n:], np.asarray(model.coords[k])[n:])
    # a minimum: no negative curvature beyond the six rigid modes
    evals = np.linalg.eigvalsh(model.hessian_of(k, result.x))
    assert evals[6:].min() > 0 and np.abs(evals[:6]).max() < 1e-4 * evals.max()


def test_padded_structure_reaches_1e8(model):
    assert model.molecules[2].n_atoms < model.coords.shape[1]  # structure 3: 38 of 62 atoms
    _check_minimum(model, 2)


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1, 3, 4, 5, 6, 7, 8])
def test_every_training_structure_reaches_1e8(model, k):
    _check_minimum(model, k)


def test_reports_failure_instead_of_pretending(model):
    result = minimize(model, 2, max_iter=1)
    assert not result.converged and "not converged" in result.message
    with pytest.raises(ConvergenceError):
        result.require()


def test_rigid_modes_are_six_or_five_for_a_line():
    rng = np.random.default_rng(0)
    assert rigid_modes(rng.normal(size=(5, 3))).shape == (15, 6)
    line = np.outer(np.arange(4.0), [0.3, 0.4, 1.2])
    v = rigid_modes(line)
    assert v.shape == (12, 5)
    np.testing.assert_allclose(v.T @ v, np.eye(5), atol=1e-12)


def test_spring_tetrahedron_converges_quadratically():
    import q2mm.jaxconfig  # noqa: F401
    import jax
    import jax.numpy as jnp

    pairs = jnp.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])

    def energy(x):
        d = jnp.linalg.norm(x[pairs[:, 0]] - x[pairs[:, 1]], axis=1)
        return 0.5 * jnp.sum((d - 1.5) ** 2)

    x0 = np.array([[0.0, 0.0, 0.0], [1.4, 0.1, 0.0], [0.6, 1.3, 0.2], [0.7, 0.5, 1.1]])
    result = minimize_coords(lambda x: float(energy(x)), lambda x: np.asarray(jax.grad(energy)(x)),
                             lambda x: np.asarray(jax.hessian(energy)(x)), x0)
    assert result.converged and result.gradient_norm < 1e-8 and result.iterations < 15
    assert result.energy < 1e-16
