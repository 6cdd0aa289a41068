"""The table of energy terms: its two sides (`.fld` rows, engine kinds) and the typed topology agree."""

from __future__ import annotations

import jax
import pytest

from q2mm.mm3 import assign, interactions
from q2mm.mm3.engine import TERMS, MM3Model
from q2mm.mm3.topology import Interactions, Topology
from q2mm.model.termtable import ATOMS_PER_TERM, CLASS_OF_KIND, ENERGY_TERMS, PARAM_KINDS, ROW_KINDS, TERM_OF_CODE
from q2mm.systems import get_spec, load_system


def test_every_engine_kind_has_a_topology_block_an_assignment_kind_and_a_printed_term():
    names = [kind.name for kind in interactions.VALENCE]
    assert set(Topology._fields) == set(names) | {"pair", "vdw_p", "parent", "formal", "pair_slot", "atom_mask"}
    assert set(assign.KINDS) == set(names) | {"vdw", "vdw_pair"}
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


def test_topology_is_a_pytree_sliced_per_structure(sn2_model: MM3Model):
    topo = sn2_model.topology
    assert isinstance(topo, Topology) and isinstance(topo.stretch, Interactions)
    one = sn2_model.structure(1)
    assert isinstance(one, Topology) and one.torsion.atoms.shape == topo.torsion.atoms.shape[1:]
    leaves = jax.tree_util.tree_leaves(topo)
    assert len(leaves) == 4 * 8 + 5 and all(leaf.shape[0] == sn2_model.n_structures for leaf in leaves)
    for kind in interactions.VALENCE:
        block = topo.interactions(kind.name)
        assert block.atoms.shape[-1] == kind.arity and block.p.shape[-1] == kind.width
