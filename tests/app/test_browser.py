"""Real-browser check: Debian's Chromium, driven by Playwright, against `streamlit run` on loopback.

Uploads a mammogram (extension-less DICOM) and an ultrasound (PNG), clicks Analyse, checks that
the probability and both Grad-CAM heatmaps appear, and saves a screenshot; a second test does the
same for a real BUS-BRA + mini-MIAS example with the shipped bundle. `make screenshots` runs both
and keeps the screenshots in docs/screenshots/.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app_helpers import REPO_ROOT
from mpmmu.config import DEFAULT_BUNDLE_DIR, data_root

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshots go to MPMMU_SCREENSHOT_DIR when it is set (`make screenshots` sets it to
#: docs/screenshots), else to the test's temporary folder, so a test run never changes the checkout.
SCREENSHOT_DIR_VARIABLE = "MPMMU_SCREENSHOT_DIR"
#: Seconds to wait for the server, the first page and the first result on a busy 2-core machine.
STARTUP_TIMEOUT = 180
RESULT_TIMEOUT = 240


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_health(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout} s")


@pytest.fixture()
def server(app_env, tmp_path):
    """Start `streamlit run app.py` on 127.0.0.1 with a free port; stop it afterwards."""
    yield from _serve(tmp_path, os.environ.copy())


@pytest.fixture()
def real_server(tmp_path, monkeypatch):
    """Serve the app with the shipped bundle and the real data folder; skip when either is missing."""
    if not (DEFAULT_BUNDLE_DIR / "metadata.json").exists():
        pytest.skip(f"no shipped bundle at {DEFAULT_BUNDLE_DIR}")
    if not ((data_root() / "bus-bra").is_dir() and (data_root() / "mini-mias").is_dir()):
        pytest.skip(f"BUS-BRA and mini-MIAS not found under {data_root()}; set MPMMU_DATA")
    monkeypatch.delenv("MPMMU_BUNDLE", raising=False)
    yield from _serve(tmp_path, os.environ.copy())


def _serve(tmp_path: Path, env: dict[str, str]):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
            "--server.address", "127.0.0.1",
            "--server.port", str(port),
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_health(url, process, STARTUP_TIMEOUT)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

@contextlib.contextmanager
def _chromium_page(tmp_path: Path, height: int):
    """Yield a page of Debian's Chromium driven by Playwright, skipping when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium not found at {CHROMIUM}; install it with `apt-get install chromium` (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (dev extra)")

    with sync_api.sync_playwright() as playwright:
        # A persistent context on a new, empty folder: Playwright's way to set --user-data-dir.
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": height},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(STARTUP_TIMEOUT * 1000)
            yield page
        finally:
            browser.close()


def _screenshot_path(name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get(SCREENSHOT_DIR_VARIABLE) or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_browser_upload_analyse_shows_heatmaps(server, case_files, tmp_path):
    mammogram = tmp_path / "IM000001"
    mammogram.write_bytes(case_files["mammography"])
    ultrasound = tmp_path / "ultrasound.png"
    ultrasound.write_bytes(case_files["ultrasound"])

    with _chromium_page(tmp_path, height=3600) as page:
        page.goto(server)
        page.get_by_text("Research use only, not for clinical diagnosis.").first.wait_for()

        inputs = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        inputs.nth(0).set_input_files(str(mammogram))
        page.get_by_text("view: CC").first.wait_for()
        inputs.nth(1).set_input_files(str(ultrasound))
        page.get_by_text("256 × 256 px · PNG").first.wait_for()

        page.get_by_role("button", name="Analyse").click()
        page.get_by_text("Where the model looked (Grad-CAM)").wait_for(timeout=RESULT_TIMEOUT * 1000)
        page.get_by_text("Run details").wait_for()

        metric = page.locator('[data-testid="stMetric"]').filter(has_text="Probability of malignancy").first
        value = metric.locator('[data-testid="stMetricValue"]').inner_text()
        assert value.strip().endswith("%")
        assert 0.0 <= float(value.strip().rstrip("%")) <= 100.0

        heatmap_bars = page.locator(".js-plotly-plot .colorbar").filter(has_text="Grad-CAM")
        heatmap_bars.nth(1).wait_for()
        assert heatmap_bars.count() == 2

        page.wait_for_timeout(1500)
        screenshot = _screenshot_path("second_read_result.png", tmp_path)
        page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000


def test_browser_real_example_with_shipped_bundle(real_server, tmp_path):
    with _chromium_page(tmp_path, height=3600) as page:
        page.goto(real_server)
        page.get_by_text("Research use only, not for clinical diagnosis.").first.wait_for()

        # A click during the first script run (which loads the bundle) can be lost, so wait
        # for that run to draw the Analyse button first.
        page.get_by_role("button", name="Analyse").wait_for()
        page.get_by_text("Example case").first.click()
        # The example select box appears once the rerun after the radio click has finished.
        examples = page.locator('[data-testid="stSelectbox"]').filter(has_text="Example").first
        examples.wait_for()
        examples.click()
        page.get_by_role("option").filter(has_text="Real pseudo-pair, malignant").first.click()
        page.get_by_text("This example pairs a mammogram and an ultrasound").first.wait_for()

        page.get_by_role("button", name="Analyse").click()
        page.get_by_text("Where the model looked (Grad-CAM)").wait_for(timeout=RESULT_TIMEOUT * 1000)

        metric = page.locator('[data-testid="stMetric"]').filter(has_text="Probability of malignancy").first
        value = metric.locator('[data-testid="stMetricValue"]').inner_text()
        assert 0.0 <= float(value.strip().rstrip("%")) <= 100.0
        page.get_by_text("Votes of the base learners and the meta-learner").wait_for()

        heatmap_bars = page.locator(".js-plotly-plot .colorbar").filter(has_text="Grad-CAM")
        heatmap_bars.nth(1).wait_for()
        assert heatmap_bars.count() == 2

        page.wait_for_timeout(1500)
        screenshot = _screenshot_path("second_read_real_case.png", tmp_path)
        page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000


def test_browser_model_card_in_both_languages(real_server, tmp_path):
    with _chromium_page(tmp_path, height=2400) as page:
        page.goto(real_server)
        page.get_by_role("button", name="Analyse").wait_for()

        # Follow the sidebar link: loading the page URL directly would start a new session.
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Model card").click()
        page.get_by_text("One-image cases: mammogram alone answered by the").wait_for()
        page.get_by_text("Two-image model in use:").wait_for()
        page.wait_for_timeout(1500)
        english = _screenshot_path("model_card.png", tmp_path)
        page.screenshot(path=str(english), full_page=True)

        page.locator('[data-testid="stSidebar"]').get_by_text("简体中文", exact=True).click()
        page.get_by_text("单图像病例：仅有乳腺X线时由").wait_for()
        page.wait_for_timeout(1500)
        chinese = _screenshot_path("model_card_zh-CN.png", tmp_path)
        page.screenshot(path=str(chinese), full_page=True)
    assert english.stat().st_size > 50_000
    assert chinese.stat().st_size > 50_000
