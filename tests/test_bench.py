"""The benchmark harness: statistics, arguments, config composition, tables, and a smoke run on sn2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from q2mm import bench
from q2mm.benchmarks import report, setup
from q2mm.benchmarks.measure import sample_indices
from q2mm.benchmarks.timing import Stats, interleaved, machine_facts, peak_rss_mib, repeat
from q2mm.paths import PROJECT_ROOT


def test_stats_median_min_max_and_scaling():
    s = Stats.of([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.min, s.max, s.n) == (2.5, 1.0, 10.0, 4)
    doubled = s.scaled(2.0)
    assert (doubled.median, doubled.min, doubled.max) == (5.0, 2.0, 20.0)
    with pytest.raises(ValueError):
        Stats.of([])


def test_repeat_times_every_call():
    calls = []
    s = repeat(lambda: calls.append(1), 4)
    assert len(calls) == 4 and s.n == 4 and 0.0 <= s.min <= s.median <= s.max
    with pytest.raises(ValueError):
        repeat(lambda: None, 0)


def test_interleaved_times_one_call_of_each_per_round():
    calls = []
    a, b = interleaved([lambda: calls.append("a"), lambda: calls.append("b")], 3)
    assert calls == ["a", "b"] * 3 and a.n == b.n == 3
    with pytest.raises(ValueError):
        interleaved([lambda: None], 0)


def test_sample_indices_spread_over_the_parameters():
    assert sample_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_indices(3, 8).tolist() == [0, 1, 2]
    assert sample_indices(96, 1).tolist() == [0]


def test_machine_facts_report_float64_and_cpus():
    import q2mm.jaxconfig  # noqa: F401

    facts = machine_facts()
    assert facts["float64"] is True
    assert facts["cpu_count"] >= 1 and 1 <= facts["cpus_usable"] <= facts["cpu_count"]
    assert len(facts["load_average"]) == 3 and facts["jax_backend"] in facts["jax_device"]
    assert peak_rss_mib() > 10.0


def test_arguments_mix_hydra_overrides_and_flags():
    args = bench.parse_args(
        ["system=rh-enamide", "--json", "out.json", "scope=opt", "--structures", "1,3,9", "--no-fit"]
    )
    assert args.overrides == ["system=rh-enamide", "scope=opt"]
    assert args.structures == [1, 3, 9] and args.scaling and args.no_fit
    assert str(args.json) == "out.json"
    assert not bench.parse_args(["system=sn2"]).scaling
    for bad in (["--structures", "1,x"], ["--structures", "0"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_config_is_the_runners_composition():
    cfg = setup.compose_config(["system=sn2", "optimizer=adam", "ratio_tol=null"])
    assert cfg.system.name == "sn2" and cfg.optimizer.method == "adam" and cfg.ratio_tol is None
    from hydra.errors import HydraException

    with pytest.raises(HydraException):
        setup.compose_config(["system=no-such-system"])


def test_scaling_subsets_cut_the_training_set():
    training_set = setup.load_training_set(setup.compose_config(["system=sn2"]))
    sizes = [m.n_atoms for m in training_set.molecules]
    subsets = bench.scaling_subsets(training_set, [1, 2], per_size=True)
    labels = [label for label, _ in subsets]
    assert labels[:2] == ["first 1", "first 2"]
    assert [len(s.molecules) for _, s in subsets[:2]] == [1, 2]
    assert sorted(s.molecules[0].n_atoms for _, s in subsets[2:]) == sorted(set(sizes))
    ((label, repeated),) = bench.scaling_subsets(training_set, [5], per_size=False)
    assert label == "2 repeated to 5"
    assert [m.title for m in repeated.molecules] == [training_set.molecules[i % 2].title for i in range(5)]
    scope = setup.every_parameter_scope(training_set)
    assert len(scope) == len(set(scope)) > 0 and all(f in (1, 2, 3) for _, f in scope)


def _results(hessian_s: float, vg_s: float, fd_s: float, fit_s: float) -> dict:
    one = lambda v: Stats.of([v, v * 1.1, v * 0.9])  # noqa: E731
    return {
        "command": "python -m q2mm.bench system=x",
        "machine": {
            "cpus_usable": 2,
            "cpu_count": 2,
            "cpu_model": "cpu",
            "load_average": [1.0, 2.0, 3.0],
            "python": "3.11",
            "jax": "0.10.2",
            "jaxlib": "0.10.2",
            "jax_device": "cpu:cpu",
            "float64": True,
        },
        "load_average_end": [1.0, 1.0, 1.0],
        "system": {"name": "x", "n_structures": 9, "atoms_total": 470, "n_active": 96, "largest_atoms": 62},
        "engine": {"energy": one(1e-4), "gradient": one(2e-4), "hessian": one(hessian_s)},
        "objectives": {
            "objective": one(3.0),
            "jaxloss_vg": one(vg_s),
            "jaxloss_vg_warm": one(vg_s / 2),
            "score_objective": 1.0,
            "score_jaxloss": 1.0,
        },
        "fd": {"params_measured": [0, 95], "n_free": 96, "evaluations": 193, "gradient": one(fd_s)},
        "fd_ratio": fd_s / vg_s,
        "memory": {"peak_rss_mib": 900.0, "children_peak_rss_mib": 0.0},
        "fit": {
            "total_s": fit_s,
            "method": "lbfgsb",
            "jac_resolved": "jax",
            "n_iterations": 6,
            "n_loss_evals": 9,
            "n_objective_evals": 3,
            "wall_time_s": fit_s - 5.0,
            "compile_time_s": 4.0,
            "score_initial": 2.0,
            "score_final": 1.0,
            "score_delta_pct": -50.0,
            "status": "improved",
        },
    }


def test_targets_are_judged_from_the_medians():
    met = {t.name: t.met for t in report.targets(_results(0.010, 1.0, 100.0, 100.0))}
    assert all(met.values()) and len(met) == 4
    missed = {t.name: t.met for t in report.targets(_results(0.060, 3.0, 90.0, 400.0))}
    assert not any(missed.values())


def test_render_prints_every_section_as_markdown():
    text = report.render(_results(0.0123, 1.5, 150.0, 200.0))
    assert "| engine hessian, largest structure (62 atoms) | 12.3 ms | 11.1 ms | 13.5 ms | 3 |" in text
    assert "100.0x" in text and "-50.00 %" in text and "float64 on" in text
    assert "| full fit, end to end | < 5 min | 200.00 s | met |" in text
    data = json.loads(json.dumps(report.jsonable(_results(0.01, 1.0, 50.0, 10.0))))
    assert data["engine"]["hessian"]["median"] == pytest.approx(0.01)


def test_render_leaves_out_sections_not_measured():
    results = _results(0.01, 1.0, 80.0, 30.0)
    for section in ("engine", "objectives", "fd", "fit"):
        del results[section]
    results["scaling"] = [
        {
            "label": "first 1",
            "n_structures": 1,
            "atoms_total": 36,
            "atoms_max": 36,
            "n_active": 50,
            "compile_s": 60.0,
            "first_call_s": 2.0,
            "jaxloss_vg": Stats.of([0.2, 0.3]),
        }
    ]
    text = report.render(results)
    assert (
        "| first 1 | 1 | 36 | 36 | 50 | 60.00 s | 2.00 s | 250.0 ms | 200.0 ms | 300.0 ms | 2 | - | - | - | - |" in text
    )
    results["scaling"][0].update(
        jacobian_compile_s=20.0,
        jacobian=Stats.of([0.5, 0.5]),
        fit={
            "wall_time_s": 30.0,
            "method": "least-squares",
            "n_iterations": 7,
            "score_initial": 2.0,
            "score_final": 1.0,
        },
    )
    text = report.render(results)
    assert "| 20.00 s | 500.0 ms | 2.00x | 30.00 s (least-squares, 7 it, 2 -> 1) |" in text
    assert "Targets" not in text and "engine" not in text


def test_linear_scaling_target_compares_the_repeated_set_with_the_whole_set():
    def row(label, n, vg_s, jac_s, fit_s, n_active=96):
        return {
            "label": label,
            "n_structures": n,
            "n_active": n_active,
            "jaxloss_vg": Stats.of([vg_s]),
            "jacobian": Stats.of([jac_s]),
            "fit": {"wall_time_s": fit_s},
        }

    rows = [row("first 3", 3, 0.1, 0.2, 5.0), row("first 9", 9, 0.3, 0.6, 20.0)]
    rows += [row("all 345 parameters", 9, 0.4, 2.0, 90.0, 345), row("9 repeated to 27", 27, 0.9, 2.4, 60.0)]
    got = {t.name: t for t in report.targets({"scaling": rows})}
    assert set(got) == {f"{what}, 27 / 9 structures" for what in ("value+grad", "residual Jacobian", "one fit")}
    assert all(t.limit == "<= 3.3x" for t in got.values())
    assert got["value+grad, 27 / 9 structures"].measured == "3.00x" and got["value+grad, 27 / 9 structures"].met
    assert got["residual Jacobian, 27 / 9 structures"].measured == "4.00x"
    assert not got["residual Jacobian, 27 / 9 structures"].met and got["one fit, 27 / 9 structures"].met
    assert report.targets({"scaling": rows[:3]}) == []  # no repeated row: nothing to judge


def test_interleaved_scaling_rows_are_judged_round_by_round():
    """Rows timed in the same rounds compare round by round: a machine twice as slow in the
    last rounds moves the ratio of the medians, not the median of the rounds' ratios."""
    small = {"label": "first 9", "n_structures": 9, "n_active": 96, "interleaved": True}
    big = {"label": "9 repeated to 27", "n_structures": 27, "n_active": 96, "interleaved": True}
    small["jaxloss_vg"] = Stats.of([1.0, 1.0, 1.0, 2.0, 2.0])
    big["jaxloss_vg"] = Stats.of([3.0, 3.0, 6.0, 6.0, 6.0])
    (target,) = report.targets({"scaling": [small, big]})
    assert target.measured == "3.00x (round by round; medians 6.00x)" and target.met
    del big["interleaved"]
    (target,) = report.targets({"scaling": [small, big]})
    assert target.measured == "6.00x" and not target.met


