"""``mpmmu data``: build case manifests from the public data sets, or write a synthetic data set."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from mpmmu.config import cache_root, data_root
from mpmmu.data.bus_bra import build_bus_bra
from mpmmu.data.manifest import SPLITS, CaseRow, write_manifest
from mpmmu.data.mini_mias import build_mini_mias
from mpmmu.data.pairing import make_pseudo_pairs, pair_groups
from mpmmu.data.splits import patient_split
from mpmmu.data.synthetic import write_synthetic_dataset
from mpmmu.errors import ManifestError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` subcommand with its ``build`` and ``synthetic`` actions."""
    parser = subparsers.add_parser("data", help="build case manifests or a synthetic data set")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build",
        help="write BUS-BRA, mini-MIAS and pseudo-pair manifests with patient-level splits",
    )
    build.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder holding bus-bra/ and mini-mias/ (default: MPMMU_DATA, else ../shared/data)",
    )
    build.add_argument(
        "--out", type=Path, default=None, help="folder for the manifests (default: <cache>/manifests)"
    )
    build.add_argument("--seed", type=int, default=0, help="seed of the splits and the pairing (default 0)")
    build.add_argument(
        "--off-breast",
        choices=("drop", "keep"),
        default="drop",
        help="mini-MIAS findings centred on the film background: drop (default) or keep",
    )
    build.set_defaults(handler=run_build)

    synthetic = actions.add_parser("synthetic", help="write a synthetic paired data set with its manifest")
    synthetic.add_argument("--out", type=Path, required=True, help="folder to write images/ and manifest.csv into")
    synthetic.add_argument("--n", type=int, default=20, help="cases per label (default 20)")
    synthetic.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    synthetic.add_argument("--seed", type=int, default=0, help="seed of the images and the split (default 0)")
    synthetic.set_defaults(handler=run_synthetic)


def format_counts(name: str, rows: Sequence[CaseRow]) -> str:
    """Return a text table of benign and malignant cases and of patients per split, and in all.

    A pseudo-pair counts both of its patients, so a split's patients are its distinct
    ultrasound patients plus its distinct mammogram patients.
    """
    lines = [name, f"  {'split':<8}{'benign':>8}{'malignant':>11}{'cases':>8}{'patients':>10}"]
    parts = [(split, [row for row in rows if row.split == split]) for split in (*SPLITS, None)]
    parts.append(("all", list(rows)))
    for split, part in parts:
        if not part and split != "all":
            continue
        benign = sum(row.label == "benign" for row in part)
        malignant = sum(row.label == "malignant" for row in part)
        us_patients, mg_patients = pair_groups(part)
        patients = len(set(us_patients) | set(mg_patients))
        lines.append(f"  {split or 'none':<8}{benign:>8}{malignant:>11}{len(part):>8}{patients:>10}")
    return "\n".join(lines)


def run_build(args: argparse.Namespace) -> int:
    """Build the four manifests and print their counts."""
    root = args.data if args.data is not None else data_root()
    for folder in (root / "bus-bra", root / "mini-mias"):
        if not folder.is_dir():
            raise ManifestError(
                f"data folder {str(folder)!r} not found; pass --data or set MPMMU_DATA to the folder "
                "holding bus-bra/ and mini-mias/"
            )
    out = args.out if args.out is not None else cache_root() / "manifests"

    bus_bra = build_bus_bra(root / "bus-bra")
    mini_mias = build_mini_mias(root / "mini-mias", off_breast=args.off_breast)
    ultrasound = patient_split(bus_bra.rows, seed=args.seed)
    mammogram = patient_split(mini_mias.rows, seed=args.seed)
    manifests = {
        "bus_bra.csv": ultrasound,
        "mini_mias.csv": mammogram,
        "pseudo_pairs_ultrasound.csv": make_pseudo_pairs(ultrasound, mammogram, "ultrasound", args.seed),
        "pseudo_pairs_mammogram.csv": make_pseudo_pairs(ultrasound, mammogram, "mammogram", args.seed),
    }
    for name, rows in manifests.items():
        path = write_manifest(rows, out / name)
        print(format_counts(str(path), rows))

    print(
        "BUS-BRA: {images} images, {patients} patients; {size_mismatch} rows whose Width/Height differ "
        "from the PNG, {bbox_clamped} BBOX clamped".format(**bus_bra.counts)
    )
    print(
        "mini-MIAS: {finding_rows} Info.txt rows over {images} images; {normal_images} normal images and "
        "{unlocated_findings} findings without location skipped; {off_breast} findings centred off the "
        "breast ({action}); {lesion_cases} lesion cases from {lesion_women} women".format(
            action="dropped" if args.off_breast == "drop" else "kept", **mini_mias.counts
        )
    )
    print("Pseudo-pairs join two patients by label only: a fused gain measured on them is an upper bound.")
    return 0


def run_synthetic(args: argparse.Namespace) -> int:
    """Write the synthetic data set and print where its manifest is."""
    manifest = write_synthetic_dataset(args.out, args.n, args.seed, size=args.size)
    print(f"wrote {2 * args.n} synthetic cases; manifest {manifest}")
    return 0
