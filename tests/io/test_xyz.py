"""Plain XYZ files, one or several frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from q2mm.errors import InputFormatError
from q2mm.io.xyz import read_xyz, read_xyz_frames


def test_two_frames_with_titles_and_atomic_numbers(tmp_path: Path) -> None:
    path = tmp_path / "traj.xyz"
    path.write_text("2\nframe one\nH 0 0 0\nCl 0 0 1.27\n2\n  frame two  \n1 0 0 0\n17 0 0 1.30\n", encoding="utf-8")
    frames = read_xyz_frames(path)
    assert [f.title for f in frames] == ["frame one", "frame two"]
    assert frames[0].elements == frames[1].elements == ("H", "Cl")
    assert frames[1].coords[1, 2] == 1.30
    assert read_xyz(path).coords[1, 2] == 1.27


def test_sn2_ts(sn2_dir: Path) -> None:
    molecule = read_xyz(sn2_dir / "sn2-ts-optimized.xyz")
    assert molecule.elements == ("C", "F", "F", "H", "H", "H")
    assert molecule.title == ""
    np.testing.assert_allclose(molecule.coords[1], [0.0, 1.85, 0.0])
    assert np.linalg.norm(molecule.coords[0] - molecule.coords[1]) == pytest.approx(1.85, abs=1e-4)


def test_sn2_guess_title(sn2_dir: Path) -> None:
    molecule = read_xyz(sn2_dir / "sn2-ts-guess.xyz")
    assert molecule.title.startswith("SN2 TS guess")
    assert molecule.n_atoms == 6


def test_line_numbers_count_only_newlines(tmp_path: Path) -> None:
    """A form feed or CRLF endings must not shift the line numbers errors report."""
    path = tmp_path / "ff.xyz"
    path.write_bytes(b"2\r\ntitle \x0c with form feed\r\nH 0 0 0\r\nH 0 0 x\r\n")
    with pytest.raises(InputFormatError) as info:
        read_xyz(path)
    assert info.value.line == 4 and info.value.found == "x"
