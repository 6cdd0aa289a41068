"""python -m q2mm.fld: summary and active-parameter listing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from q2mm.fld import main
from q2mm.paths import PROJECT_ROOT


def test_active_json_lists_the_published_substructure(rh_dir: Path, capsys):
    assert main([str(rh_dir / "mm3.fld"), "--active", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    records = payload["active"]
    assert len(records) == 110
    assert {r["substructure"] for r in records} == {17, 18}
    assert {r["term"] for r in records} == {"bond", "angle", "torsion"}
    first = records[0]
    assert (first["line"], first["field"], first["kind"], first["value"], first["unit"]) == (
        1860,
        1,
        "bond_r0",
        1.5684,
        "A",
    )
    assert first["atoms"] == [1, 2] and first["pattern"] == "HX-RH(-PX)-HX.C2*C2(.2)-N2-C2=O2.2"
    alt = next(r for r in records if r["line"] == 1862 and r["field"] == 2)
    assert alt["alt"] == "a" and alt["value"] == 1.5293
    tor = next(r for r in records if r["line"] == 1890 and r["field"] == 3)
    assert tor["kind"] == "torsion_v3" and tor["atoms"] == ["00", 2, 3, "00"]


def test_text_summary_marks_opt_substructures(rh_dir: Path, capsys):
    assert main([str(rh_dir / "mm3.fld")]) == 0
    out = capsys.readouterr().out
    assert "OPT #17" in out and "OPT #18" in out and "Benzenoid" in out
    assert "active parameters: 110" in out
    assert "1861   2  angle_k" not in out and " 1861   2  bond_k" in out


def test_param_file_output_is_a_parameter_file_of_the_opt_scope(rh_dir: Path, tmp_path: Path, capsys):
    """`--param-file` > params.txt reads back (q2mm.io.params) as exactly the OPT scope's values."""
    from q2mm.io.fld import read_fld
    from q2mm.optimize.scope import ScopeSpec, parameter_file_scope, resolve_scope

    assert main([str(rh_dir / "mm3.fld"), "--param-file"]) == 0
    (tmp_path / "params.txt").write_text(capsys.readouterr().out)
    ff = read_fld(rh_dir / "mm3.fld")
    from_file = resolve_scope(ff, parameter_file_scope(tmp_path / "params.txt"))
    assert from_file.refs == resolve_scope(ff, ScopeSpec("opt")).refs and len(from_file.refs) == 110
    assert set(from_file.ranges) == {(float("-inf"), float("inf"))}
    assert " 1862 2   # bond_k          2-3 (a)" in (tmp_path / "params.txt").read_text()


def test_bad_file_exits_2_with_one_error_line(tmp_path: Path, capsys):
    bad = tmp_path / "bad.fld"
    bad.write_text("-2\n 1  C3 - C3                1.52x7     4.4900     0.0000\n")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "1.52x7" in err


def test_runs_as_module(rh_dir: Path):
    done = subprocess.run(
        [sys.executable, "-m", "q2mm.fld", str(rh_dir / "mm3.fld"), "--active"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "bond_r0" in done.stdout and "1910" in done.stdout


def test_a_file_cut_in_half_exits_2_naming_file_and_line(rh_dir: Path, tmp_path: Path, capsys):
    lines = (rh_dir / "mm3.fld").read_text().splitlines(keepends=True)
    cut = tmp_path / "trunc.fld"
    cut.write_text("".join(lines[: len(lines) // 2]))
    assert main([str(cut), "--active"]) == 2
    captured = capsys.readouterr()
    assert f"{cut}:{len(lines) // 2}: expected the -6 vdW table" in captured.err and "cut short" in captured.err
    assert captured.out == ""
