"""Benchmark the second-read page: first result after start, warm click-to-result, memory.

Drives ``app.py`` with Streamlit's AppTest (the page script runs exactly as under
``streamlit run``; the browser's drawing time is not included) and measures:

- first result after start: a fresh Python process imports the app, loads the bundle, reads both
  uploads and shows the first result, timed from just before the process is started;
- warm click-to-result: the rerun that a click on Analyse triggers, heatmaps and every chart
  included, over ``--analyses`` consecutive clicks in one session. Each click is split into the
  pipeline's own time (``Prediction.timings["total"]``) and the page's drawing time;
- resident memory after each analysis, and after each of ``--sessions`` sessions (a new AppTest
  session each, the model shared through ``st.cache_resource``).

Without ``--bundle`` it uses ``MPMMU_BUNDLE``, else the shipped bundle, else an untrained bundle
of the same architecture built on the spot (speed depends on the architecture, not the weights).
Images: ``--mammogram``/``--ultrasound``, else the WG04 full-field DICOM mammogram and a BUS-BRA
ultrasound when ``../shared`` is present, else a synthetic 256-pixel case.

Usage::

    python bench/app.py [--bundle DIR] [--analyses 20] [--sessions 3] [--mammogram F --ultrasound F]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = str(REPO_ROOT / "app.py")
TIMEOUT = 600


def rss_mb() -> float:
    """Return the current resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status; this benchmark needs Linux")


def default_images() -> dict[str, tuple[str, bytes]]:
    """Return {modality: (file name, bytes)}: real full-size images when ../shared exists, else synthetic."""
    from mpmmu.config import data_root, samples_root

    mammogram = samples_root() / "dicom" / "WG04_MG1_J2KI.dcm"
    ultrasounds = sorted((data_root() / "bus-bra" / "images").glob("*.png"))
    if mammogram.exists() and ultrasounds:
        return {
            "mammography": (mammogram.name, mammogram.read_bytes()),
            "ultrasound": (ultrasounds[0].name, ultrasounds[0].read_bytes()),
        }

    import numpy as np
    from PIL import Image

    from mpmmu.data import make_synthetic_case

    case = make_synthetic_case("malignant", seed=5)
    files = {}
    for modality, image in (("mammography", case.mammogram), ("ultrasound", case.ultrasound)):
        buffer = io.BytesIO()
        Image.fromarray(np.uint8(np.round(image * 255.0))).save(buffer, format="PNG")
        files[modality] = (f"synthetic-{modality}.png", buffer.getvalue())
    return files


def resolve_bundle(requested: str | None, workdir: Path) -> tuple[Path, str]:
    """Return the bundle to benchmark and a note on where it came from."""
    from mpmmu.config import DEFAULT_BUNDLE_DIR

    if requested:
        return Path(requested), "given"
    if os.environ.get("MPMMU_BUNDLE"):
        return Path(os.environ["MPMMU_BUNDLE"]), "MPMMU_BUNDLE"
    if (DEFAULT_BUNDLE_DIR / "metadata.json").exists():
        return DEFAULT_BUNDLE_DIR, "shipped"
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    from predict import build_untrained_bundle

    return build_untrained_bundle(workdir / "untrained-bundle"), "untrained, same architecture"


