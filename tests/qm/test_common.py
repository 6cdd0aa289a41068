"""q2mm.qm.common: the finite-difference Hessian and the files every generator writes."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from q2mm.qm.common import UNITS, fd_hessian_raw, structure_entry, write_metadata, write_structure_files


def test_fd_hessian_of_a_quadratic_is_its_matrix():
    a = np.random.default_rng(3).normal(size=(6, 6))
    k = a @ a.T  # E = x^T K x / 2 in Bohr: gradient K x, Hessian K
    coords = np.random.default_rng(4).normal(size=(2, 3))
    h = fd_hessian_raw(lambda x: k @ x, coords, 0.005)
    np.testing.assert_allclose(h, k, rtol=1e-10, atol=1e-10)


def test_structure_files_and_entry(tmp_path):
    coords = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.96]])
    freqs = np.array([-12.34567, 3650.0])
    files = write_structure_files(tmp_path, "oh", ("O", "H"), coords, np.eye(6), freqs, "OH; E = -75 Hartree", "HF")
    assert files == {p: hashlib.sha256((tmp_path / p).read_bytes()).hexdigest() for p in files}
    assert (tmp_path / "oh.xyz").read_text().splitlines()[:2] == ["2", "OH; E = -75 Hartree"]
    assert (
        (tmp_path / "oh-frequencies.txt")
        .read_text()
        .startswith("# harmonic frequencies (cm^-1, imaginary negative) of oh, HF")
    )
    np.testing.assert_array_equal(np.load(tmp_path / "oh-hessian.npy"), np.eye(6))
    entry = structure_entry("OH", -1, False, ("O", "H"), ("O3", "H1"), [[0, 1, 1]], -75.0, freqs, 1, files, cycles=3)
    assert entry["frequencies_cm1"] == [-12.3457, 3650.0] and entry["cycles"] == 3 and list(entry)[-1] == "files"
    write_metadata(tmp_path, {"units": UNITS, "structures": {"oh": entry}})
    assert json.loads((tmp_path / "metadata.json").read_text())["structures"]["oh"] == entry
