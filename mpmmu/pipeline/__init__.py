"""Model bundle and end-to-end scoring of one case."""

from __future__ import annotations

from mpmmu.pipeline.bundle import Bundle, check_versions, file_sha256, installed_versions
from mpmmu.pipeline.pipeline import Pipeline, select_device

__all__ = ["Bundle", "Pipeline", "check_versions", "file_sha256", "installed_versions", "select_device"]
