"""Scopes on the published rh-enamide force field and the written .fld (only active fields change)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from q2mm.errors import ConfigurationError
from q2mm.io.fld import read_fld
from q2mm.model.forcefield import format_value
from q2mm.optimize import FitProblem, OptimizerOptions, OutputExistsError, fit
from q2mm.optimize.bounds import BoundsOptions, parameter_bounds
from q2mm.optimize.scope import ScopeSpec, align_with_model, parameter_file_scope, resolve_scope
from tests.optimize.problems import RecoveryLoss, RecoveryObjective


@pytest.fixture(scope="module")
def mm3(rh_dir):
    return read_fld(rh_dir / "mm3.fld")


def test_scopes_of_the_published_substructure(mm3):
    opt = resolve_scope(mm3, ScopeSpec("opt"))
    fc = resolve_scope(mm3, ScopeSpec("opt_fc"))
    valence = resolve_scope(mm3, ScopeSpec("opt_valence"))
    assert set(fc.refs) < set(opt.refs) and set(valence.refs) <= set(opt.refs)
    assert {"bond_r0", "angle_theta0"} <= set(opt.kinds)
    assert not {"bond_r0", "angle_theta0"} & set(fc.kinds)
    assert not any(k.startswith("vdw") for k in valence.kinds)
    assert "bond_dipole" not in opt.kinds
    lines = {ref.line for ref in opt.refs}
    assert min(lines) > 1856  # inside the OPT substructure that starts at line 1856
    assert list(opt.refs) == sorted(opt.refs)


def test_explicit_scope_validates_its_pairs(mm3):
    opt = resolve_scope(mm3, ScopeSpec("opt"))
    pair = (opt.refs[3].line, opt.refs[3].field)
    explicit = resolve_scope(mm3, ScopeSpec("explicit", (pair,)))
    assert explicit.refs == (opt.refs[3],) and explicit.values == (mm3.value(opt.refs[3]),)
    with pytest.raises(ConfigurationError, match="line 1"):
        resolve_scope(mm3, ScopeSpec("explicit", ((1, 1),)))
    with pytest.raises(ConfigurationError, match="unknown parameter scope"):
        ScopeSpec("everything")


def test_a_parameter_file_scope_keeps_each_range_with_its_parameter(mm3, tmp_path):
    """Lines in any order; each range stays with its (line, field) and narrows that parameter's
    bounds (the published Rh-enamide OPT rows: 1861 is a bond, 1864 field 1 its r0 2.3388)."""
    path = tmp_path / "param_eig.txt"
    path.write_text("1864 1 2.30 2.35\n1861 2 pos\n1860 2\n")
    scope = parameter_file_scope(path)
    scoped = resolve_scope(mm3, scope)
    assert scope.label() == "file(param_eig.txt, 3)"
    assert [(r.line, r.field) for r in scoped.refs] == [(1860, 2), (1861, 2), (1864, 1)]
    assert scoped.ranges == ((-np.inf, np.inf), (0.0, np.inf), (2.30, 2.35))
    start = np.array(scoped.values)
    free_lower, free_upper = parameter_bounds(start, scoped.kinds, BoundsOptions())
    lower, upper = parameter_bounds(start, scoped.kinds, BoundsOptions(), ranges=scoped.ranges)
    np.testing.assert_array_equal(lower[:2], free_lower[:2])  # a sign range inside the +/-20 % box changes nothing
    assert (lower[2], upper[2]) == (max(free_lower[2], 2.30), 2.35) and free_upper[2] > 2.35
    with pytest.raises(ConfigurationError, match=r"line 1864 field 1 \(bond_r0\) starts at 2.3388, outside the range"):
        parameter_bounds(
            start,
            scoped.kinds,
            BoundsOptions(),
            ("line 1860 field 2", "line 1861 field 2", "line 1864 field 1"),
            ((-np.inf, np.inf),) * 2 + ((2.0, 2.2),),
        )
    path.write_text("9999 2\n")
    with pytest.raises(ConfigurationError, match="param_eig.txt: .*line 9999"):
        resolve_scope(mm3, parameter_file_scope(path))


def test_align_with_model_drops_unused_parameters(mm3):
    opt = resolve_scope(mm3, ScopeSpec("opt"))
    model_refs = list(reversed(opt.refs[2:]))
    indices, kept, unused = align_with_model(opt, model_refs)
    assert unused == opt.refs[:2]
    assert [model_refs[i] for i in indices] == list(kept.refs)


def recovery_problem(ff, scope: str = "opt") -> FitProblem:
    scoped = resolve_scope(ff, ScopeSpec(scope))
    start = np.array(scoped.values)
    lower, upper = parameter_bounds(start, scoped.kinds, BoundsOptions())
    u = np.random.default_rng(3).uniform(0.2, 0.8, size=start.size)
    target = lower + u * (upper - lower)
    objective = RecoveryObjective(target, upper - lower, scoped.kinds)
    return FitProblem(scoped.refs, scoped.kinds, start, objective, RecoveryLoss(objective), forcefield=ff, scope=scope)


def test_fit_and_write_changes_only_active_fields(mm3, tmp_path, rh_dir):
    input_bytes = (rh_dir / "mm3.fld").read_bytes()
    problem = recovery_problem(mm3)
    result = fit(problem, OptimizerOptions())
    assert result.status == "improved"
    np.testing.assert_allclose(result.p_final, problem.objective.target, atol=1e-4)

    fld_path, json_path = result.write(tmp_path / "run")
    assert (rh_dir / "mm3.fld").read_bytes() == input_bytes
    old = input_bytes.decode().splitlines(keepends=True)
    new = fld_path.read_bytes().decode().splitlines(keepends=True)
    assert len(old) == len(new)
    active_lines = {ref.line for ref in problem.refs}
    changed = {i + 1 for i, (a, b) in enumerate(zip(old, new)) if a != b}
    assert changed and changed <= active_lines
    for i in changed:
        a, b = old[i - 1], new[i - 1]
        diff_cols = {c for c in range(max(len(a), len(b))) if a[c : c + 1] != b[c : c + 1]}
        fields = {ref.field for ref in problem.refs if ref.line == i}
        allowed = set().union(*(range(*{1: (23, 33), 2: (34, 44), 3: (45, 55)}[f]) for f in fields))
        assert diff_cols <= allowed, f"line {i} changed outside its active fields"
    reread = read_fld(fld_path)
    for ref, value in result.final_values().items():
        assert reread.value(ref) == pytest.approx(value, abs=5e-5)

    summary = json.loads(json_path.read_text())
    assert summary["output_fld"] == str(fld_path) and summary["input_fld"].endswith("mm3.fld")
    assert summary["scope"] == "opt" and len(summary["parameters"]) == len(problem.refs)
    with pytest.raises(OutputExistsError):
        result.write(tmp_path / "run")


def test_build_problem_with_a_qfuerza_start_overwrites_only_active_values(mm3):
    from q2mm.optimize import build_problem

    opt = resolve_scope(mm3, ScopeSpec("opt_fc"))
    frozen_ref = next(r for r in mm3.active_refs() if r not in set(opt.refs))
    model_refs = [frozen_ref, *opt.refs[1:]]  # the training set does not use opt.refs[0]
    estimates = {ref: 0.5 for ref in opt.refs[1:4]}
    seen = {}

    def evaluators(active):
        seen["active"] = active
        objective = RecoveryObjective(np.ones(len(active)), np.ones(len(active)), ("bond_k",) * len(active))
        return objective, RecoveryLoss(objective)

    problem = build_problem(mm3, ScopeSpec("opt_fc"), model_refs, evaluators, start="qfuerza", start_values=estimates)
    assert problem.unused_refs == (opt.refs[0],)
    assert seen["active"] == list(range(1, len(model_refs)))
    assert problem.refs == opt.refs[1:] and problem.start == "qfuerza"
    np.testing.assert_array_equal(problem.start_values[:3], 0.5)
    np.testing.assert_array_equal(problem.start_values[3:], problem.file_values[3:])
    assert [r["why"] for r in problem.start_record] == ["no estimate: file value kept"] * (len(problem.refs) - 3)
    with pytest.raises(ConfigurationError, match="outside the active set"):
        build_problem(mm3, ScopeSpec("opt_fc"), model_refs, evaluators, start="qfuerza", start_values={frozen_ref: 1.0})


def test_a_skipped_estimate_keeps_the_file_value(mm3):
    """A start record that explains an active value without an estimate (QFUERZA skipped it)
    keeps the file value and adds no second note (it raised KeyError before)."""
    from q2mm.optimize import build_problem

    opt = resolve_scope(mm3, ScopeSpec("opt_fc"))
    skipped = opt.refs[1]
    record = [{"line": skipped.line, "field": skipped.field, "old": 1.0, "new": 1.0, "why": "skipped: no data"}]

    def evaluators(active):
        objective = RecoveryObjective(np.ones(len(active)), np.ones(len(active)), ("bond_k",) * len(active))
        return objective, RecoveryLoss(objective)

    problem = build_problem(
        mm3,
        ScopeSpec("opt_fc"),
        opt.refs,
        evaluators,
        start="qfuerza",
        start_values={opt.refs[0]: 0.5},
        start_record=record,
    )
    assert problem.start_values[0] == 0.5 and problem.start_values[1] == problem.file_values[1]
    assert [r["why"] for r in problem.start_record].count("skipped: no data") == 1
    assert len(problem.start_record) == len(problem.refs) - 1


def test_options_from_a_config_mapping():
    options = OptimizerOptions.from_mapping({"method": "powell", "bounds": {"fc_fraction": 0.3}}, ratio_tol=None)
    assert options.bounds.fc_fraction == 0.3 and options.ratio_tol is None and options.method == "powell"
    with pytest.raises(ConfigurationError, match="unknown optimizer option"):
        OptimizerOptions.from_mapping({"methd": "powell"})


def test_logged_score_is_the_score_of_the_written_file(mm3, tmp_path):
    """The .fld holds 4-7 decimals: the final score, R2 and ratio are re-measured on the file as
    written and read back; the optimizer's own (unrounded) score is kept beside them."""
    problem = recovery_problem(mm3)
    result = fit(problem, OptimizerOptions())
    fld_path = result.write_fld(tmp_path / "run")
    written = read_fld(fld_path)
    on_file = np.array([written.value(ref) for ref in problem.refs])
    assert not np.array_equal(on_file, result.p_final)  # the optimum has more decimals than the field holds
    logged = result.as_written(written, problem.objective, problem.loss)
    np.testing.assert_array_equal(logged.p_final, on_file)
    assert logged.final.score == problem.objective(on_file).score != result.final.score
    assert logged.ratio_final == pytest.approx(
        problem.loss.value(on_file) / problem.objective(on_file).score, rel=1e-12
    )
    assert logged.unrounded["score_final"] == result.final.score
    assert logged.unrounded["values"] == [float(v) for v in result.p_final]
    assert 0 < logged.unrounded["max_abs_rounding"] <= 5e-5 * max(1.0, float(np.max(np.abs(on_file))))

    summary = json.loads(logged.write_summary(fld_path).read_text())
    assert summary["score_final"] == logged.final.score and summary["unrounded"]["score_final"] == result.final.score
    assert [row["final"] for row in summary["parameters"]] == on_file.tolist()
    from q2mm.tracking.record import metrics_from_summary

    metrics = metrics_from_summary(summary)
    assert metrics["score_final"] == logged.final.score and metrics["score_final_unrounded"] == result.final.score
    assert logged.as_written(written, problem.objective, problem.loss) is logged  # already the file's values


