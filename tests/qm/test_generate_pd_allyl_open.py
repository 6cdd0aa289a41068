"""The pd-allyl-open generator without QM: guess geometries of every planned structure, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.qm.generate_pd_allyl_open import TARGETS, build


def test_guesses_of_every_target_are_sensible_without_qm():
    for target in TARGETS:
        symbols, coords, pair = build(target.ligand, target.allyl, target.amine)
        assert 17 <= len(symbols) <= 30 and symbols[0] == "Pd"
        distances = np.linalg.norm(coords[:, None] - coords[None], axis=-1) + 10.0 * np.eye(len(symbols))
        assert distances.min() > 0.9, target.name
        assert (pair is not None) == target.transition_state
        if pair is not None:
            assert {symbols[pair[0]], symbols[pair[1]]} == {"C", "N"} and 1.6 < distances[pair] < 2.2


def test_unknown_structure_is_one_clear_message(capsys):
    from q2mm.qm.generate_pd_allyl_open import main

    with pytest.raises(SystemExit):
        main(["--out", "unused", "--only", "ts-nonsense"])
    assert "unknown structures ['ts-nonsense']" in capsys.readouterr().err
