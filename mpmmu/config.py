"""Paths and settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent

#: Default bundle shipped with the repository.
DEFAULT_BUNDLE_DIR = REPO_ROOT / "assets" / "models" / "mpmmu-default"


def data_root() -> Path:
    """Return the folder holding ``bus-bra/`` and ``mini-mias/`` (``MPMMU_DATA``, else ``../shared/data``)."""
    configured = os.environ.get("MPMMU_DATA")
    if configured:
        return Path(configured).expanduser()
    return REPO_ROOT.parent / "shared" / "data"


def cache_root() -> Path:
    """Return a writable folder for caches (``MPMMU_CACHE``, else ``~/.cache/mpmmu``)."""
    configured = os.environ.get("MPMMU_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "mpmmu"


def samples_root() -> Path:
    """Return the folder of sample DICOM files (``MPMMU_SAMPLES``, else ``../shared/samples``)."""
    configured = os.environ.get("MPMMU_SAMPLES")
    if configured:
        return Path(configured).expanduser()
    return REPO_ROOT.parent / "shared" / "samples"
