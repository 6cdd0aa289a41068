"""The MLflow UI as a chemist opens it: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``.ci/setup.d/40-chromium.sh``) driven by Selenium against
``mlflow ui`` on 127.0.0.1 over a 2-job fc_fraction sweep store.

Screenshots are saved in the test's temporary directory (printed at the end) to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .conftest import experiment_runs
from .test_compare import run_sweep
from .test_server import free_port

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").is_file() else None
)
MLFLOW = Path(sys.executable).with_name("mlflow")
WAIT_S = 90  # the first page load compiles nothing but a busy 2-core machine is slow


def _skip_reason() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not CHROMIUM or not CHROMEDRIVER:
        return (
            "Debian's chromium and chromium-driver are not installed (.ci/setup.d/40-chromium.sh installs them "
            "as root with apt reachable)"
        )
    return None


if _skip_reason():
    pytest.skip(_skip_reason(), allow_module_level=True)


@pytest.fixture
def ui(tmp_path):
    """(base URL, store URI) of an ``mlflow ui`` serving a fresh sqlite store on 127.0.0.1."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    port = free_port()
    log = open(tmp_path / "mlflow-ui.log", "w")
    proc = subprocess.Popen(
        [str(MLFLOW), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow ui did not start: {(tmp_path / 'mlflow-ui.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base, uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # mlflow ui and its server workers, by their group
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def wait_for_text(driver, texts: list[str], shot: Path, timeout: float = WAIT_S) -> str:
    """The page's visible text once it contains every one of ``texts``; a screenshot either way."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = driver.find_element("tag name", "body").text
        if all(text in body for text in texts):
            break
        time.sleep(1.0)
    time.sleep(1.0)  # let charts and images settle for the screenshot
    driver.save_screenshot(str(shot))
    missing = [text for text in texts if text not in body]
    assert not missing, f"{missing} not on {driver.current_url} (screenshot {shot}):\n{body[:3000]}"
    return body


def test_runs_run_and_compare_pages_show_what_a_chemist_compares(tmp_path, ui, browser, make_cfg):
    base, uri = ui
    handoff = run_sweep(make_cfg, tmp_path, uri, "bounds-sweep")
    runs = {r.info.run_id: r for r in experiment_runs(uri, "bounds-sweep")}
    parent = runs.pop(handoff.parent_run_id)
    children = sorted(runs.values(), key=lambda r: r.data.tags["q2mm.job"])
    names = [r.info.run_name for r in children]
    assert names == ["sn2 fc_fraction=0.1", "sn2 fc_fraction=0.2"]
    eid = handoff.experiment_id

    # the runs list at its machine-learning URL: the parent and both children, named by fc_fraction
    browser.get(f"{base}/#/experiments/{eid}/runs?workflowType=machine_learning")
    wait_for_text(browser, [parent.info.run_name, "matching runs"], tmp_path / "1-runs.png")
    _click_all(browser, "button[data-component-id*='runnamecellrenderer']")  # the parent's [+]: nested runs
    wait_for_text(browser, [parent.info.run_name, *names], tmp_path / "1-runs.png")

    # a child's page (the address the job's closing line prints): the description and the RMSD metrics
    child = children[0]
    browser.get(f"{base}/#/experiments/{eid}/runs/{child.info.run_id}?workflowType=machine_learning")
    wait_for_text(
        browser, ["Swept values", "fc_fraction=0.1", "Description", "rmsd_bond_length_final"], tmp_path / "2-child.png"
    )
    _click_all(browser, "xpath://*[text()='Show more']")
    wait_for_text(
        browser,
        ["RMSD after", "eigenmatrix diagonal", "rmsd_bond_length_final", "rmsd_eig_diag_initial", "score_final"],
        tmp_path / "2-child.png",
    )

    # the compare page of the two children lists the parity plots and shows them side by side
    ids = urllib.parse.quote(json.dumps([c.info.run_id for c in children]))
    browser.get(f"{base}/#/compare-runs?runs={ids}&experiments={urllib.parse.quote(json.dumps([eid]))}")
    wait_for_text(browser, [*names, "Artifacts", "score_final"], tmp_path / "3-compare.png")
    listed = _artifact_names(browser)
    assert {f"parity_{k}.png" for k in ("eig_diag", "bond_length", "bond_angle")} <= listed, listed
    assert "linear-fit.json" in listed
    node = browser.find_element(
        "css selector", "[data-testid='artifact-tree-node'][artifact-name='parity_bond_length.png']"
    )
    browser.execute_script("arguments[0].scrollIntoView(); arguments[0].click();", node)
    time.sleep(3)
    images = [
        img
        for img in browser.find_elements("tag name", "img")
        if img.is_displayed() and (browser.execute_script("return arguments[0].naturalWidth;", img) or 0) >= 800
    ]  # the PNGs: 1100 px
    browser.save_screenshot(str(tmp_path / "4-compare-plots.png"))
    sources = {img.get_attribute("src") for img in images}
    columns = {img.location["x"] for img in images}
    assert len(sources) == 2 and len(columns) == 2, f"two runs' plots side by side: {sources}, x at {columns}"
    print(f"screenshots: {sorted(str(p) for p in tmp_path.glob('*.png'))}")


def _click_all(driver, selector: str) -> None:
    """Click every element matching ``selector`` (CSS, or XPath after 'xpath:')."""
    by, value = ("xpath", selector[6:]) if selector.startswith("xpath:") else ("css selector", selector)
    for element in driver.find_elements(by, value):
        driver.execute_script("arguments[0].click();", element)
    time.sleep(1.0)


def _artifact_names(driver, timeout: float = WAIT_S) -> set[str]:
    """The files the compare page's artifact tree lists (its entries carry their names)."""
    deadline = time.monotonic() + timeout
    names: set[str] = set()
    while time.monotonic() < deadline and not any(n.startswith("parity_") for n in names):
        time.sleep(1.0)
        names = {
            node.get_attribute("artifact-name")
            for node in driver.find_elements("css selector", "[data-testid='artifact-tree-node']")
        }
    return names
