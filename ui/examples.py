"""Example cases for the second-read page: synthetic ones always, real pseudo-pairs when data exist."""

from __future__ import annotations

import dataclasses
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from mpmmu.config import data_root
from mpmmu.data import build_bus_bra_manifest, build_mini_mias_manifest, make_synthetic_case
from mpmmu.data.mini_mias import mias_laterality
from mpmmu.errors import MpmmuError
from mpmmu.io import read_image
from mpmmu.records import ImageRecord

logger = logging.getLogger(__name__)

#: Synthetic examples: (label, seed). Fixed seeds so that every session shows the same cases.
SYNTHETIC_CASES = (("benign", 11), ("malignant", 12), ("benign", 13), ("malignant", 14))
#: Real examples per label: the first cases by id of each data set, paired by label across sets.
REAL_CASES_PER_LABEL = 2


@dataclass(frozen=True)
class ExampleCase:
    """One selectable example.

    Attributes
    ----------
    key : str
        Stable identifier, e.g. ``synthetic-benign-11`` or ``real-bus_0001-l+mdb005``.
    kind : {"synthetic", "real"}
    label : {"benign", "malignant"}
        The reference standard (biopsy for BUS-BRA, radiologists' truth for mini-MIAS).
    seed : int or None
        Seed of a synthetic case.
    mammogram_path, ultrasound_path : pathlib.Path or None
        Files of a real case.
    mammogram_roi, ultrasound_roi : tuple or None
        Lesion boxes of a real case.
    description : str
        The case ids the example is built from.
    """

    key: str
    kind: str
    label: str
    seed: int | None = None
    mammogram_path: Path | None = None
    ultrasound_path: Path | None = None
    mammogram_roi: tuple[int, int, int, int] | None = None
    ultrasound_roi: tuple[int, int, int, int] | None = None
    description: str = ""


def _real_examples(root: Path) -> list[ExampleCase]:
    try:
        us_rows = build_bus_bra_manifest(root / "bus-bra")
        mg_rows = build_mini_mias_manifest(root / "mini-mias")
    except (MpmmuError, OSError) as error:
        logger.warning("real example cases unavailable from %s: %s", root, error)
        return []

    examples = []
    for label in ("benign", "malignant"):
        ultrasounds = sorted((row for row in us_rows if row.label == label), key=lambda row: row.case_id)
        mammograms = sorted((row for row in mg_rows if row.label == label), key=lambda row: row.case_id)
        for us, mg in list(zip(ultrasounds, mammograms))[:REAL_CASES_PER_LABEL]:
            examples.append(
                ExampleCase(
                    key=f"real-{us.case_id}+{mg.case_id}",
                    kind="real",
                    label=label,
                    mammogram_path=mg.mammogram_path,
                    ultrasound_path=us.ultrasound_path,
                    mammogram_roi=mg.mammogram_roi,
                    ultrasound_roi=us.ultrasound_roi,
                    description=f"mini-MIAS {mg.case_id} + BUS-BRA {us.case_id}",
                )
            )
    return examples


@st.cache_data(show_spinner=False)
def list_examples(root: str) -> list[ExampleCase]:
    """Return the synthetic examples, then real pseudo-pairs when ``root`` contains BUS-BRA and mini-MIAS."""
    examples = [
        ExampleCase(key=f"synthetic-{label}-{seed}", kind="synthetic", label=label, seed=seed, description=f"seed {seed}")
        for label, seed in SYNTHETIC_CASES
    ]
    path = Path(root)
    if (path / "bus-bra").is_dir() and (path / "mini-mias").is_dir():
        examples.extend(_real_examples(path))
    return examples


def available_examples() -> list[ExampleCase]:
    """Return the examples for the data folder configured now (``MPMMU_DATA``)."""
    return list_examples(str(data_root()))


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.uint8(np.round(np.clip(image, 0.0, 1.0) * 255.0))).save(buffer, format="PNG")
    return buffer.getvalue()


@st.cache_resource(show_spinner=False, max_entries=8)
def load_example(example: ExampleCase) -> tuple[ImageRecord, ImageRecord, tuple, tuple]:
    """Read an example's two images through :func:`mpmmu.io.read_image`.

    Cached across sessions: examples are public or generated images, and records are frozen.

    Returns
    -------
    (mammogram, ultrasound, mammogram_roi, ultrasound_roi)
    """
    if example.kind == "synthetic":
        case = make_synthetic_case(example.label, example.seed)
        mammogram = read_image(_png_bytes(case.mammogram))
        # The generator returns the side it drew, which a PNG cannot store.
        mammogram = dataclasses.replace(mammogram, laterality=case.laterality)
        ultrasound = read_image(_png_bytes(case.ultrasound))
        return mammogram, ultrasound, tuple(case.mammogram_roi), tuple(case.ultrasound_roi)

    mammogram = read_image(example.mammogram_path)
    # mini-MIAS PNGs carry no header: every film is an MLO view, odd numbers are left breasts.
    number = int(example.mammogram_path.stem.removeprefix("mdb"))
    mammogram = dataclasses.replace(mammogram, laterality=mias_laterality(number), view="MLO")
    ultrasound = read_image(example.ultrasound_path)
    return mammogram, ultrasound, example.mammogram_roi, example.ultrasound_roi
