"""The table of energy terms: one entry per kind carries its `.fld` rows, matching, topology block and energy."""

from __future__ import annotations

import jax
import pytest

from q2mm.mm3 import assign, interactions
from q2mm.mm3.engine import TERMS, MM3Model
from q2mm.mm3.topology import Interactions, Topology
from q2mm.model.termtable import (
    ATOMS_PER_TERM,
    CLASS_OF_KIND,
    ENERGY_TERMS,
    PARAM_KINDS,
    ROW_KIND,
    ROW_KINDS,
    TERM_OF_CODE,
)
from q2mm.systems import get_spec, load_system


def test_every_engine_kind_names_its_rows_its_matching_and_a_printed_term():
    names = [kind.name for kind in interactions.VALENCE]
    assert len(set(names)) == len(names) and not set(names) & set(assign.NONBONDED_KINDS)
    assert all(kind.row is ROW_KIND[kind.row.term] and callable(kind.assign) for kind in interactions.VALENCE)
    assert {kind.term for kind in interactions.VALENCE} <= set(TERMS) == {name for name, _ in ENERGY_TERMS}


def test_fld_views_are_derived_from_one_entry_per_row_kind():
    assert len({r.term for r in ROW_KINDS}) == len(ROW_KINDS)
    assert TERM_OF_CODE["54"] == "torsion_cont" and ATOMS_PER_TERM["improper"] == 4 and "vdw" not in ATOMS_PER_TERM
    assert PARAM_KINDS[("angle", 3)] == ("bend_bend_k", "mdyn A/rad^2")
    assert {kind for kind, _unit in PARAM_KINDS.values()} == set(CLASS_OF_KIND)


@pytest.fixture(scope="module")
def sn2_model() -> MM3Model:
    training_set = load_system(get_spec("sn2"))  # shipped with the package
    return MM3Model.build(training_set.molecules, training_set.forcefield)


def test_assignments_hold_the_table_kinds_in_order_each_from_its_own_row_kind(sn2_model: MM3Model):
    names = [kind.name for kind in interactions.VALENCE]
    for assignment in sn2_model.assignments:
        assert list(assignment.interactions) == names + list(assign.NONBONDED_KINDS)
        for kind in interactions.VALENCE:
            rows = {sn2_model.ff.row(it.fld_line).term for it in assignment.of(kind.name)}
            assert rows <= {kind.row.term}, kind.name
    assert all(any(a.of(kind.name) for a in sn2_model.assignments) for kind in interactions.VALENCE[:4])


def test_topology_is_a_pytree_with_one_block_per_table_entry(sn2_model: MM3Model):
    topo = sn2_model.topology
    assert isinstance(topo, Topology) and len(topo.valence) == len(interactions.VALENCE)
    assert all(isinstance(block, Interactions) for block in topo.valence)
    one = sn2_model.structure(1)
    torsion = interactions.VALENCE[4]
    assert isinstance(one, Topology) and torsion.block(one).atoms.shape == torsion.block(topo).atoms.shape[1:]
    leaves = jax.tree_util.tree_leaves(topo)
    assert len(leaves) == 4 * (len(interactions.VALENCE) + 1) + 5
    assert all(leaf.shape[0] == sn2_model.n_structures for leaf in leaves)
    for kind in interactions.VALENCE:
        block = kind.block(topo)
        assert block.atoms.shape[-1] == kind.arity and block.p.shape[-1] == kind.width
        assert int(block.mask.sum()) == sum(len(a.of(kind.name)) for a in sn2_model.assignments)


def test_a_kind_no_structure_has_gets_no_rows_and_compiles_to_nothing(sn2_model: MM3Model):
    """sn2 has no torsions, torsion-stretch, out-of-plane rows or nonbonded pairs: their blocks
    have zero rows (one padded row each made the compiled programs 2-4x larger, the torsions'
    second derivatives included), and the energy and assembled Hessian still equal autodiff."""
    import jax.numpy as jnp
    import numpy as np

    from q2mm.mm3.hessian import hessian

    topo = sn2_model.topology
    absent = {kind.name for kind in interactions.VALENCE if not any(a.of(kind.name) for a in sn2_model.assignments)}
    assert absent == {"torsion", "torsion_stretch", "improper"}
    assert all(kind.block(topo).atoms.shape[1] == 0 for kind in interactions.VALENCE if kind.name in absent)
    assert topo.pair.atoms.shape[1] == 0
    x, p, one = sn2_model.arguments(0)
    x = x + 0.02 * jnp.sin(jnp.arange(x.size).reshape(x.shape))
    assert np.isfinite(float(jax.jit(sn2_model.energy)(x, p, one)))
    assembled, autodiff = jax.jit(hessian)(x, p, one), jax.jit(jax.hessian(sn2_model.energy))(x, p, one)
    np.testing.assert_allclose(assembled, autodiff, rtol=0, atol=1e-10 * float(jnp.max(jnp.abs(autodiff))))
