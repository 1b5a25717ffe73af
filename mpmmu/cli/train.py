"""``mpmmu train``: fine-tune both branches, fit stage 2 and save the bundle.

Examples::

    mpmmu train --out assets/models/mpmmu-default              # real data from MPMMU_DATA
    mpmmu train --synthetic 12 --epochs 1 --out /tmp/b --work /tmp/w   # fast synthetic run
    mpmmu train --cv mammography --work ~/.cache/mpmmu/runs/cv         # woman-wise 5-fold CV
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train the branches and stage 2 and save a model bundle",
        description=(
            "Build the manifests, split by patient (7:2:1), fine-tune the ultrasound branch on "
            "BUS-BRA lesion boxes and the mammography branch on mini-MIAS lesion squares, fit "
            "stage 2 on validation pseudo-pairs, score the test split and save the bundle."
        ),
    )
    parser.add_argument("--data", type=Path, default=None, help="folder with bus-bra/ and mini-mias/ (default: MPMMU_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="bundle folder to write (default: none, only the work folder)")
    parser.add_argument("--work", type=Path, default=None, help="folder for checkpoints, feature arrays and predictions (default: <cache root>/runs/default)")
    parser.add_argument("--epochs", type=int, default=12, help="maximum epochs of the ultrasound branch (default: 12)")
    parser.add_argument("--mammography-epochs", type=int, default=30, help="maximum epochs of the mammography branch (default: 30)")
    parser.add_argument("--image-size", type=int, default=224, help="model input side in pixels (default: 224)")
    parser.add_argument("--attention", choices=("default", "none"), default="default", help="'default': CBAM for mammography, ECA for ultrasound; 'none' for the ablation")
    parser.add_argument("--attention-stages", type=_stages, default=("head",), metavar="LIST", help="where the attention modules sit, comma-separated: 'head' (after the last 1x1 convolution) and/or backbone stage indices (0-6 for EfficientNet-Lite0, 0-3 for ResNet-18), e.g. '4,6,head' (default: head)")
    parser.add_argument("--backbone", default="efficientnet_lite0", choices=("efficientnet_lite0", "resnet18"), help="branch backbone (default: efficientnet_lite0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, training, pairing and stage 2 (default: 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the branches train (default: auto, CUDA when available)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch (default: 2)")
    parser.add_argument("--resume", action="store_true", help="continue stage 1 from the checkpoints in the work folder")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N", help="train on a generated data set with N cases per label instead of the real data")
    parser.add_argument("--only", choices=("mammography", "ultrasound"), default=None, help="train only this branch and stop before stage 2")
    parser.add_argument("--cv", choices=("mammography",), default=None, help="run woman-wise 5-fold CV of this branch instead of the full training")
    parser.add_argument("--freeze-stages", type=int, default=0, help="backbone stages kept frozen during fine-tuning (default: 0)")
    parser.add_argument("--mammography-freeze-stages", type=int, default=3, help="backbone stages kept frozen in the mammography branch; fewer left the validation AUC near chance on mini-MIAS (default: 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="stage-1 batch size (default: 16)")
    parser.add_argument("--lr", type=float, default=3e-4, help="stage-1 peak learning rate (default: 3e-4)")
    parser.add_argument("--mammography-lr", type=float, default=1e-3, help="peak learning rate of the mammography branch (default: 1e-3)")
    parser.add_argument("--patience", type=int, default=4, help="epochs without a validation-AUC gain before the ultrasound branch stops (default: 4)")
    parser.add_argument("--mammography-patience", type=int, default=8, help="early-stopping patience of the mammography branch, whose validation AUC on about 24 findings is noisy (default: 8)")
    parser.add_argument("--pairing-seeds", type=int, default=5, help="test pairing seeds per design (default: 5)")
    parser.add_argument("--stage2-folds", type=int, default=3, help="folds of the stage-2 cross-fitting inside the validation split (default: 3)")
    parser.add_argument("--trees", type=int, default=100, help="trees per forest in stage 2 (default: 100)")
    parser.add_argument("--stage1-minutes", type=float, default=None, help="wall-clock budget per branch for stage 1 in minutes; the best epoch so far is kept (default: none)")
    parser.add_argument("--stop-ultrasound-after", type=int, default=None, metavar="N", help="stop the ultrasound branch after N epochs in all, keeping the schedule of --epochs (default: none)")
    parser.add_argument("--stage2-pca", type=float, default=0.95, help="share of variance kept by the PCA inside every stage-2 learner, in (0, 1) (default: 0.95)")
    parser.add_argument("--image-cache", type=Path, default=None, help="preprocessed-image cache (default: <cache root>/stage1)")
    parser.add_argument("--no-pretrained", action="store_true", help="start from random weights instead of the packaged ImageNet Lite0 weights (tests)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    parser.set_defaults(handler=run)


def _stages(text: str) -> tuple[int | str, ...]:
    stages: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if part == "head":
            stages.append(part)
        elif part.isdigit():
            stages.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"{part!r} is neither 'head' nor a stage index; write e.g. '4,6,head'")
    if not stages:
        raise argparse.ArgumentTypeError("name at least one place, e.g. 'head'")
    return tuple(stages)


def _config_from(args: argparse.Namespace, work):
    """Build the run settings from the parsed options; raise ValueError on an invalid combination."""
    from mpmmu.models.branch import check_attention_stages
    from mpmmu.train.run import TrainRunConfig

    if args.attention != "none":
        check_attention_stages(args.attention_stages, args.backbone)
    elif tuple(args.attention_stages) != ("head",):
        raise ValueError("--attention-stages has no effect with --attention none; leave one of them out")
    return TrainRunConfig(
        work_dir=work.expanduser(),
        out_dir=args.out.expanduser() if args.out else None,
        data_dir=args.data,
        synthetic=args.synthetic,
        epochs=args.epochs,
        mammography_epochs=args.mammography_epochs,
        image_size=args.image_size,
        attention=args.attention,
        attention_stages=args.attention_stages,
        backbone=args.backbone,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        resume=args.resume,
        only=args.only,
        batch_size=args.batch_size,
        lr=args.lr,
        mammography_lr=args.mammography_lr,
        patience=args.patience,
        mammography_patience=args.mammography_patience,
        freeze_stages=args.freeze_stages,
        mammography_freeze_stages=args.mammography_freeze_stages,
        pairing_seeds=args.pairing_seeds,
        stage2_folds=args.stage2_folds,
        n_estimators=args.trees,
        image_cache=args.image_cache,
        stage1_minutes=args.stage1_minutes,
        stage2_pca=args.stage2_pca,
        stop_ultrasound_after=args.stop_ultrasound_after,
        pretrained=not args.no_pretrained,
        progress=args.progress,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``mpmmu train`` and print where the results went."""
    from mpmmu.train.run import default_work_dir, environment_threads

    environment_threads(args.threads)
    work = args.work or default_work_dir("cv" if args.cv else "default")
    try:
        config = _config_from(args, work)
    except ValueError as error:
        print(f"mpmmu train: error: {error}", file=sys.stderr)
        return 2
    if args.cv:
        from mpmmu.train.run import run_mammography_cv

        path = run_mammography_cv(config)
        print(f"out-of-fold predictions: {path}")
        return 0

    from mpmmu.train.run import run_training

    summary = run_training(config)
    print(f"work folder: {config.work_dir}")
    if "bundle" in summary:
        print(f"bundle: {summary['bundle']}")
    if "stage2" in summary:
        print(f"fusion used by the bundle: {summary['stage2']['fusion']}")
    return 0
