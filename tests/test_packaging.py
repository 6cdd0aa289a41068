"""The package installs like one: a built wheel, in a fresh venv, runs its entry points from
any directory (the Hydra configs and presets ship inside it, nothing is read from the checkout).

The wheel is built (``pip wheel``, isolated build: needs the package index, as CI has) from a
copy of the checkout without its build outputs, so stale ``build/`` files cannot leak into it.
It is installed with ``--no-index --no-deps`` into a venv without system site-packages; the
venv then sees this test environment's site-packages (a ``.pth`` line) for the declared
dependencies only, and ``pip check`` confirms that q2mm's requirements are met by them
(installing jax, mlflow & co. afresh takes minutes on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from q2mm.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow

# Everything of the checkout but its version control, environments, outputs and caches.
NOT_PACKAGING_INPUTS = (
    ".git",
    ".venv",
    "build",
    "dist",
    "outputs",
    "multirun",
    "mlruns",
    "bench-results",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".q2mm_cache",
    "tests",
)
CONSOLE_SCRIPTS = ("q2mm-run", "q2mm-check", "q2mm-bench", "q2mm-compare", "q2mm-energy", "q2mm-evaluate", "q2mm-fld")


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(bin directory of a fresh venv with the q2mm wheel installed, its environment)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(*NOT_PACKAGING_INPUTS))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", root / "dist", source], root, env)
    wheels = sorted((root / "dist").glob("q2mm-*.whl"))
    assert len(wheels) == 1
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], root, env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheels[0]], root, env)
    purelib = _run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib.stdout.strip()) / "q2mm_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    env = dict(env, VIRTUAL_ENV=str(venv), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    return bin_dir, env


def test_wheel_ships_configs_and_presets_and_imports_from_the_venv(installed, tmp_path):
    bin_dir, env = installed
    where = _run(
        [
            bin_dir / "python",
            "-c",
            "import q2mm.paths as p; print(p.__file__, p.CONF_DIR, p.EXPERIMENTS_DIR, p.IN_CHECKOUT)",
        ],
        tmp_path,
        env,
    ).stdout.split()
    venv = bin_dir.parent.resolve()
    assert all(Path(path).resolve().is_relative_to(venv) for path in where[:3]), where
    assert where[3] == "False"
    assert (Path(where[1]) / "config.yaml").is_file() and (Path(where[1]) / "system" / "sn2.yaml").is_file()
    assert sorted(p.name for p in Path(where[2]).glob("*.yaml")) == sorted(
        p.name for p in (PROJECT_ROOT / "experiments").glob("*.yaml")
    )
    check = subprocess.run(
        [bin_dir / "python", "-m", "pip", "check"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert not [line for line in check.stdout.splitlines() if line.lower().startswith("q2mm ")], check.stdout


def test_installed_compile_probe_needs_no_checkout(installed, tmp_path):
    bin_dir, env = installed
    code = "from pathlib import Path; from q2mm.benchmarks import measure as m; print(m.probe_invocation([], Path('c'))[1].get('PYTHONPATH'))"
    assert _run([bin_dir / "python", "-c", code], tmp_path, env).stdout.strip() == "None"


def test_console_scripts_answer_help(installed, tmp_path):
    bin_dir, env = installed
    for script in CONSOLE_SCRIPTS:
        assert (bin_dir / script).is_file(), script
        _run([bin_dir / script, "--help"], tmp_path, env, timeout=300)
    composed = _run(
        [bin_dir / "q2mm-run", "experiment=qfuerza-fit", "system=ethane", "--cfg", "job"], tmp_path, env
    ).stdout
    assert "name: qfuerza" in composed and "memory: 30" in composed


def test_installed_q2mm_run_fits_from_an_empty_directory(installed, tmp_path):
    bin_dir, env = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = dict(env, Q2MM_DATA=str(tmp_path / "no-data"))
    done = _run([bin_dir / "q2mm-run", "tracking=off", "optimizer.maxiter=2"], work, env)
    assert "done: score " in done.stdout  # the closing line, through logging
    outputs = list((work / "outputs").glob("*/*"))
    assert len(outputs) == 1, outputs
    assert (outputs[0] / "sn2-optimized.fld").is_file() and (outputs[0] / "sn2-fit.json").is_file()
    assert not (work / "mlruns").exists()  # tracking=off opens no store
