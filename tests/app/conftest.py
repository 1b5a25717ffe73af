"""Fixtures for the app tests: a tiny trained bundle, the app's environment and one test case."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app_helpers import REPO_ROOT, dicom_bytes, png_bytes
from mpmmu.data import make_synthetic_case
from mpmmu.pipeline.testing import build_tiny_bundle

# app.py puts its folder on sys.path itself; tests that import the ui helpers directly need it too.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A bundle trained on a few synthetic cases (its probabilities mean nothing clinically)."""
    return build_tiny_bundle(tmp_path_factory.mktemp("tiny-bundle"), seed=0)


@pytest.fixture()
def app_env(tiny_bundle, monkeypatch, tmp_path):
    """Point the app at the tiny bundle and at an empty data folder (synthetic examples only)."""
    monkeypatch.setenv("MPMMU_BUNDLE", str(tiny_bundle))
    monkeypatch.setenv("MPMMU_DATA", str(tmp_path / "no-data"))
    return tiny_bundle


@pytest.fixture(scope="session")
def case_files() -> dict[str, bytes]:
    """A synthetic malignant case: the mammogram as extension-less DICOM, the ultrasound as PNG.

    ``"laterality"`` holds the mammogram's side (b"L" or b"R") for checks of the header facts.
    """
    case = make_synthetic_case("malignant", seed=5)
    return {
        "mammography": dicom_bytes(case.mammogram, laterality=case.laterality),
        "ultrasound": png_bytes(case.ultrasound),
        "laterality": case.laterality.encode(),
    }