def new_session(files: dict[str, tuple[str, bytes]]):
    """Open the page in a new AppTest session and upload both images."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    for modality, (name, data) in files.items():
        at.file_uploader(key=f"upload_{modality}").upload(name, data)
    at.run()
    if at.exception or at.error:
        raise RuntimeError(f"the page failed before analysis: {[e.value for e in (*at.exception, *at.error)]}")
    return at


def click_analyse(at) -> tuple[float, float]:
    """Click Analyse; return (click-to-result seconds, the pipeline's own seconds)."""
    start = time.perf_counter()
    at.button(key="analyse").click().run()
    elapsed = time.perf_counter() - start
    if at.exception or not any(metric.label == "Probability of malignancy" for metric in at.metric):
        raise RuntimeError(f"no result after Analyse: {[e.value for e in at.exception]}")
    prediction = at.session_state["result"]["prediction"]
    return elapsed, float(prediction.timings["total"])


def first_result_child(bundle: str, files_json: str) -> None:
    """Run in a fresh process: show the first result and print the wall-clock time it appeared."""
    os.environ["MPMMU_BUNDLE"] = bundle
    files = {modality: (name, Path(path).read_bytes()) for modality, (name, path) in json.loads(files_json).items()}
    at = new_session(files)
    click_analyse(at)
    print(json.dumps({"result_at": time.time(), "device": at.session_state["result"]["prediction"].device}))


def measure_first_result(bundle: Path, files: dict[str, tuple[str, bytes]], workdir: Path) -> tuple[float, str]:
    paths = {}
    for modality, (name, data) in files.items():
        path = workdir / f"first-{modality}-{name}"
        path.write_bytes(data)
        paths[modality] = (name, str(path))
    started = time.time()
    output = subprocess.run(
        [sys.executable, __file__, "--first-result-child", "--bundle", str(bundle), "--files", json.dumps(paths)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    child = json.loads(output.stdout.strip().splitlines()[-1])
    return child["result_at"] - started, child["device"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", help="bundle folder (default: MPMMU_BUNDLE, the shipped one, or an untrained one)")
    parser.add_argument("--analyses", type=int, default=20, help="consecutive analyses per session (default 20)")
    parser.add_argument("--sessions", type=int, default=3, help="sessions, one after another (default 3)")
    parser.add_argument("--mammogram", help="mammogram file (default: WG04 DICOM from ../shared, else synthetic)")
    parser.add_argument("--ultrasound", help="ultrasound file (default: first BUS-BRA image, else synthetic)")
    parser.add_argument("--first-result-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.first_result_child:
        first_result_child(args.bundle, args.files)
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="mpmmu-bench-app-"))
    bundle, bundle_note = resolve_bundle(args.bundle, workdir)
    os.environ["MPMMU_BUNDLE"] = str(bundle)
    files = default_images()
    for modality, path in (("mammography", args.mammogram), ("ultrasound", args.ultrasound)):
        if path:
            files[modality] = (Path(path).name, Path(path).read_bytes())

    first_seconds, device = measure_first_result(bundle, files, workdir)

    clicks: list[float] = []
    pipeline_times: list[float] = []
    rss_per_analysis: list[float] = []
    rss_per_session: list[float] = []
    for session in range(args.sessions):
        at = new_session(files)
        click_analyse(at)  # warm-up: the first click of a session fills the per-session memo
        for _ in range(args.analyses):
            elapsed, pipeline_seconds = click_analyse(at)
            if session == 0:
                clicks.append(elapsed)
                pipeline_times.append(pipeline_seconds)
                rss_per_analysis.append(rss_mb())
        del at
        gc.collect()
        rss_per_session.append(rss_mb())

    page_times = [click - pipe for click, pipe in zip(clicks, pipeline_times)]
    quarter = max(1, len(rss_per_analysis) // 4)
    growth = statistics.mean(rss_per_analysis[-quarter:]) - statistics.mean(rss_per_analysis[:quarter])
    load = os.getloadavg()

    sizes = {modality: f"{name} ({len(data) / 1e6:.1f} MB)" for modality, (name, data) in files.items()}
    print(f"App benchmark, {platform.node()}, {os.cpu_count()} CPUs, device {device}, load average {load[0]:.1f}")
    print(f"bundle: {bundle} ({bundle_note}); mammogram {sizes['mammography']}; ultrasound {sizes['ultrasound']}")
    print()
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| first result after process start | {first_seconds:.1f} s | <= 10 s |")
    print(f"| warm click-to-result, median ({len(clicks)} clicks) | {statistics.median(clicks):.2f} s | <= 1 s |")
    print(f"| warm click-to-result, max | {max(clicks):.2f} s | |")
    print(f"| of which pipeline (predict with heatmaps), median | {statistics.median(pipeline_times):.2f} s | |")
    print(f"| of which page (rerun, figures, report objects), median | {statistics.median(page_times):.2f} s | |")
    print(f"| RSS after analysis 1 / {len(rss_per_analysis)} of session 1 | {rss_per_analysis[0]:.0f} / {rss_per_analysis[-1]:.0f} MiB | flat |")
    marks = sorted({0, *range(4, len(rss_per_analysis), 5), len(rss_per_analysis) - 1})
    series = ", ".join(f"{rss_per_analysis[i]:.0f}" for i in marks)
    print(f"| RSS after analyses {', '.join(str(i + 1) for i in marks)} of session 1 | {series} MiB | flat |")
    print(f"| RSS growth, last quarter minus first quarter of session 1 | {growth:+.1f} MiB | ~0 |")
    sessions = " / ".join(f"{value:.0f}" for value in rss_per_session)
    print(f"| RSS after each of {args.sessions} sessions | {sessions} MiB | flat |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
