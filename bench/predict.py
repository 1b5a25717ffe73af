"""Benchmark one-case prediction: latency, Grad-CAM, load time and peak memory.

Measures, in one process:

- model load time (``Pipeline.load``: verify hashes, build branches, load ensembles);
- one-case latency: decode both files + preprocess + both branches + stage 2, no explanation;
- Grad-CAM per modality (including the mapping back onto the original image);
- a bare EfficientNet-Lite0 forward pass at the bundle's input size (batch 1, eval, inference
  mode, the pipeline's memory layout), the reference every latency is divided by, since these
  VMs' speed drifts by up to 1.6x between runs;
- peak resident memory of the process.

Prints a markdown table (for docs/BENCHMARKS.md). Without --bundle or when the default bundle is
missing, it benchmarks an untrained bundle of the same architecture built on the spot: latency
depends on the architecture, not on the weights, but its probabilities mean nothing.

Usage::

    python bench/predict.py [--bundle DIR] [--mammogram FILE] [--ultrasound FILE] [--repeats 30]
"""

from __future__ import annotations

import argparse
import logging
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mpmmu.config import DEFAULT_BUNDLE_DIR

logger = logging.getLogger("bench.predict")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_untrained_bundle(out_dir: Path, size: int = 224, seed: int = 0) -> Path:
    """Save a bundle of untrained Lite0 branches and stage-2 models fitted on random features."""
    from mpmmu.ensemble.stacking import StackingEnsemble
    from mpmmu.ensemble.fusion import LateFusion, fuse_features
    from mpmmu.models import build_branch
    from mpmmu.pipeline import Bundle
    from mpmmu.preprocess import PreprocessConfig

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    branches = {modality: build_branch(modality).eval() for modality in ("mammography", "ultrasound")}
    n = 40
    y = np.tile([0, 1], n // 2)
    groups = np.arange(n)
    features = {m: rng.standard_normal((n, b.feature_dim)) for m, b in branches.items()}
    params = {"cv": 3, "calibration_cv": 2, "random_state": seed}
    ensembles = {
        "stacking": StackingEnsemble(**params).fit(fuse_features(features["mammography"], features["ultrasound"]), y, groups),
        "late_fusion": LateFusion().fit(rng.uniform(0.05, 0.95, (n, 2)), y),
        "mammography_only": StackingEnsemble(**params).fit(features["mammography"], y, groups),
        "ultrasound_only": StackingEnsemble(**params).fit(features["ultrasound"], y, groups),
    }
    bundle = Bundle.create(
        branches=branches,
        ensembles=ensembles,
        preprocess_configs={m: PreprocessConfig(size=size) for m in branches},
        thresholds={name: 0.5 for name in ensembles},
        fusion="stacking",
        validation_auc={"stacking": 0.5, "late_fusion": 0.5},
        metrics={},
        training_data={"description": "untrained benchmark bundle; random features", "pseudo_paired": True},
        manifest_sha256={},
    )
    bundle.save(out_dir)
    return out_dir


def synthetic_files(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write a 1024 px synthetic mammogram and a 512 px synthetic ultrasound as PNG."""
    from PIL import Image

    from mpmmu.data.synthetic import make_synthetic_case

    mammogram = make_synthetic_case("malignant", seed, size=1024).mammogram
    ultrasound = make_synthetic_case("malignant", seed + 1, size=512).ultrasound
    paths = out_dir / "mammogram.png", out_dir / "ultrasound.png"
    for image, path in zip((mammogram, ultrasound), paths):
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path)
    return paths


def bare_forward_seconds(size: int, repeats: int, channels_last: bool) -> tuple[list[float], list[float]]:
    """Time a bare tf_efficientnet_lite0 forward pass (batch 1) at ``size`` pixels.

    Returns the wall-clock and the process CPU seconds of each repeat.
    """
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1).eval()
    batch = torch.randn(1, 3, size, size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    wall, cpu = [], []
    with torch.inference_mode():
        for _ in range(3):
            model(batch)
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            model(batch)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def run(args: argparse.Namespace) -> str:
    """Run the benchmark and return the markdown report."""
    from mpmmu.io import read_image
    from mpmmu.pipeline import Pipeline

    work = Path(tempfile.mkdtemp(prefix="mpmmu-bench-"))
    bundle_dir = args.bundle
    bundle_note = str(bundle_dir)
    if not (bundle_dir / "metadata.json").is_file():
        bundle_dir = build_untrained_bundle(work / "bundle")
        bundle_note = "untrained bundle of the shipped architecture (no trained bundle found)"
    if args.mammogram is None or args.ultrasound is None:
        mammogram_path, ultrasound_path = synthetic_files(work)
        images_note = "synthetic PNGs: mammogram 1024 x 1024, ultrasound 512 x 512"
    else:
        mammogram_path, ultrasound_path = args.mammogram, args.ultrasound
        images_note = f"{mammogram_path.name}, {ultrasound_path.name}"

    start = time.perf_counter()
    pipeline = Pipeline.load(bundle_dir, device=args.device, channels_last=args.channels_last)
    load_seconds = time.perf_counter() - start
    rss_after_load = _peak_rss_mb()

    def one_case(explain: bool):
        mammogram = read_image(mammogram_path)
        ultrasound = read_image(ultrasound_path)
        return pipeline.predict(mammogram, ultrasound, args.mammogram_roi, args.ultrasound_roi, explain=explain)

    for _ in range(args.warmup):
        one_case(explain=True)

    case_seconds, case_cpu, steps = [], [], {}
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        prediction = one_case(explain=False)
        case_seconds.append(time.perf_counter() - start)
        case_cpu.append(time.process_time() - start_cpu)
        for name, value in prediction.timings.items():
            steps.setdefault(name, []).append(value)
    explained = [one_case(explain=True) for _ in range(args.repeats)]
    gradcam = {
        m: [p.timings[f"gradcam_{m}"] for p in explained] for m in ("mammography", "ultrasound")
    }
    attention = {
        m: [p.timings[f"attention_{m}"] for p in explained] for m in ("mammography", "ultrasound")
    }

    sizes = pipeline.metadata["input_size"]
    bare = {
        m: bare_forward_seconds(int(sizes[m]), args.repeats, channels_last=pipeline.channels_last)
        for m in ("mammography", "ultrasound")
    }
    bare_pair = statistics.median(bare["mammography"][0]) + statistics.median(bare["ultrasound"][0])
    bare_pair_cpu = statistics.median(bare["mammography"][1]) + statistics.median(bare["ultrasound"][1])
    branches_pair = statistics.median(steps["branch_mammography"]) + statistics.median(steps["branch_ultrasound"])
    peak = _peak_rss_mb()

    def row(name: str, values: list[float], cpu: list[float] | None = None) -> str:
        median, p90 = statistics.median(values), _percentile(values, 90)
        cells = [name, f"{median * 1000:.1f}", f"{p90 * 1000:.1f}", f"{median / bare_pair:.2f}", "", ""]
        if cpu is not None:
            cpu_median = statistics.median(cpu)
            cells[4:] = [f"{cpu_median * 1000:.1f}", f"{cpu_median / bare_pair_cpu:.2f}"]
        return "| " + " | ".join(cells) + " |"

    lines = [
        f"Device: {pipeline.device_name}; torch {torch.__version__}; Python {platform.python_version()}; "
        f"{args.repeats} repeats after {args.warmup} warm-up cases; channels-last {args.channels_last}. "
        "CPU ms is the process CPU time (all threads), which machine load inflates less than wall time.",
        f"Bundle: {bundle_note}. Images: {images_note}. Input size: mammography {sizes['mammography']} px, "
        f"ultrasound {sizes['ultrasound']} px. ROIs: {args.mammogram_roi or 'none (whole image)'}, "
        f"{args.ultrasound_roi or 'none (whole image)'}.",
        "",
        "| step | median ms | p90 ms | ratio to two bare forwards | median CPU ms | CPU ratio |",
        "|---|---|---|---|---|---|",
        row("one case: decode + preprocess + both branches + stage 2", case_seconds, case_cpu),
        row("  preprocess mammography", steps["preprocess_mammography"]),
        row("  preprocess ultrasound", steps["preprocess_ultrasound"]),
        row("  mammography branch", steps["branch_mammography"]),
        row("  ultrasound branch", steps["branch_ultrasound"]),
        row("  stage 2 (ensemble)", steps["ensemble"]),
        row("both branches (model part of the pipeline)", [branches_pair]),
        row("Grad-CAM mammography (incl. mapping to original)", gradcam["mammography"]),
        row("Grad-CAM ultrasound (incl. mapping to original)", gradcam["ultrasound"]),
        row("attention maps mammography", attention["mammography"]),
        row("attention maps ultrasound (ECA channel map)", attention["ultrasound"]),
        row("bare Lite0 forward, mammography size", *bare["mammography"]),
        row("bare Lite0 forward, ultrasound size", *bare["ultrasound"]),
        "",
        f"Model load: {load_seconds:.2f} s ({load_seconds / bare_pair:.0f}x two bare forwards). "
        f"Peak resident memory: {rss_after_load:.0f} MB after load, {peak:.0f} MB at the end.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the benchmark and print the table."""
    from mpmmu.preprocess import parse_roi

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_DIR, help="model bundle folder")
    parser.add_argument("--mammogram", type=Path, help="mammogram file (default: synthetic)")
    parser.add_argument("--ultrasound", type=Path, help="ultrasound file (default: synthetic)")
    parser.add_argument("--mammogram-roi", type=parse_roi, help="lesion box x,y,w,h on the mammogram")
    parser.add_argument("--ultrasound-roi", type=parse_roi, help="lesion box x,y,w,h on the ultrasound")
    parser.add_argument("--repeats", type=int, default=30, help="timed cases per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed cases before measuring")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--channels-last", action="store_true", help="run the branches in channels-last layout")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    print(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
