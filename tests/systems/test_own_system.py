"""A chemist's own training set: user-style folders built in tmp_path from ../shared/data, described
by one YAML in a config folder of their own, checked, paired and scored like the registered systems."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from q2mm.errors import PairingError
from q2mm.paths import PACKAGE_DATA, PROJECT_ROOT
from q2mm.systems import get_spec, load_system

RH_PUBLISHED_SCORE = 3.763712e5  # rh-enamide, published mm3.fld, our engine (README)


def reference_score(training_set) -> float:
    """The reference objective at the force field's own values (OPT scope)."""
    from q2mm.mm3.engine import MM3Model
    from q2mm.objective.objective import ObjectiveFunction
    from q2mm.optimize.scope import ScopeSpec, align_with_model, resolve_scope

    model = MM3Model.build(training_set.molecules, training_set.forcefield)
    active, _, _ = align_with_model(resolve_scope(training_set.forcefield, ScopeSpec("opt")), model.param_refs)
    objective = ObjectiveFunction(model, list(training_set.molecules), training_set.settings, np.asarray(active))
    return float(objective(model.p0[np.asarray(active)]).score)


def write_system(config_dir: Path, name: str, text: str) -> Path:
    path = config_dir / "system" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- rh-enamide: .mae + Jaguar + atom.typ


