"""Preprocessing: breast and B-mode region, label and mark removal, laterality, ROI crop, resize.

Every step is recorded in a :class:`~mpmmu.records.Transform`, so a map over the model input
(Grad-CAM, attention) can be drawn back onto the original image with :func:`map_to_original`.
"""

from __future__ import annotations

from mpmmu.preprocess.config import PreprocessConfig
from mpmmu.preprocess.core import preprocess
from mpmmu.preprocess.geometry import (
    box_to_model,
    context_box,
    map_to_original,
    parse_roi,
    point_to_model,
    point_to_original,
    roi_from_circle,
)
from mpmmu.preprocess.mammography import BreastRegion, segment_breast
from mpmmu.preprocess.ultrasound import BModeRegion, find_bmode_region, find_marks

__all__ = [
    "BModeRegion",
    "BreastRegion",
    "PreprocessConfig",
    "box_to_model",
    "context_box",
    "find_bmode_region",
    "find_marks",
    "map_to_original",
    "parse_roi",
    "point_to_model",
    "point_to_original",
    "preprocess",
    "roi_from_circle",
    "segment_breast",
]
