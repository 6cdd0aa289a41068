"""Fixtures of the objective tests: QM structures (sn2, ethane) and the harmonic fixture model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objective_fixture_model import HarmonicModel, ethane_molecules, sn2_molecules  # noqa: E402


@pytest.fixture(scope="session")
def sn2_pair(sn2_dir):
    return sn2_molecules(sn2_dir)


@pytest.fixture(scope="session")
def ethane_pair(ethane_dir):
    return ethane_molecules(ethane_dir)


@pytest.fixture(scope="session")
def sn2_model(sn2_pair):
    return HarmonicModel(sn2_pair)


@pytest.fixture(scope="session")
def ethane_model(ethane_pair):
    return HarmonicModel(ethane_pair)