def test_a_rounding_past_a_score_cliff_is_replaced_by_a_better_one(mm3, tmp_path):
    """Issue 17: where the nearest rounding of the fitted values lands past a cliff (on
    rh-enamide a structure whose minimization switches minimum), the file holds another
    rounding of the same values (each down or up at its written decimals) that scores better,
    and the summary says what the nearest one scored. Without a cliff the nearest stays."""
    problem = recovery_problem(mm3)
    result = fit(problem, OptimizerOptions())
    nearest = np.array([float(format_value(v)) for v in result.p_final])
    assert not np.array_equal(nearest, result.p_final)
    smooth = problem.objective

    def cliff(p):
        evaluation = smooth(p)
        past = np.array_equal(np.asarray(p, float), nearest)
        return dataclasses.replace(evaluation, score=evaluation.score + 1000.0) if past else evaluation

    fld_path = result.write_fld(tmp_path / "cliff")
    logged = result.best_written(fld_path, cliff, problem.loss)
    written = read_fld(fld_path)
    on_file = np.array([written.value(ref) for ref in problem.refs])
    np.testing.assert_array_equal(logged.p_final, on_file)
    assert not np.array_equal(on_file, nearest)
    assert logged.final.score == cliff(on_file).score < cliff(nearest).score
    assert np.all(np.abs(on_file - result.p_final) <= 1e-4)  # one step of the written decimals at most
    assert logged.unrounded["nearest_rounding_score"] == cliff(nearest).score
    assert logged.unrounded["roundings_tried"] == 8  # the optimizer's own score is out of reach here

    smooth_path = result.write_fld(tmp_path / "smooth")
    kept = result.best_written(smooth_path, smooth, problem.loss)  # separable: the nearest is best
    np.testing.assert_array_equal(kept.p_final, nearest)
    assert kept.final.score == smooth(nearest).score