@pytest.fixture(scope="module")
def rh_folder(rh_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    """A chemist's folder: structures.mae, jaguar/*.01.in, their atom.typ and .fld; a config folder."""
    root = tmp_path_factory.mktemp("rh-own")
    data = root / "my-rh-data"
    (data / "jaguar").mkdir(parents=True)
    shutil.copy(rh_dir / "rh_enamide_training_set.mae", data / "structures.mae")
    for path in (rh_dir / "jaguar").glob("*.01.in"):
        shutil.copy(path, data / "jaguar" / path.name)
    shutil.copy(rh_dir / "atom.typ", data / "atom.typ")
    shutil.copy(rh_dir / "mm3.fld", data / "mm3.fld")
    conf = root / "conf"
    write_system(
        conf,
        "my-rh",
        f"""\
name: my-rh
data_dir: {data}
forcefield: mm3.fld
structures:
  - {{geometry: structures.mae, qm: "jaguar/*.01.in"}}
""",
    )
    return data, conf


@pytest.mark.slow
def test_rh_enamide_from_a_users_folder_scores_as_the_registered_system(rh_folder, rh_dir) -> None:
    data, conf = rh_folder
    mine = load_system(get_spec("my-rh", config_dir=conf))
    assert len(mine.molecules) == 9 and all(m.atom_types[0] == "RH" for m in mine.molecules)
    registered = load_system("rh-enamide", rh_dir.parent)
    score = reference_score(mine)
    assert score == pytest.approx(reference_score(registered), rel=1e-12)
    assert score == pytest.approx(RH_PUBLISHED_SCORE, rel=1e-6)


def run_module(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_check_and_a_short_run_with_the_users_config_dir(rh_folder, tmp_path: Path) -> None:
    """`q2mm.check --config-dir` says fittable; a one-parameter `q2mm.run --config-dir` starts at the
    registered system's score (reference objective, finite differences: nothing compiled)."""
    from q2mm.io.fld import read_fld

    data, conf = rh_folder
    done = run_module("q2mm.check", "--config-dir", str(conf), "system=my-rh", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fittable: yes" in done.stdout and "Traceback" not in done.stderr
    assert "structures.mae (MacroModel type numbers through" in done.stdout and "3 zero-order" in done.stdout
    assert not list(tmp_path.iterdir())  # a check writes nothing
    ref = read_fld(data / "mm3.fld").active_refs()[0]
    done = run_module(
        "q2mm.run",
        "--config-dir",
        str(conf),
        "system=my-rh",
        "scope=explicit",
        f"scope.params=[{{line:{ref.line},field:{ref.field}}}]",
        "ratio_tol=null",
        "optimizer.jac=fd",
        "optimizer.maxiter=1",
        "optimizer.fd_workers=1",
        "tracking.enabled=false",
        "tracking.plots=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(next((tmp_path / "run").glob("*-fit.json")).read_text())
    assert summary["score_initial"] == pytest.approx(RH_PUBLISHED_SCORE, rel=1e-6)


# ---------------------------------------------------------------- ethane: Gaussian .log + .mol2, .fchk alone


@pytest.fixture()
def ethane_folder(ethane_dir: Path, tmp_path: Path) -> Path:
    data = tmp_path / "ethane-data"
    data.mkdir()
    for name in ("GS.log", "TS.log", "GS.fchk", "TS.fchk", "GS.mol2", "TS.mol2"):
        shutil.copy(ethane_dir / name, data / name)
    shutil.copy(PACKAGE_DATA / "ethane" / "ethane.fld", data / "ethane.fld")
    return data


def ethane_system(conf: Path, data: Path, structures: str, name: str = "my-ethane") -> None:
    write_system(conf, name, f"name: {name}\ndata_dir: {data}\nforcefield: ethane.fld\nstructures:\n{structures}")


@pytest.fixture(scope="module")
def ethane_registered_score(ethane_dir: Path) -> float:
    return reference_score(load_system("ethane", ethane_dir.parent))


def test_ethane_gaussian_logs_typed_by_mol2(ethane_folder: Path, tmp_path: Path, ethane_registered_score) -> None:
    conf = tmp_path / "conf"
    ethane_system(conf, ethane_folder, '  - {geometry: "*.mol2", qm: "{stem}.log"}\n')
    training = load_system(get_spec("my-ethane", conf))
    assert [m.title for m in training.molecules] == ["GS", "TS"]
    gs, ts = training.molecules
    assert gs.properties["types_from"] == "GS.mol2 (MM3 names)" and gs.properties["qm_source"].endswith("GS.log")
    assert not gs.properties["transition_state"] and ts.properties["transition_state"]
    # the archive's geometry and Hessian carry fewer digits than the .fchk: 1.1e-5 apart
    assert reference_score(training) == pytest.approx(ethane_registered_score, rel=5e-5)


def test_charges_option_picks_the_qm_charge_set(ethane_folder: Path, tmp_path: Path) -> None:
    """``charges: mulliken`` scores the logs' Mulliken charges; the default ``esp`` is refused
    for logs without a Pop=ChelpG/MK table, naming the structures and the sets they have."""
    from q2mm.check import check_training_set
    from q2mm.compose import fit_problem
    from q2mm.errors import ConfigurationError
    from q2mm.io.gaussian import read_gaussian_log
    from q2mm.mm3.engine import MM3Model
    from q2mm.objective.objective import ObjectiveFunction

    conf = tmp_path / "conf"
    entry = '  - {geometry: "*.mol2", qm: "{stem}.log"}\nweights: {charge: 10}\n'
    ethane_system(conf, ethane_folder, entry + "charges: mulliken\n")
    training = load_system(get_spec("my-ethane", conf))
    gs = training.molecules[0]
    mulliken = read_gaussian_log(ethane_folder / "GS.log").molecule.properties["qm_charge_sets"]["mulliken"][1]
    np.testing.assert_array_equal(gs.properties["qm_charges"], mulliken)
    assert gs.properties["qm_charges_source"] == "Gaussian Mulliken charges"
    model = MM3Model.build(training.molecules, training.forcefield)
    ev = ObjectiveFunction(model, list(training.molecules), training.settings)(model.p0)
    # ethane.fld has no bond dipoles: every MM3* charge is 0, the residual 10 q_QM
    np.testing.assert_allclose(ev.by_kind["charge"].calc, 0.0)
    assert ev.by_kind["charge"].score == pytest.approx(
        100 * sum(float(m.properties["qm_charges"] @ m.properties["qm_charges"]) for m in training.molecules)
    )
    text = check_training_set(training, "opt").text()
    assert "QM charges: mulliken; compared: Gaussian Mulliken charges" in text and text.endswith("fittable: yes")
    assert "active parameters (opt+dipoles): 20 used" in text and "charge 16 (weight 10)" in text
    problem = fit_problem(training)  # scoring charges frees the OPT rows' bond dipoles
    assert problem.scope == "opt+dipoles" and problem.kinds.count("bond_dipole") == 3
    ethane_system(conf, ethane_folder, '  - {geometry: "*.mol2", qm: "{stem}.log"}\n')
    assert "bond_dipole" not in fit_problem(load_system(get_spec("my-ethane", conf))).kinds
    ethane_system(conf, ethane_folder, entry)
    with pytest.raises(ConfigurationError, match=r"charges='esp'.*GS \(.*GS.log: mulliken\); TS"):
        load_system(get_spec("my-ethane", conf))
    ethane_system(conf, ethane_folder, entry + "charges: npa\n")
    with pytest.raises(ConfigurationError, match=r"charges='npa': expected one of \['esp', 'mulliken'\]"):
        load_system(get_spec("my-ethane", conf))


def test_ethane_fchk_alone_with_perceived_bonds(ethane_folder: Path, tmp_path: Path, ethane_registered_score) -> None:
    conf = tmp_path / "conf"
    ethane_system(conf, ethane_folder, '  - {qm: "*.fchk"}\n')
    training = load_system(get_spec("my-ethane", conf))
    for molecule in training.molecules:
        assert sorted(molecule.atom_types) == ["C3"] * 2 + ["H1"] * 6 and len(molecule.bonds) == 7
        assert "perceived" in molecule.properties["bonds_from"] and "guessed" in molecule.properties["types_from"]
    assert reference_score(training) == pytest.approx(ethane_registered_score, rel=1e-10)
    from q2mm.check import check_training_set

    assert check_training_set(training, "opt").fittable


def rewrite_mol2(source: Path, target: Path, transform) -> None:
    """A copy of a mol2 file whose ATOM coordinates are ``transform(coords)`` (rows kept in place)."""
    lines = source.read_text().splitlines()
    start = lines.index("@<TRIPOS>ATOM") + 1
    end = next(k for k in range(start, len(lines)) if lines[k].startswith("@<TRIPOS>"))
    rows = [line.split() for line in lines[start:end]]
    coords = transform(np.array([[float(v) for v in row[2:5]] for row in rows]))
    for k, (row, xyz) in enumerate(zip(rows, coords)):
        lines[start + k] = f"{row[0]:>7} {row[1]:<8}" + "".join(f"{v:10.4f}" for v in xyz) + " " + " ".join(row[5:])
    target.write_text("\n".join(lines) + "\n")


def rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_a_rotated_geometry_file_is_aligned_and_scores_the_same(
    ethane_folder: Path, tmp_path: Path, ethane_registered_score
) -> None:
    turn, shift = rotation(7), np.array([3.0, -1.0, 12.0])
    for stem in ("GS", "TS"):
        rewrite_mol2(ethane_folder / f"{stem}.mol2", ethane_folder / f"{stem}-turned.mol2", lambda x: x @ turn + shift)
    conf = tmp_path / "conf"
    ethane_system(
        conf,
        ethane_folder,
        "  - {geometry: GS-turned.mol2, qm: GS.fchk}\n  - {geometry: TS-turned.mol2, qm: TS.fchk}\n",
    )
    training = load_system(get_spec("my-ethane", conf))
    for molecule, stem in zip(training.molecules, ("GS", "TS")):
        assert molecule.properties["pairing"]["rotated"] and molecule.properties["pairing"]["rmsd"] < 1e-3
        turned = np.array(
            [
                [float(v) for v in line.split()[2:5]]
                for line in (ethane_folder / f"{stem}-turned.mol2")
                .read_text()
                .split("@<TRIPOS>ATOM\n")[1]
                .split("@<TRIPOS>")[0]
                .splitlines()
            ]
        )
        assert np.abs(molecule.coords - turned).max() < 1e-3  # the QM data now live in the geometry's frame
    assert reference_score(training) == pytest.approx(ethane_registered_score, rel=1e-8)


def swap_rows(coords: np.ndarray, a: int, b: int) -> np.ndarray:
    out = coords.copy()
    out[[a, b]] = out[[b, a]]
    return out


def test_a_reordered_or_different_structure_is_refused(ethane_folder: Path, tmp_path: Path) -> None:
    rewrite_mol2(ethane_folder / "GS.mol2", ethane_folder / "GS-swapped.mol2", lambda x: swap_rows(x, 2, 4))
    conf = tmp_path / "conf"
    ethane_system(conf, ethane_folder, "  - {geometry: GS-swapped.mol2, qm: GS.fchk}\n")
    with pytest.raises(PairingError, match=r"GS-swapped.mol2 and .*GS.fchk: expected the same structure .*atom 3 is"):
        load_system(get_spec("my-ethane", conf))
    ethane_system(conf, ethane_folder, "  - {geometry: TS.mol2, qm: GS.fchk}\n")  # another conformer
    with pytest.raises(PairingError, match=r"TS.mol2 and .*GS.fchk: expected the same structure"):
        load_system(get_spec("my-ethane", conf))


def test_mae_titles_must_carry_the_numbers_of_their_jaguar_files(rh_dir: Path, tmp_path: Path) -> None:
    """Structure N of a multi-structure .mae pairs with the N-th QM file; numbered names are checked."""
    data = tmp_path / "data"
    (data / "jaguar").mkdir(parents=True)
    shutil.copy(rh_dir / "mae" / "1_ZDMP_from_JCTC_SI.mae", data / "one.mae")
    shutil.copy(rh_dir / "jaguar" / "2DMPEConformation1fromJCTCSI_isomer1.01.in", data / "jaguar")
    shutil.copy(rh_dir / "mm3.fld", data / "mm3.fld")
    shutil.copy(rh_dir / "atom.typ", data / "atom.typ")
    conf = tmp_path / "conf"
    write_system(
        conf,
        "mismatch",
        f"name: mismatch\ndata_dir: {data}\nforcefield: mm3.fld\n"
        'structures:\n  - {geometry: one.mae, qm: "jaguar/*.01.in"}\n',
    )
    with pytest.raises(PairingError, match=r"titled with the number of its QM file \(2\)"):
        load_system(get_spec("mismatch", conf))


# ---------------------------------------------------------------- a user's mistake: one message, FAILED run


@pytest.mark.slow
def test_a_users_mistake_ends_in_one_message_and_a_failed_run(ethane_folder: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    conf = tmp_path / "conf"
    ethane_system(conf, ethane_folder, "  - {geometry: TS.mol2, qm: GS.fchk}\n")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = run_module("q2mm.check", "--config-dir", str(conf), "system=my-ethane", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "TS.mol2 and" in done.stderr and "GS.fchk" in done.stderr
    done = run_module(
        "q2mm.run",
        "--config-dir",
        str(conf),
        "system=my-ethane",
        f"tracking.uri={store}",
        "tracking.experiment=mistakes",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "error: " in done.stderr and "expected the same structure" in done.stderr
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("mistakes").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert any("expected the same structure" in str(v) for v in {**runs[0].data.tags, **runs[0].data.params}.values())


@pytest.mark.slow
def test_a_sweep_over_a_users_system(ethane_folder: Path, tmp_path: Path) -> None:
    """`q2mm.run -m --config-dir`: one parent MLflow run, a finished child per job."""
    from mlflow.tracking import MlflowClient

    from q2mm.io.fld import read_fld

    conf = tmp_path / "conf"
    ethane_system(conf, ethane_folder, '  - {geometry: "*.mol2", qm: "{stem}.log"}\n')
    ref = read_fld(ethane_folder / "ethane.fld").active_refs()[0]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = run_module(
        "q2mm.run",
        "-m",
        "--config-dir",
        str(conf),
        "system=my-ethane",
        "scope=explicit",
        f"scope.params=[{{line:{ref.line},field:{ref.field}}}]",
        "ratio_tol=null",
        "optimizer.jac=fd",
        "optimizer.fd_workers=1",
        "optimizer.maxiter=1,2",
        "tracking.plots=false",
        f"tracking.uri={store}",
        "tracking.experiment=own-sweep",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("own-sweep").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 3 and len(children) == 2
    assert all(r.info.status == "FINISHED" for r in runs)


def test_check_lists_what_a_fit_would_use_and_what_is_missing(ethane_dir: Path, tmp_path: Path) -> None:
    """q2mm.check in process: provenance, substructures, active parameters and observation counts;
    a force field without the C3 vdW row is not fittable and names the atoms and their type."""
    from dataclasses import replace

    from q2mm.check import check_training_set
    from q2mm.io.fld import read_fld

    training = load_system("ethane", ethane_dir.parent)
    report = check_training_set(training, "opt")
    text = report.text()
    assert report.fittable and text.endswith("fittable: yes")
    assert "GS: 8 atoms, charge +0, minimum (0 imaginary modes)" in text and "TS (1 imaginary mode)" in text
    assert "types: GS.mol2 (MM3 names)" in text and "substructures matched: #1 Ethane OPT" in text
    assert "active parameters (opt): 17 used by the structures" in text
    assert "observations: eig_diag 35 (weight 0.1), bond_length 14 (weight 10)" in text
    lines = training.forcefield_path.read_text().splitlines(keepends=True)
    k = next(i for i, line in enumerate(lines) if line.startswith("  C3 "))
    (tmp_path / "no-c3-vdw.fld").write_text("".join(lines[:k] + lines[k + 1 :]))
    broken = replace(training, forcefield=read_fld(tmp_path / "no-c3-vdw.fld"))
    report = check_training_set(broken, "opt")
    assert not report.fittable and "without parameters (2): vdw 2 (C3); vdw 4 (C3)" in report.text()


# ---------------------------------------------------------------- a mol2 as public training sets ship them


def mol2_text(molecule, drop: tuple[int, int] | None = None) -> str:
    """A Tripos mol2 as Q2MM's public rh-enamide files have them: MM3 names in the type column
    but a plain ``H`` for every hydrogen, ``nc`` for zero-order bonds; ``drop`` leaves a bond out."""
    atoms = [
        f"{k + 1:7d} {e}{k + 1} {x:10.4f} {y:10.4f} {z:10.4f} {'H' if e == 'H' else t:<6} 1 UNL 0.0000"
        for k, (e, t, (x, y, z)) in enumerate(zip(molecule.elements, molecule.atom_types, molecule.coords))
    ]
    kept = [b for b in molecule.bonds if drop is None or {b.i, b.j} != set(drop)]
    bonds = [
        f"{n + 1:6d} {b.i + 1:5d} {b.j + 1:5d} {'nc' if b.order == 0 else int(b.order)}" for n, b in enumerate(kept)
    ]
    head = f"@<TRIPOS>MOLECULE\n{molecule.title}\n{len(atoms)} {len(bonds)} 1\nSMALL\nUSER_CHARGES\n\n"
    return head + "@<TRIPOS>ATOM\n" + "\n".join(atoms) + "\n@<TRIPOS>BOND\n" + "\n".join(bonds) + "\n"


def test_a_public_style_mol2_takes_custom_types_and_plain_hydrogens(rh_folder, tmp_path: Path) -> None:
    """rh-enamide's first TS as a mol2: RH comes from the folder's atom.typ, each plain H gets its
    type from its neighbour (H3 on the amide N, H1 on C and on Rh), as the .mae types them; without
    the zero-order C...H bond of the forming C-H, q2mm.check names the OPT pattern left unmatched."""
    from q2mm.check import check_training_set

    data, conf = rh_folder
    (mae_first,) = load_system(get_spec("my-rh", config_dir=conf)).molecules[:1]
    jaguar = sorted((data / "jaguar").glob("1*.01.in"))[0].name
    forming = next(
        (b.i, b.j)
        for b in mae_first.bonds
        if b.order == 0 and "H" in {mae_first.elements[b.i], mae_first.elements[b.j]}
    )
    for name, drop in (("whole", None), ("no-forming-bond", forming)):
        (data / f"{name}.mol2").write_text(mol2_text(mae_first, drop))
        write_system(
            conf,
            name,
            f"name: {name}\ndata_dir: {data}\nforcefield: mm3.fld\nstructures:\n"
            f"  - {{geometry: {name}.mol2, qm: jaguar/{jaguar}}}\n",
        )
    whole = load_system(get_spec("whole", config_dir=conf))
    assert whole.molecules[0].atom_types == mae_first.atom_types and "H3" in mae_first.atom_types
    assert check_training_set(whole, "opt").fittable
    report = check_training_set(load_system(get_spec("no-forming-bond", config_dir=conf)), "opt")
    assert not report.fittable
    assert "OPT substructures it does not match: #17 Rhodium catalyzed hydrogenation of enamides" in report.text()
    assert "(pattern HX-RH(-PX)-HX.C2*C2(.2)-N2-C2=O2.2)" in report.text()


def test_a_folder_of_mae_files_pairs_with_a_folder_of_jaguar_files_in_order(rh_dir: Path, tmp_path: Path) -> None:
    """`{geometry: "mae/*.mae", qm: "jaguar/*.01.in"}`: nine one-structure files and nine QM files
    named otherwise pair in natural order (titles' and QM names' leading numbers agreeing), as the
    nine-structure .mae pairs; numbers that disagree are refused with both files named."""
    data = tmp_path / "data"
    shutil.copytree(rh_dir / "mae", data / "mae")
    shutil.copytree(rh_dir / "jaguar", data / "jaguar", ignore=shutil.ignore_patterns("*.out"))
    for name in ("atom.typ", "mm3.fld"):
        shutil.copy(rh_dir / name, data / name)
    conf = tmp_path / "conf"
    entry = '  - {geometry: "mae/*.mae", qm: "jaguar/*.01.in"}\n'
    write_system(conf, "folders", f"name: folders\ndata_dir: {data}\nforcefield: mm3.fld\nstructures:\n{entry}")
    folders = load_system(get_spec("folders", config_dir=conf)).molecules
    registered = load_system("rh-enamide", rh_dir.parent).molecules
    assert [m.title for m in folders] == [p.name.split(".")[0] for p in sorted((data / "jaguar").glob("*.01.in"))]
    assert len(folders) == len(registered) == 9
    for mine, theirs in zip(folders, registered):
        assert mine.atom_types == theirs.atom_types and mine.bonds == theirs.bonds
        assert np.allclose(mine.coords, theirs.coords) and np.allclose(mine.hessian, theirs.hessian)
    second = next((data / "jaguar").glob("2*.01.in"))
    second.rename(second.with_name("1" + second.name))  # now last in natural order, numbered 12
    with pytest.raises(PairingError, match=r"2_DMPE_Conformation_1_from_JCTC_SI.mae and .*/3DMPE.*its QM file \(3\)"):
        load_system(get_spec("folders", config_dir=conf))
