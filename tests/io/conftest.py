"""Fixtures for the io tests: a writer of generated DICOM files in a tmp dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dicom_builders import make_dataset, write_dataset


@pytest.fixture
def dicom_factory(tmp_path: Path):
    """Return ``build(name, pixels, **kwargs) -> Path`` writing a generated DICOM into tmp_path."""

    def build(name: str, pixels: np.ndarray, **kwargs: Any) -> Path:
        return write_dataset(make_dataset(pixels, **kwargs), tmp_path / f"{name}.dcm")

    return build
