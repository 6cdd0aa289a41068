"""The open Pd-allyl amination set (pd-allyl-open): contents, force field coverage, evaluation, a fit.

Checksums, energies, frequencies and imaginary counts of the shipped files are checked with the
other embedded sets in tests/qm/test_generated_files.py.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from q2mm.paths import PACKAGE_DATA
from q2mm.qm.generate_pd_allyl_open import TARGETS
from q2mm.systems import get_spec, load_system

DIRECTORY = PACKAGE_DATA / "pd-allyl-open"


def subset(*titles: str):
    """The training set reduced to the named structures."""
    training = load_system("pd-allyl-open")
    return dataclasses.replace(training, molecules=tuple(m for m in training.molecules if m.title in titles))


def metadata() -> dict:
    return json.loads((DIRECTORY / "metadata.json").read_text())


def test_every_planned_structure_is_shipped_dropped_or_pending():
    meta = metadata()
    shipped, dropped, pending = set(meta["structures"]), set(meta["dropped"]), set(meta["pending"])
    assert shipped | dropped | pending == {t.name for t in TARGETS}
    assert not shipped & dropped and not shipped & pending and not dropped & pending
    ts = [name for name in shipped if meta["structures"][name]["transition_state"]]
    assert len(ts) >= 12 and len(shipped) - len(ts) >= 4
    # the variation a TSFF training set needs: ligands (both sites of the mixed ones), allyls, amines
    assert {meta["structures"][n]["ligand"] for n in ts} >= {"ph3", "ph3pf3", "pf3ph3", "pme3ph3", "dppe", "pn", "np"}
    assert {meta["structures"][n]["allyl"] for n in ts} == {"allyl", "crotyl-sub", "crotyl-unsub", "dimethylallyl"}
    assert {meta["structures"][n]["amine"] for n in ts} >= {"nh3", "menh2"}
    # competing TSs: same reactants, different attacked terminus, equal composition
    assert len(meta["groups"]) >= 3
    for members in meta["groups"].values():
        assert len({tuple(sorted(meta["structures"][m]["elements"])) for m in members}) == 1


def test_checks_recorded_for_every_structure():
    """Symmetric FD Hessians, two FD steps agreeing, the TS mode is the forming C...N bond."""
    for name, record in metadata()["structures"].items():
        checks = record["checks"]
        assert checks["max_relative_asymmetry"] < 1e-3, name
        assert checks["max_frequency_difference_cm1"] < 5.0, name
        assert checks["n_imaginary"] == checks["n_imaginary_other_step"] == int(record["transition_state"])
        assert record["timing"]["wall_s"] > 0 and record["timing"]["gradients_total"] > 0
        if record["transition_state"]:
            assert 1.6 < checks["cn_distance_angstrom"] < 3.0
            assert checks["ts_mode_cn_stretch"] >= checks["ts_mode_largest_other_stretch"]


def test_transition_states_carry_one_partial_c_n_bond_and_cationic_pd():
    training = load_system("pd-allyl-open")
    assert len(training.molecules) == len(metadata()["structures"])
    for molecule in training.molecules:
        assert molecule.charge == 1 and molecule.atom_types[0] == "Pd"
        partial_cn = [
            b
            for b in molecule.bonds
            if b.order == 0.0 and {molecule.elements[b.i], molecule.elements[b.j]} == {"C", "N"}
        ]
        assert len(partial_cn) == int(molecule.properties["transition_state"]), molecule.title


def test_every_interaction_has_parameters_and_cis_trans_angles_are_told_apart():
    from q2mm.mm3.interactions import assign_parameters

    training = load_system("pd-allyl-open")
    for molecule in training.molecules:
        assignment = assign_parameters(molecule, training.forcefield)  # raises on a missing row
        for bend in assignment.of("bend"):
            i, centre, k = bend.atoms
            ends = {molecule.elements[i], molecule.elements[k]}
            if centre == 0 and "C" in ends and ends & {"P", "N"} and bend.source.startswith("substructure"):
                u, v = molecule.coords[i] - molecule.coords[0], molecule.coords[k] - molecule.coords[0]
                angle = np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))
                # a cis row (100) for a cis angle, a trans row (160) for a trans one, 130 for C(central)
                assert abs(angle - bend.values[0]) < 40.0, (molecule.title, bend.atoms, angle, bend.values[0])


def test_system_is_registered_and_composes():
    from hydra import compose, initialize_config_dir

    from q2mm.config import check_config, register_configs
    from q2mm.paths import PROJECT_ROOT

    register_configs()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["system=pd-allyl-open", "start=qfuerza"])
    check_config(cfg)
    assert cfg.system.name == "pd-allyl-open" and cfg.system.forcefield == get_spec("pd-allyl-open").forcefield


@pytest.mark.slow
def test_a_ground_state_and_a_ts_evaluate_at_the_start():
    """The reference objective minimizes both from the QM geometry and scores every enabled kind."""
    from q2mm.compose import fit_problem as build_fit_problem

    problem = build_fit_problem(subset("gs-ph3-allyl", "ts-ph3-allyl-nh3"), scope="opt", start="qfuerza")
    evaluation = problem.objective(problem.start_values)
    assert np.isfinite(evaluation.score) and evaluation.score > 0
    assert {"eig_diag", "bond_length", "bond_angle", "torsion"} <= {
        k for k, r in evaluation.by_kind.items() if r.score > 0
    }
    assert set(evaluation.by_kind["eig_diag"].structure) == {0, 1}


@pytest.mark.slow
def test_quick_fit_of_a_subset_lowers_the_score():
    """GS + TS with PF3 (QFUERZA start, 3 L-BFGS-B iterations): the score falls, gradients are analytic."""
    from q2mm.compose import fit_problem as build_fit_problem
    from q2mm.optimize import OptimizerOptions, fit

    problem = build_fit_problem(subset("gs-pf3ph3-allyl", "ts-ph3pf3-allyl-nh3"), scope="opt", start="qfuerza")
    # above STEPWISE_MAX_ATOMS: JaxLoss minimizes in one loop, whose program is the reference's engine
    assert not problem.loss.stepwise_minimize and problem.objective.engine_in_minimizer
    alone = build_fit_problem(subset("gs-pf3ph3-allyl", "ts-ph3pf3-allyl-nh3"), scope="opt", share_engine=False)
    assert not alone.objective.engine_in_minimizer  # where no JaxLoss runs (q2mm.evaluate ratio_tol=null)
    result = fit(problem, OptimizerOptions(maxiter=3))
    assert result.jac_resolved == "jax" and abs(result.ratio_initial - 1.0) < 1e-6
    assert result.status == "improved" and result.final.score < result.initial.score


def test_q2mm_check_finds_the_system_fittable_with_every_active_parameter_used():
    from q2mm.check import check_training_set

    report = check_training_set(load_system("pd-allyl-open"), "opt")
    assert report.fittable, report.problems
    assert "active parameters (opt): 100 used by the structures, of 100 in scope" in report.text()
