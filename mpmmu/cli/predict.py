"""``mpmmu predict``: score one case, or every case of a manifest, with a model bundle.

One case::

    mpmmu predict --mammogram mg.dcm --ultrasound us.png --ultrasound-roi 120,80,64,48 [--json]

reads both images (any format :func:`mpmmu.io.read_image` reads), prints the probability of
malignancy with each branch's and each stage-2 learner's, and saves a Grad-CAM overlay per image
as PNG. Many cases in one process::

    mpmmu predict --manifest cases.csv --out predictions.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from mpmmu import RESEARCH_USE_STATEMENT
from mpmmu.config import DEFAULT_BUNDLE_DIR
from mpmmu.errors import ModelInputError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="score a case (mammogram and/or ultrasound) or a manifest of cases",
        description=(
            "Score one case end to end and save Grad-CAM overlays, or score every case of a "
            f"manifest. {RESEARCH_USE_STATEMENT}"
        ),
    )
    parser.add_argument("--mammogram", type=Path, help="mammogram file (DICOM, PNG, JPEG, TIFF, ...)")
    parser.add_argument("--ultrasound", type=Path, help="breast ultrasound file (DICOM, PNG, JPEG, ...)")
    parser.add_argument(
        "--mammogram-roi",
        metavar="X,Y,W,H",
        help="lesion box on the mammogram in original pixels; without it the whole breast is used",
    )
    parser.add_argument(
        "--ultrasound-roi",
        metavar="X,Y,W,H",
        help="lesion box on the ultrasound image in original pixels; without it the whole scan is used",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--manifest", type=Path, help="case manifest CSV to score instead of one case")
    parser.add_argument("--out", type=Path, help="CSV file for the predictions of --manifest")
    parser.add_argument(
        "--bundle", type=Path, default=DEFAULT_BUNDLE_DIR, help=f"model bundle folder (default {DEFAULT_BUNDLE_DIR})"
    )
    parser.add_argument(
        "--heatmap-dir",
        type=Path,
        default=Path("."),
        help="folder for the Grad-CAM overlay PNGs of one case (default: current folder)",
    )
    parser.add_argument("--no-heatmaps", action="store_true", help="skip Grad-CAM and the overlay PNGs")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: cuda when available)")
    parser.set_defaults(handler=run)


#: How every bundle's operating thresholds are chosen (see :mod:`mpmmu.train.stage2`).
THRESHOLD_METHOD = "youden"


def _model_name(model: str) -> str:
    return model.replace("_", " ")


def _fusion_choice(metadata: dict[str, Any]) -> str:
    """Return why the bundle answers two-image cases with its fusion, from the validation AUCs."""
    fusion = metadata.get("fusion", {})
    chosen = fusion.get("chosen", "")
    aucs = fusion.get("validation_auc", {})
    others = [name for name in aucs if name != chosen]
    if chosen not in aucs or not others:
        return ""
    rivals = ", ".join(f"{_model_name(name)} {float(aucs[name]):.3f}" for name in others)
    return f"chosen for two-image cases by validation AUC: {_model_name(chosen)} {float(aucs[chosen]):.3f}, {rivals}"


def prediction_to_dict(prediction: Any, heatmap_files: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the JSON-ready fields of a prediction (heatmap arrays replaced by their PNG paths).

    ``answered_by`` is the model behind ``p_malignant`` and ``threshold``; ``votes_model`` the
    model whose learners cast ``votes`` ("stacking" when late fusion answered, so the votes are
    for comparison only), and ``votes_threshold`` that model's own threshold, against which
    ``agreement`` places each base learner.
    """
    return {
        "p_malignant": prediction.p_malignant,
        "label": prediction.label,
        "threshold": prediction.threshold,
        "threshold_model": prediction.fusion,
        "threshold_method": THRESHOLD_METHOD,
        "answered_by": prediction.fusion,
        "p_mammography": prediction.p_mammography,
        "p_ultrasound": prediction.p_ultrasound,
        "votes": dict(prediction.votes),
        "votes_model": prediction.votes_model,
        "votes_threshold": prediction.votes_threshold,
        "fusion": prediction.fusion,
        "agreement": prediction.agreement,
        "model_version": prediction.model_version,
        "device": prediction.device,
        "roi_used": dict(prediction.roi_used),
        "pseudo_paired_training": prediction.pseudo_paired_training,
        "heatmaps": dict(heatmap_files or {}),
        "timings": dict(prediction.timings),
        "warnings": list(prediction.warnings),
        "research_use": RESEARCH_USE_STATEMENT,
    }


def _format_probability(value: float | None) -> str:
    return "not given" if value is None else f"{value:.3f}"


def _vote_lines(prediction: Any) -> list[str]:
    """Return the votes and agreement lines, saying whose learners voted and against which threshold."""
    if not prediction.votes:
        return [
            f"agreement     {prediction.agreement:.0%} of the branches on the same side of the "
            f"{_model_name(prediction.fusion)} threshold as the answer (this model has no learners)"
        ]
    votes = ", ".join(f"{name} {value:.3f}" for name, value in prediction.votes.items())
    votes_model = _model_name(prediction.votes_model)
    votes_threshold = prediction.threshold if prediction.votes_threshold is None else prediction.votes_threshold
    if prediction.votes_model == prediction.fusion:
        return [
            f"votes         {votes}",
            f"agreement     {prediction.agreement:.0%} of the base learners on the same side of the threshold as the answer",
        ]
    return [
        f"votes         {votes}",
        f"              (learners of the {votes_model} ensemble, shown for comparison; the answer comes from "
        f"{_model_name(prediction.fusion)}, which had the higher validation AUC)",
        f"agreement     {prediction.agreement:.0%} of the {votes_model} base learners give the answer's class "
        f"when their votes are read against the {votes_model} threshold ({votes_threshold:.3f})",
    ]


