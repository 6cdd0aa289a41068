"""Checkpoints: a fit stopped part way resumes from checkpoint.npz and ends exactly where the
uninterrupted fit ends, for every method; a checkpoint of another fit is refused."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.errors import CheckpointError
from q2mm.optimize import OptimizerOptions, fit
from q2mm.optimize.checkpoint import CHECKPOINT_FILE, FitCheckpoint, fit_identity, load_checkpoint
from tests.optimize.test_driver import make_problem


class Stop(Exception):
    """Stands for the kill: raised after the checkpoint of iteration ``at`` was written."""


def _checkpointed_fit(tmp_path, options, stop_at=None, resume=None):
    problem = make_problem()
    checkpoint = FitCheckpoint(
        tmp_path, fit_identity(problem.refs, problem.start_values, options.as_dict()), extra={"run": "x"}, resume=resume
    )

    def callback(info):
        checkpoint(info)
        if stop_at is not None and info.iteration == stop_at:
            raise Stop

    result = fit(problem, options, callback=callback, journal=checkpoint.journal)
    return result, problem


@pytest.mark.parametrize("method,stop_at", [("lbfgsb", 6), ("adam", 15), ("powell", 2), ("nelder-mead", 40)])
def test_a_stopped_fit_resumes_to_the_uninterrupted_result(tmp_path, method, stop_at):
    options = OptimizerOptions(method=method, maxiter=60 if method != "nelder-mead" else 200)
    full, _ = _checkpointed_fit(tmp_path / "full", options)
    assert full.n_iterations > stop_at

    with pytest.raises(Stop):
        _checkpointed_fit(tmp_path / "cut", options, stop_at=stop_at)
    state = load_checkpoint(tmp_path / "cut")
    assert state.iteration == stop_at and state.extra == {"run": "x"}
    assert [h.iteration for h in state.history] == list(range(stop_at + 1))

    resumed, problem = _checkpointed_fit(tmp_path / "cut", options, resume=state)
    np.testing.assert_array_equal(resumed.p_final, full.p_final)
    assert resumed.final.score == full.final.score
    assert resumed.n_iterations == full.n_iterations
    assert resumed.n_loss_evals == full.n_loss_evals and resumed.n_objective_evals == full.n_objective_evals
    # the replayed part cost no new objective work: only the evaluations after the checkpoint
    replayed = sum(e.cost for e in state.journal)
    assert replayed > 0
    final = load_checkpoint(tmp_path / "cut")
    assert final.iteration == full.n_iterations
    assert len(final.journal) >= len(state.journal)


def test_checkpoint_holds_the_best_point_and_counters(tmp_path):
    import json

    options = OptimizerOptions(maxiter=5)
    result, _ = _checkpointed_fit(tmp_path, options)
    with np.load(tmp_path / CHECKPOINT_FILE) as data:
        meta = json.loads(str(data["meta"]))
        values = data["values"]
    assert meta["counters"]["iterations"] == result.n_iterations
    assert meta["best"]["score"] == pytest.approx(values.min())
    assert len(meta["best"]["params"]) == len(result.p_final)
    assert meta["current"] is not None


def test_a_checkpoint_of_another_fit_is_refused(tmp_path):
    options = OptimizerOptions(maxiter=3)
    _checkpointed_fit(tmp_path, options)
    state = load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"another fit \(options differ: maxiter: 3 -> 4"):
        _checkpointed_fit(tmp_path, OptimizerOptions(maxiter=4), resume=state)


def test_missing_and_corrupt_checkpoints_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=f"{CHECKPOINT_FILE}: unreadable checkpoint"):
        load_checkpoint(tmp_path)