def test_jacobian_ratio_target_depends_on_the_number_of_parameters():
    results = _results(0.01, 1.0, 100.0, 100.0)
    results["objectives"].update(
        jacobian=Stats.of([2.5]), jacobian_shape=[500, 96], jaxloss_compile_s=10.0, jacobian_compile_s=5.0
    )
    (target,) = [t for t in report.targets(results) if "Jacobian" in t.name]
    assert target.met and target.limit == "<= 3x"
    results["objectives"].update(jacobian=Stats.of([5.0]), jacobian_shape=[500, 345])
    (target,) = [t for t in report.targets(results) if "Jacobian" in t.name]
    assert target.met and target.limit == "<= 6x" and "345" in target.name
    assert "| JaxLoss residual Jacobian (500 x 345), minima from the QM geometry |" in report.render(results)


def test_render_mode_reprints_a_saved_run(tmp_path, capsys):
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(report.jsonable(_results(0.02, 1.0, 80.0, 30.0))))
    assert bench.main(["--render", str(saved), "--markdown", str(tmp_path / "run.md")]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == (tmp_path / "run.md").read_text().strip()
    assert "| Hessian, largest structure, warm | < 50 ms | 20.0 ms | met |" in printed


def test_a_bad_optimizer_option_ends_the_bench_before_it_measures(monkeypatch, capsys):
    """One line on stderr, exit 1, and no measurement started (the problem is never loaded)."""
    monkeypatch.setattr(bench, "_load", lambda cfg: pytest.fail("the bench loaded the problem"))
    assert bench.main(["system=sn2", "optimizer.restarts=-2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["q2mm.bench: ConfigurationError: restarts and restart_rtol must be >= 0, not -2 and 0.0001"]


@pytest.mark.slow
def test_bench_command_runs_on_the_embedded_system(tmp_path):
    """Smoke test of the real command on sn2 (numbers not asserted, only that each is measured).

    The end-to-end fit section is left out (it compiles the whole problem once more) and the
    scaling has one row, a single structure with its fit: that row runs the same fit code.
    """
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "q2mm.bench",
            "system=sn2",
            "--repeats",
            "2",
            "--compile-repeats",
            "0",
            "--fd-params",
            "1",
            "--no-fit",
            "--structures",
            "1",
            "--scaling-fit",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    for section in ("machine", "system", "engine", "objectives", "fd", "scaling", "memory"):
        assert section in data
    assert data["machine"]["float64"] is True
    assert data["engine"]["hessian"]["n"] == 2 and data["engine"]["hessian"]["median"] > 0
    assert np.isfinite(data["fd_ratio"]) and data["objectives"]["jacobian"]["median"] > 0
    ((row,),) = [data["scaling"]]  # one structure: the smallest extra compile that runs the scaling and fit code
    assert row["n_structures"] == 1 and row["jacobian"]["n"] == 2
    assert row["fit"]["status"] in ("improved", "no_progress", "reverted") and row["fit"]["n_iterations"] >= 0
    assert "| ObjectiveFunction (reference score) |" in done.stdout


def test_compile_probe_runs_where_the_caller_runs(monkeypatch, tmp_path):
    from q2mm.benchmarks import measure

    monkeypatch.delenv("PYTHONPATH", raising=False)
    argv, env = measure.probe_invocation(["system=sn2"], tmp_path)
    assert argv[1:] == ["-m", "q2mm.benchmarks.compile_probe", "system=sn2"] and env["Q2MM_JAX_CACHE"] == str(tmp_path)
    assert env["PYTHONPATH"] == str(PROJECT_ROOT)  # this checkout
    monkeypatch.setattr(measure, "IN_CHECKOUT", False)  # an installed wheel: PROJECT_ROOT is site-packages
    assert "PYTHONPATH" not in measure.probe_invocation([], tmp_path)[1]


def test_the_bench_composes_a_system_from_the_users_config_dir(tmp_path, capsys):
    """``--config-dir DIR`` (as for q2mm.run): DIR/system/NAME.yaml composes like a shipped
    system; a folder that does not exist ends in one line, exit 1."""
    (tmp_path / "system").mkdir()
    (tmp_path / "system" / "mine.yaml").write_text(
        "defaults: [schema, _self_]\nname: mine\ndata_dir: package:sn2\nforcefield: ch3f.fld\n"
        "structures:\n  - {geometry: metadata.json, qm: ch3f.xyz}\n"
    )
    cfg = setup.compose_config([setup.searchpath_override(tmp_path), "system=mine"])
    assert cfg.system.name == "mine" and cfg.system.forcefield == "ch3f.fld"
    assert bench.main(["--config-dir", str(tmp_path / "absent"), "system=mine"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"q2mm.bench: ConfigurationError: --config-dir {tmp_path / 'absent'}: expected a directory holding system/NAME.yaml"
    ]
