"""End-to-end fits of real training sets through the MM3* engine and the objective layer.

Slow: each system compiles its JaxLoss once (minutes on two busy CPU cores).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("q2mm.mm3.engine", reason="the MM3* engine has not landed")

from q2mm.optimize import OptimizerOptions, fit  # noqa: E402
from q2mm.optimize.problem import build_fit_problem  # noqa: E402
from q2mm.systems import load_system  # noqa: E402


def check_fit(training_set, tmp_path, scope: str = "opt", maxiter: int = 5) -> dict:
    problem = build_fit_problem(training_set, scope=scope, start="published")
    seen = []
    result = fit(problem, OptimizerOptions(maxiter=maxiter), callback=seen.append)
    assert result.jac_resolved == "jax", result.jac_reason
    assert abs(result.ratio_initial - 1.0) < 1e-6 and abs(result.ratio_final - 1.0) < 1e-6
    assert result.status == "improved", result.message
    assert result.final.score < result.initial.score
    assert seen == result.history and len(seen) == result.n_iterations + 1
    assert np.all(result.p_final >= result.lower) and np.all(result.p_final <= result.upper)
    fld_path, json_path = result.write(tmp_path)
    summary = json.loads(json_path.read_text())
    assert summary["n_active"] == len(problem.refs) > 0
    assert set(summary["r2"]) >= {"eig_diag", "bond_length", "bond_angle"}
    return summary


@pytest.mark.slow
def test_ethane_published_opt_fit(ethane_dir, tmp_path):
    check_fit(load_system("ethane"), tmp_path)


@pytest.mark.slow
def test_sn2_published_opt_fit(tmp_path):
    check_fit(load_system("sn2"), tmp_path)
