"""Shared fixtures: paths to the real data sets, skipping with a reason when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpmmu.config import data_root, samples_root


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path}; set MPMMU_DATA / MPMMU_SAMPLES or place ../shared beside the repository")
    return path


@pytest.fixture(scope="session")
def bus_bra_dir() -> Path:
    """The BUS-BRA ultrasound data set folder."""
    return _require(data_root() / "bus-bra", "BUS-BRA data set")


@pytest.fixture(scope="session")
def mini_mias_dir() -> Path:
    """The mini-MIAS mammography data set folder."""
    return _require(data_root() / "mini-mias", "mini-MIAS data set")


@pytest.fixture(scope="session")
def mrmc_dir() -> Path:
    """The MRMC reference studies folder."""
    return _require(data_root() / "mrmc", "MRMC reference data")


@pytest.fixture(scope="session")
def dicom_samples_dir() -> Path:
    """The folder of real DICOM sample files."""
    return _require(samples_root() / "dicom", "DICOM sample files")


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory) -> Path:
    """A bundle trained for one epoch on 24 synthetic cases at 64 px, built once per session.

    Its ``data/manifest.csv`` sits beside it (``tiny_bundle_dir.parent / "data"``).
    """
    from mpmmu.pipeline.testing import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("tiny-model"), seed=0, n_per_class=12, epochs=1)
