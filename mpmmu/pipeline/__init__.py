"""Model bundle and end-to-end scoring of one case."""

from __future__ import annotations

from mpmmu.pipeline.bundle import Bundle, check_versions, content_version, file_sha256, installed_versions
from mpmmu.pipeline.pipeline import (
    PREDICTION_COLUMNS,
    CaseResult,
    Pipeline,
    describe_device,
    select_device,
    write_predictions,
)

__all__ = [
    "PREDICTION_COLUMNS",
    "Bundle",
    "CaseResult",
    "Pipeline",
    "check_versions",
    "content_version",
    "describe_device",
    "file_sha256",
    "installed_versions",
    "select_device",
    "write_predictions",
]
