"""``mpmmu inspect``: print the de-identified summary of image files and write PNG previews.

Each file is read with :func:`mpmmu.io.read_image`. A file that cannot be read gets one line on
standard error naming the problem, and the exit status is 1 when any file failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mpmmu.errors import MpmmuError
from mpmmu.io import read_image
from mpmmu.records import ImageRecord

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        help="summarise DICOM or raster images without patient identifiers and write previews",
        description="Print the de-identified header summary of each file and optionally write an "
        "8-bit PNG preview of the decoded frame (VOI and MONOCHROME1 applied).",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="DICOM, PNG, JPEG, TIFF, PGM or BMP file")
    parser.add_argument("--preview-dir", type=Path, metavar="DIR", help="write <file stem>.png previews into DIR")
    parser.add_argument("--frame", type=int, metavar="N", help="0-based frame to decode in every file (default: the middle frame); a file with fewer frames is reported as an error")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")
    parser.set_defaults(handler=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    """Inspect every file; return 1 if any could not be read, else 0."""
    if args.preview_dir is not None:
        args.preview_dir.mkdir(parents=True, exist_ok=True)

    failures = 0
    preview_names: set[str] = set()
    for path in args.files:
        try:
            record = read_image(path, frame=args.frame)
        except MpmmuError as error:
            failures += 1
            print(f"{path}: {error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": str(path), "error": type(error).__name__, "message": str(error)}))
            continue

        summary = summarize_record(record)
        summary["file"] = str(path)
        if args.preview_dir is not None:
            name = path.stem
            suffix = 2
            while name in preview_names:  # two inputs with the same stem keep separate previews
                name = f"{path.stem}-{suffix}"
                suffix += 1
            preview_names.add(name)
            preview = args.preview_dir / f"{name}.png"
            write_preview(record, preview)
            summary["preview"] = str(preview)
        if args.json:
            print(json.dumps(summary, ensure_ascii=False))
        else:
            print(format_summary(summary))
    return 1 if failures else 0


def summarize_record(record: ImageRecord) -> dict[str, Any]:
    """Collect a record's identifying-free facts into a JSON-ready dict."""
    window = record.windows[record.window_index] if record.window_index is not None else None
    return {
        "format": record.source_format,
        "shape": list(record.pixels.shape),
        "photometric_interpretation": record.photometric_interpretation,
        "bits_stored": record.bits_stored,
        "modality": record.modality,
        "laterality": record.laterality,
        "view": record.view,
        "presentation_intent": record.presentation_intent,
        "pixel_spacing": list(record.pixel_spacing) if record.pixel_spacing else None,
        "frames": record.frame_count,
        "frame_index": record.frame_index,
        "windows": [
            {"center": preset.center, "width": preset.width, "function": preset.function,
             "explanation": preset.explanation}
            for preset in record.windows
        ],
        "window_index": record.window_index,
        "window_applied": f"{window.function} {window.center:g}/{window.width:g}" if window else None,
        "sha256": record.sha256,
        "warnings": list(record.warnings),
        "header": record.header,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Format one summary as indented text lines."""
    lines = [f"{summary['file']}:"]
    for key, value in summary.items():
        if key in ("file", "header", "warnings"):
            continue
        lines.append(f"  {key}: {value}")
    for warning in summary["warnings"]:
        lines.append(f"  warning: {warning}")
    lines.append("  header:")
    for key, value in summary["header"].items():
        lines.append(f"    {key}: {value}")
    return "\n".join(lines)


def write_preview(record: ImageRecord, path: Path) -> None:
    """Write ``record.pixels`` as an 8-bit PNG (greyscale or RGB)."""
    image = np.rint(np.clip(record.pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(image, mode="RGB" if record.is_color else "L").save(path, format="PNG")