def format_report(prediction: Any, heatmap_files: dict[str, str], metadata: dict[str, Any]) -> str:
    """Return the human-readable report of one case."""
    answered_by = _model_name(prediction.fusion)
    fusion_choice = _fusion_choice(metadata) if prediction.fusion in ("stacking", "late_fusion") else ""
    lines = [
        f"p_malignant   {prediction.p_malignant:.3f} ({prediction.label} at threshold {prediction.threshold:.3f})",
        f"answered by   {answered_by}" + (f" ({fusion_choice})" if fusion_choice else ""),
        f"threshold     {prediction.threshold:.3f} is the {answered_by} model's; each model has its own "
        "threshold, chosen on validation data by Youden's J",
        f"mammography   {_format_probability(prediction.p_mammography)}",
        f"ultrasound    {_format_probability(prediction.p_ultrasound)}",
        *_vote_lines(prediction),
    ]
    for modality, path in heatmap_files.items():
        lines.append(f"Grad-CAM      {modality}: {path}")
    lines.append(f"model         {prediction.model_version} on {prediction.device}")
    for warning in prediction.warnings:
        lines.append(f"note: {warning}")
    if prediction.fusion in ("stacking", "late_fusion") and prediction.pseudo_paired_training:
        caveat = metadata.get("training_data", {}).get(
            "caveat", "The fused model was trained on class-matched pseudo-pairs, not on true pairs."
        )
        lines.append(f"note: {caveat}")
    lines.append(RESEARCH_USE_STATEMENT)
    return "\n".join(lines)


def _parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    from mpmmu.preprocess.geometry import parse_roi

    return None if text is None else parse_roi(text)


def save_overlays(
    prediction: Any, images: dict[str, Any], directory: Path, stems: dict[str, str]
) -> dict[str, str]:
    """Save one Grad-CAM overlay PNG per modality as ``<image stem>-<modality>-gradcam.png``.

    Returns the paths by modality.
    """
    from mpmmu.explain import overlay, save_png

    files = {}
    for modality, heatmap in prediction.heatmaps.items():
        path = directory / f"{stems[modality]}-{modality}-gradcam.png"
        save_png(overlay(images[modality].pixels, heatmap), path)
        files[modality] = str(path)
    return files


def _check_heatmap_dir(folder: Path) -> None:
    """Create ``folder`` for the overlays now, so a bad path fails before the model runs."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelInputError(
            f"cannot use {folder} as the heatmap folder ({error.strerror}); pass --heatmap-dir with a "
            "writable folder, or --no-heatmaps"
        ) from error


def run_one_case(args: argparse.Namespace) -> int:
    """Score the case given by --mammogram / --ultrasound and print the result."""
    from mpmmu.io import read_image
    from mpmmu.pipeline import Pipeline

    if args.mammogram is None and args.ultrasound is None:
        raise ModelInputError("no image given; pass --mammogram, --ultrasound or both, or --manifest")
    mammogram_roi = _parse_roi(args.mammogram_roi)
    ultrasound_roi = _parse_roi(args.ultrasound_roi)
    if mammogram_roi is not None and args.mammogram is None:
        raise ModelInputError("--mammogram-roi given without --mammogram")
    if ultrasound_roi is not None and args.ultrasound is None:
        raise ModelInputError("--ultrasound-roi given without --ultrasound")

    if not args.no_heatmaps:
        _check_heatmap_dir(args.heatmap_dir)

    images = {}
    if args.mammogram is not None:
        images["mammography"] = read_image(args.mammogram)
    if args.ultrasound is not None:
        images["ultrasound"] = read_image(args.ultrasound)

    pipeline = Pipeline.load(args.bundle, device=args.device)
    prediction = pipeline.predict(
        images.get("mammography"),
        images.get("ultrasound"),
        mammogram_roi=mammogram_roi,
        ultrasound_roi=ultrasound_roi,
        explain=not args.no_heatmaps,
    )
    stems = {modality: path.stem for modality, path in (("mammography", args.mammogram), ("ultrasound", args.ultrasound)) if path}
    heatmap_files = save_overlays(prediction, images, args.heatmap_dir, stems)

    if args.json:
        print(json.dumps(prediction_to_dict(prediction, heatmap_files), indent=2))
    else:
        print(format_report(prediction, heatmap_files, pipeline.metadata))
    return 0


def run_manifest(args: argparse.Namespace) -> int:
    """Score every case of --manifest into --out; exit 1 when a case failed."""
    from mpmmu.data import read_manifest
    from mpmmu.pipeline import Pipeline, write_predictions

    if args.out is None:
        raise ModelInputError("--manifest needs --out, the CSV file for the predictions")
    if args.mammogram is not None or args.ultrasound is not None:
        raise ModelInputError("pass either --manifest or --mammogram/--ultrasound, not both")
    rows = read_manifest(args.manifest)
    pipeline = Pipeline.load(args.bundle, device=args.device)
    results = pipeline.predict_batch(rows, explain=False)
    write_predictions(results, args.out)

    failed = [result for result in results if result.error]
    summary = f"scored {len(results) - len(failed)} of {len(results)} cases into {args.out}"
    if args.json:
        print(json.dumps({"scored": len(results) - len(failed), "failed": len(failed), "out": str(args.out)}))
    else:
        print(summary)
        print(RESEARCH_USE_STATEMENT)
    for result in failed:
        print(f"mpmmu predict: case {result.case_id} failed: {result.error}", file=sys.stderr)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Run ``mpmmu predict``."""
    if args.manifest is not None:
        return run_manifest(args)
    return run_one_case(args)
