"""What a chemist reads about a run: its name, metrics, description, progress lines, plots."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from q2mm.tracking.description import RunFacts, bound_line, closing_line, r2_change_line, run_description
from q2mm.tracking.kinds import kind_label
from q2mm.tracking.naming import job_name, short_keys, single_name, sweep_name, swept_overrides
from q2mm.tracking.plots import Parity, Structure, figure_title, panel_title, parity_plot
from q2mm.tracking.progress import IterationProgress
from q2mm.tracking.record import metrics_from_summary

SWEEP = ["optimizer.bounds.fc_fraction=0.1,0.2", "hydra/launcher=joblib", "tracking.uri=sqlite:////x/mlflow.db"]


# ---------------------------------------------------------------- names


def test_sweep_keys_come_from_sweep_syntax_and_sweeper_params():
    assert swept_overrides(SWEEP) == ["optimizer.bounds.fc_fraction=0.1,0.2"]
    assert swept_overrides(["system=sn2,ch3f", "seed=range(0,3)", "ratio_tol=null"]) == [
        "system=sn2,ch3f",
        "seed=range(0,3)",
    ]
    assert swept_overrides([], {"optimizer.bounds.eq_fraction": "0.01,0.05"}) == [
        "optimizer.bounds.eq_fraction=0.01,0.05"
    ]


def test_child_parent_and_single_names_say_what_differs():
    swept = swept_overrides(SWEEP)
    child = ["optimizer.bounds.fc_fraction=0.1", "hydra/launcher=joblib", "tracking.uri=sqlite:////x/mlflow.db"]
    assert job_name("sn2", child, swept, 0) == "sn2 fc_fraction=0.1"
    assert sweep_name("q2mm", swept) == "q2mm sweep fc_fraction=0.1,0.2"
    assert single_name("sn2", "published", "lbfgsb") == "sn2 published lbfgsb"
    # a swept system is the name's head, not repeated as system=...
    two = swept_overrides(["system=sn2,ch3f", "optimizer.bounds.fc_fraction=0.1,0.2"])
    assert job_name("ch3f", ["system=ch3f", "optimizer.bounds.fc_fraction=0.2"], two, 3) == "ch3f fc_fraction=0.2"
    assert job_name("ch3f", ["system=ch3f"], swept_overrides(["system=sn2,ch3f"]), 1) == "ch3f"
    # nothing known about the sweep: the job number tells the jobs apart
    assert job_name("sn2", [], (), 4) == "sn2 #4"
    assert job_name("sn2", child, swept, 0, base="my fit") == "my fit fc_fraction=0.1"


def test_short_keys_stay_unambiguous():
    assert short_keys(["optimizer.bounds.fc_fraction", "optimizer.maxiter"]) == {
        "optimizer.bounds.fc_fraction": "fc_fraction",
        "optimizer.maxiter": "maxiter",
    }
    assert short_keys(["a.name", "b.name"]) == {"a.name": "a.name", "b.name": "b.name"}
    assert short_keys(["hydra/launcher"]) == {"hydra/launcher": "launcher"}


# ---------------------------------------------------------------- metrics and description


def summary() -> dict:
    """A fit summary as FitResult.summary() writes it (values from a sn2 fc_fraction=0.1 fit)."""
    return {
        "status": "improved",
        "message": "reference score 24700 -> 3340",
        "score_initial": 2.47e4,
        "score_final": 3.34e3,
        "score_delta_pct": -86.48,
        "r2": {
            "bond_length": {"initial": 0.9994, "final": 0.9909, "rmsd_initial": 0.0078, "rmsd_final": 0.030},
            "eig_diag": {"initial": 0.91, "final": 0.99, "rmsd_initial": 120.0, "rmsd_final": "nan"},
        },
        "ratio_initial": 1.0000002,
        "ratio_final": None,
        "jac_resolved": "jax",
        "n_active": 3,
        "n_at_bound": 2,
        "n_iterations": 185,
        "n_objective_evals": 2,
        "n_loss_evals": 190,
        "wall_time_s": 21.1,
        "compile_time_s": 12.9,
        "optimizer_message": "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH (success=True)",
        "parameters": [
            {"line": 12, "field": 1, "kind": "bond_k", "final": 4.0, "lower": 3.6, "upper": 4.4, "at_bound": "upper"},
            {"line": 12, "field": 2, "kind": "bond_r0", "final": 1.4, "lower": 1.3, "upper": 1.5, "at_bound": None},
            {"line": 13, "field": 1, "kind": "angle_k", "final": 0.5, "lower": 0.5, "upper": 0.7, "at_bound": "lower"},
        ],
    }


def test_metrics_put_score_final_first_and_carry_rmsd_bounds_and_honest_counts():
    metrics = metrics_from_summary(summary())
    assert next(iter(metrics)) == "score_final"
    assert metrics["rmsd_bond_length_initial"] == 0.0078 and metrics["rmsd_bond_length_final"] == 0.030
    assert "rmsd_eig_diag_final" not in metrics  # not finite: left out, not NaN
    assert metrics["n_at_bound"] == 2
    assert metrics["n_reference_evals"] == 2 and metrics["n_loss_evals"] == 190
    assert metrics["fit_time_s"] == 21.1 and metrics["compile_time_s"] == 12.9
    assert "ratio_final" not in metrics and "wall_time_s" not in metrics  # the tracker logs the job's wall time


def test_description_names_system_scores_r2_rmsd_bounds_and_fld():
    facts = RunFacts(
        "sn2 fc_fraction=0.1",
        "sn2",
        "opt",
        "published",
        "lbfgsb",
        "fc_fraction=0.1",
        "/runs/0/sn2-optimized.fld",
        "sn2-optimized.fld.txt",
    )
    text = run_description(summary(), facts)
    assert text.startswith("**sn2 fc_fraction=0.1**: system `sn2`, scope `opt`, start `published`")
    assert "Swept values: `fc_fraction=0.1`" in text
    assert "2.4700e+04 -> 3.3400e+03 (-86.5 %)" in text
    assert "CONVERGENCE: RELATIVE REDUCTION" in text
    assert "| bond length | 0.9994 | 0.9909 | 0.0078 | 0.03 | Å |" in text
    assert "2 of 3 parameters at a bound: line 12 field 1 bond_k (upper), line 13 field 1 angle_k (lower)" in text
    assert "`/runs/0/sn2-optimized.fld` (preview: artifact `sn2-optimized.fld.txt`)" in text
    assert bound_line({"parameters": []}) == ""


def test_closing_line_has_convergence_message_fld_and_url():
    line = closing_line(summary(), 24.7, "/runs/0/sn2-optimized.fld", "http://127.0.0.1:5000/#/experiments/1/runs/abc")
    first, kinds, fld, url = line.splitlines()
    assert "score 2.4700e+04 -> 3.3400e+03" in first and "R2 min 0.9900" in first
    assert kinds.startswith("  R2 start -> end: ") and "bond length 0.9994 -> 0.9909 (lower)" in kinds
    assert "(lower)" not in r2_change_line({"bond_angle": {"initial": 0.99702, "final": 0.99699}})
    assert "wall 24.7 s (compile 12.9 s)" in first and "2 at a bound" in first
    assert first.endswith("optimizer: CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH (success=True)")
    assert fld == "  wrote /runs/0/sn2-optimized.fld" and url.endswith("#/experiments/1/runs/abc")


def test_closing_lines_advise_when_a_geometry_kind_fell_with_its_equilibrium_values_at_bounds():
    """bond length R2 fell and a bond r0 ended at a bound with the eigenmatrix scored: the hint
    names the line and scope=opt_fc; none without the eigenmatrix or with the R2 kept."""
    from q2mm.tracking.description import equilibrium_advice

    fitted = summary()
    assert equilibrium_advice(fitted) == ""  # its bond r0 is free
    fitted["parameters"][1]["at_bound"] = "lower"
    advice = equilibrium_advice(fitted)
    assert advice.startswith("bond length R2 fell while 1 of 1 bond_r0 ended at a bound (lines 12)")
    assert "scope=opt_fc fits force constants only" in advice
    assert advice in closing_line(fitted, 24.7).splitlines()[2]
    assert f"Hint: {advice}." in run_description(fitted, RunFacts("sn2", "sn2", "opt", "published", "lbfgsb"))
    assert equilibrium_advice({**fitted, "r2": {"bond_length": fitted["r2"]["bond_length"]}}) == ""
    kept = {**fitted["r2"], "bond_length": {"initial": 0.99, "final": 0.995}}
    assert equilibrium_advice({**fitted, "r2": kept}) == ""


def test_closing_lines_advise_a_second_fit_when_many_parameters_end_on_the_box():
    """Two of three parameters on the edge of their fractional interval (fc +/-20 %): the hint
    gives the box and the written .fld to start from; a parameter file's range or a sanity
    bound is not the box, and one of three on it is an ordinary fit."""
    from q2mm.tracking.description import bounds_advice

    def row(kind, initial, final, lower, upper, side):
        return {
            **{"line": 12, "field": 1, "kind": kind, "initial": initial, "final": final},
            **{"lower": lower, "upper": upper, "at_bound": side},
        }

    fitted = summary()
    fitted["options"] = {"bounds": {"fc_fraction": 0.2, "eq_fraction": 0.05}}
    fitted["parameters"] = [
        row("bond_k", 4.0, 4.8, 3.2, 4.8, "upper"),
        row("angle_k", 0.5, 0.4, 0.4, 0.6, "lower"),
        row("bond_r0", 1.4, 1.41, 1.33, 1.47, None),
    ]
    advice = bounds_advice(fitted, "/runs/0/sn2-optimized.fld")
    assert advice.startswith("2 of 3 parameters ended on the edge of this fit's box (force constants +/-20%")
    assert "system.forcefield=/runs/0/sn2-optimized.fld" in advice and "optimizer.bounds.fc_fraction" in advice
    assert advice in closing_line(fitted, 24.7, "/runs/0/sn2-optimized.fld")
    facts = RunFacts("sn2", "sn2", "opt", "published", "least-squares", fld_path="/runs/0/sn2-optimized.fld")
    assert f"Hint: {advice}." in run_description(fitted, facts)  # the run page says it too
    fitted["parameters"][1] = row("angle_k", 0.5, 0.45, 0.45, 0.6, "lower")  # a parameter file's range
    assert bounds_advice(fitted) == ""
    del fitted["parameters"][0]["initial"]  # a summary without starts: no hint, no error
    assert bounds_advice(fitted) == ""


# ---------------------------------------------------------------- progress


def test_progress_logs_phases_and_a_few_score_lines(caplog, monkeypatch):
    clock = iter(np.arange(0.0, 1000.0, 0.5))  # every perf_counter call advances 0.5 s
    monkeypatch.setattr("q2mm.tracking.progress.time.perf_counter", lambda: float(next(clock)))
    caplog.set_level(logging.INFO, logger="q2mm.progress")
    progress = IterationProgress(None, label="sn2 fc_fraction=0.1", interval_s=5.0)
    with progress.phase("loading sn2"):
        pass
    progress.start_fit("fitting 14 parameters")
    for i in range(100):
        progress(i, 100.0 - i)
    progress.finish_fit()
    lines = [r.getMessage() for r in caplog.records]
    assert progress.scores[-1] == 1.0 and len(progress.steps) == 100
    assert lines[0].startswith("[sn2 fc_fraction=0.1]") and lines[0].endswith("loading sn2 ...")
    assert "loading sn2: done in" in lines[1] and "fitting 14 parameters" in lines[2]
    assert "start: score 1.0000e+02 (" in lines[3]
    score_lines = [line for line in lines if " iter " in line]
    assert 5 <= len(score_lines) <= 12  # 100 iterations at 1.5 s each: a line every 5 s, not 100
    assert score_lines[-1].endswith("iter    99  score 1.0000e+00  ( -99.00 %)")


def test_progress_every_iteration_or_none(caplog):
    caplog.set_level(logging.INFO, logger="q2mm.progress")
    loud = IterationProgress(True)
    for i in range(4):
        loud(i, 10.0 - i)
    loud.finish_fit()
    assert sum(" iter " in r.getMessage() for r in caplog.records) == 3
    caplog.clear()
    quiet = IterationProgress(False)
    for i in range(4):
        quiet(i, 10.0 - i)
    quiet.finish_fit()
    assert [r.getMessage() for r in caplog.records if " iter " in r.getMessage()] == []


# ---------------------------------------------------------------- plots


def test_parity_plot_labels_share_axes_and_colour_structures(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    ref = np.array([1.0, 1.1, 1.5, 2.0])
    before = Parity(ref, ref + 0.2, np.array([0, 0, 1, 1]))
    after = Parity(ref, ref + np.array([0.01, -0.01, 0.02, 0.0]), np.array([0, 0, 1, 1]), r2=0.99, rmsd=0.012)
    structures = [Structure("sn2-ts", True), Structure("ch3f")]
    path = parity_plot(
        "bond_length", before, after, tmp_path / "parity_bond_length.png", structures, heading="sn2 fc_fraction=0.1"
    )
    assert path.is_file() and path.stat().st_size > 10_000
    (fig,) = figures
    left, right = fig.axes[:2]
    assert left.get_xlim() == right.get_xlim() == left.get_ylim() == right.get_ylim()
    assert fig._suptitle.get_text() == "bond length, MM vs QM: sn2 fc_fraction=0.1"
    assert right.get_title() == "after: R$^2$ = 0.9900, RMSD = 0.012 Å"
    assert left.get_title().startswith("before: R$^2$ = ") and "RMSD = 0.2 Å" in left.get_title()
    assert left.get_xlabel() == "QM (Å)" and left.get_ylabel() == "MM (Å)"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["sn2-ts (TS)", "ch3f"]
    markers = [c.get_paths()[0].vertices.shape[0] for c in right.collections]
    assert markers[0] != markers[1]  # triangle (TS) and circle (minimum) differ
    colours = [tuple(c.get_facecolor()[0]) for c in right.collections]
    assert colours[0] != colours[1]
    plt.close(fig)


def test_titles_and_units_come_from_one_table():
    assert figure_title("eig_diag") == "eigenmatrix diagonal, MM vs QM"
    assert kind_label("energy").unit == "kcal/mol" and kind_label("frequency").unit == "cm⁻¹"
    assert kind_label("new_kind").title == "new kind"
    assert panel_title("before", Parity(np.array([1.0, 2.0]), np.array([1.0, 2.0])), "deg") == (
        "before: R$^2$ = 1.0000, RMSD = 0 deg"
    )


@pytest.mark.parametrize("values, side", [((3.6, 4.0, 4.4), ("lower", "", "upper"))])
def test_at_bound_marks_parameters_on_their_bounds(values, side):
    from q2mm.optimize.result import at_bound

    lower, upper = np.full(3, 3.6), np.full(3, 4.4)
    assert tuple(at_bound(np.array(values), lower, upper)) == side
    assert tuple(at_bound(np.array([3.6 + 4e-6 * 0.8, 3.6 + 0.01]), lower[:2], upper[:2])) == ("lower", "")


def test_evaluation_plot_has_one_labelled_panel(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from q2mm.tracking.plots import evaluation_parity_plots

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    ref = np.array([100.0, 110.0, 120.0])
    (path,) = evaluation_parity_plots(
        {"bond_angle": (ref, ref + 1.0), "torsion": (np.zeros(0), np.zeros(0))}, tmp_path, "sn2 (evaluated)"
    )
    assert path.name == "parity_bond_angle.png" and path.is_file()
    (fig,) = figures
    assert fig._suptitle.get_text() == "bond angle, MM vs QM: sn2 (evaluated)"
    assert fig.axes[0].get_title() == "evaluated: R$^2$ = 0.9850, RMSD = 1 deg"  # 1 - 3/200
    plt.close(fig)
