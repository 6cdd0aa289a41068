"""`python -m q2mm.energy`: MacroModel-style breakdown, exact JSON layout, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from q2mm import energy as cli
from q2mm.energy import LABELS
from q2mm.paths import PROJECT_ROOT
from tests.mm3.test_terms_reference import mmo_references  # noqa: F401

TERMS = set(LABELS)  # the engine's term table (q2mm.model.termtable.ENERGY_TERMS)


def test_json_breakdown_matches_macromodel(rh_dir, capsys, mmo_references):
    rc = cli.main([str(rh_dir / "mm3.fld"), str(rh_dir / "rh_enamide_training_set.mae"), "--index", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"structure", "units", "total", "terms"}
    assert out["units"] == "kJ/mol" and out["structure"].startswith("2 ")
    assert set(out["terms"]) == TERMS
    ref = mmo_references[2].totals
    for term in TERMS:
        assert out["terms"][term] == pytest.approx(ref[term], abs=0.05)
    assert out["total"] == pytest.approx(ref["total"], abs=0.1)
    assert out["total"] == pytest.approx(sum(out["terms"].values()), abs=1e-9)


def test_table_uses_macromodel_labels(rh_dir, capsys):
    assert cli.main([str(rh_dir / "mm3.fld"), str(rh_dir / "rh_enamide_training_set.mae"), "--index", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Structure 1: 1 ZDMP")
    assert "Proper torsion:" in text and "Hydrogen bonding:" in text and "kcal/mol" in text


def test_index_out_of_range_is_a_clear_error(rh_dir, capsys):
    rc = cli.main([str(rh_dir / "mm3.fld"), str(rh_dir / "rh_enamide_training_set.mae"), "--index", "10"])
    assert rc == 2
    assert "holds 9 structure(s), counted from 1" in capsys.readouterr().err


def test_unknown_structure_format_is_a_clear_error(rh_dir, capsys):
    rc = cli.main([str(rh_dir / "mm3.fld"), str(rh_dir / "mm3.fld")])
    assert rc == 1
    assert "expected a .mae or .mol2 structure file" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_as_a_module(rh_dir):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "q2mm.energy",
            str(rh_dir / "mm3.fld"),
            str(rh_dir / "rh_enamide_training_set.mae"),
            "--index",
            "1",
            "--json",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == pytest.approx(403.9263, abs=0.1)


def test_bad_substructure_pattern_names_the_fld_line(rh_dir, tmp_path, capsys):
    """A broken ` 9` pattern line ends as one message naming the .fld and the line, not a traceback."""
    lines = (rh_dir / "mm3.fld").read_text().splitlines(keepends=True)
    k = next(i for i, line in enumerate(lines) if line.startswith(" 9"))
    lines[k] = lines[k].rstrip("\n") + ")\n"
    broken = tmp_path / "broken.fld"
    broken.write_text("".join(lines))
    rc = cli.main([str(broken), str(rh_dir / "rh_enamide_training_set.mae"), "--index", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and f"broken.fld:{k + 1}: expected a substructure pattern" in err and "Traceback" not in err


def test_a_force_field_cut_in_half_is_refused_not_read_as_empty(rh_dir, tmp_path, capsys):
    """Half of mm3.fld once gave 'no MM3* parameters' for every interaction; now one message names the cut."""
    lines = (rh_dir / "mm3.fld").read_text().splitlines(keepends=True)
    cut = tmp_path / "trunc.fld"
    cut.write_text("".join(lines[: len(lines) // 2]))
    rc = cli.main([str(cut), str(rh_dir / "rh_enamide_training_set.mae"), "--index", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and f"trunc.fld:{len(lines) // 2}: expected the -6 vdW table" in err
    assert "no MM3* parameters" not in err and "Traceback" not in err
