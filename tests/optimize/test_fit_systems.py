"""End-to-end fits of real training sets through the MM3* engine and the objective layer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("q2mm.mm3.engine", reason="the MM3* engine has not landed")

from q2mm.optimize import OptimizerOptions, fit  # noqa: E402
from q2mm.optimize.problem import build_fit_problem  # noqa: E402
from q2mm.systems import load_system  # noqa: E402


@pytest.fixture(scope="module")
def sn2():
    return load_system("sn2")


@pytest.mark.slow
def test_sn2_fc_fit_lowers_the_reference_score(sn2, tmp_path):
    problem = build_fit_problem(sn2, scope="opt_fc", start="published")
    seen = []
    result = fit(problem, OptimizerOptions(maxiter=15), callback=seen.append)
    assert result.jac_resolved == "jax", result.jac_reason
    assert abs(result.ratio_initial - 1.0) < 1e-6
    assert result.status == "improved", result.message
    assert result.final.score < result.initial.score
    assert len(seen) == result.n_iterations + 1
    summary = result.summary()
    assert summary["n_active"] == len(problem.refs) > 0
    fld_path, json_path = result.write(tmp_path)
    assert fld_path.exists() and json_path.exists()
    assert np.all(result.p_final >= result.lower) and np.all(result.p_final <= result.upper)
