"""Small synthetic mammogram-like and ultrasound-like images with benign or malignant lesions.

They stand in for real data in fast tests and in a demo that needs no data set. The lesion
morphology follows the BI-RADS descriptors that separate the classes:

- mammogram: benign = oval, circumscribed mass; malignant = irregular mass with spiculated margin.
- ultrasound (hypoechoic mass): benign = oval, wider than tall, posterior acoustic enhancement;
  malignant = irregular, taller than wide, posterior acoustic shadowing.

Sizes, contrast, aspect ratios and posterior features vary, the ultrasound aspect ratios of the
two classes overlap, and about one case in five has no posterior feature. In one CPU run with
120 cases per label (90 train, 30 test), a three-block CNN trained 6 epochs reached a test AUC of
about 0.99 on 64-pixel mammogram ROI crops and 0.7-0.8 on whole 64-pixel ultrasound images, and
stayed at chance on whole 64-pixel mammograms, where the mass is a few pixels wide. These images
are not realistic anatomy, and nothing measured on them says anything about real data.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from mpmmu.data.manifest import CaseRow, Label, Roi, write_manifest
from mpmmu.data.splits import patient_split

logger = logging.getLogger(__name__)

SOURCE = "synthetic"


@dataclass(frozen=True)
class SyntheticCase:
    """One generated two-modality case.

    Attributes
    ----------
    mammogram, ultrasound : numpy.ndarray
        float32 (size, size) images in [0, 1].
    mammogram_roi, ultrasound_roi : tuple of int
        Lesion box (x, y, width, height) in pixels.
    label : {"benign", "malignant"}
    laterality : {"L", "R"}
        Breast side of the mammogram; the chest wall is at the left edge for "L".
    """

    mammogram: np.ndarray
    ultrasound: np.ndarray
    mammogram_roi: Roi
    ultrasound_roi: Roi
    label: Label
    laterality: Literal["L", "R"]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Return zero-mean, unit-variance Gaussian noise low-pass filtered with a Gaussian of ``sigma`` pixels."""
    noise = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    smooth = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=shape)
    return (smooth - smooth.mean()) / (smooth.std() + 1e-8)


def _lesion_mask(
    rng: np.random.Generator,
    shape: tuple[int, int],
    centre: tuple[float, float],
    radius_x: float,
    radius_y: float,
    irregular: bool,
) -> np.ndarray:
    """Return a soft mask in [0, 1] of an oval (smooth edge) or an irregular lobulated mass."""
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dy, dx = (rows - centre[1]) / radius_y, (columns - centre[0]) / radius_x
    distance = np.sqrt(dx**2 + dy**2)
    angle = np.arctan2(dy, dx)
    if irregular:
        # Sum of a few random harmonics makes an angular margin with lobes and notches.
        boundary = np.ones_like(angle)
        for harmonic in (3, 5, 7, 11):
            boundary += rng.uniform(0.08, 0.2) * np.sin(harmonic * angle + rng.uniform(0, 2 * np.pi))
        edge_width = 0.15
    else:
        boundary = 1.0 + rng.uniform(0.0, 0.04) * np.sin(2 * angle + rng.uniform(0, 2 * np.pi))
        edge_width = 0.04
    return np.clip((boundary - distance) / edge_width + 0.5, 0.0, 1.0)


def _spicules(
    rng: np.random.Generator,
    shape: tuple[int, int],
    centre: tuple[float, float],
    radius: float,
) -> np.ndarray:
    """Return thin bright lines radiating from a mass, in [0, 1]."""
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dy, dx = rows - centre[1], columns - centre[0]
    distance = np.sqrt(dx**2 + dy**2)
    angle = np.arctan2(dy, dx)
    lines = np.zeros(shape, dtype=np.float32)
    for _ in range(int(rng.integers(8, 16))):
        direction = rng.uniform(-np.pi, np.pi)
        length = radius * rng.uniform(1.8, 3.0)
        # Perpendicular distance to the ray, in pixels, via the wrapped angle difference.
        offset = distance * np.abs(np.sin(angle - direction))
        along = distance * np.cos(angle - direction)
        width = rng.uniform(0.8, 1.6) * shape[0] / 256
        ray = np.exp(-((offset / width) ** 2)) * (along > 0) * np.clip(1 - along / length, 0, 1)
        lines = np.maximum(lines, ray)
    return lines


def _box(mask: np.ndarray, margin: int, shape: tuple[int, int]) -> Roi:
    rows, columns = np.nonzero(mask > 0.5)
    top, bottom = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, shape[0])
    left, right = max(int(columns.min()) - margin, 0), min(int(columns.max()) + margin + 1, shape[1])
    return left, top, right - left, bottom - top


def _burn_letter_l(image: np.ndarray, rng: np.random.Generator, laterality: str) -> None:
    size = image.shape[0]
    height, stroke = max(size // 14, 6), max(size // 64, 2)
    top = int(rng.integers(size // 32, size // 8))
    # The marker sits in the upper background corner away from the chest wall and reads upright.
    left = size - size // 8 - height if laterality == "L" else size // 16
    image[top : top + height, left : left + stroke] = 1.0
    image[top + height - stroke : top + height, left : left + (height * 2) // 3] = 1.0


def make_synthetic_mammogram(
    label: Label,
    rng: np.random.Generator,
    size: int = 256,
    *,
    laterality: Literal["L", "R"] = "L",
    burn_in_label: bool = False,
) -> tuple[np.ndarray, Roi]:
    """Generate a mammogram-like image with one mass.

    A half-ellipse breast on a dark background, denser towards the chest wall, with a pectoral
    muscle wedge in the upper corner and fibroglandular texture from low-pass filtered noise.
    The mass is oval and circumscribed (benign) or irregular with spicules (malignant).

    Parameters
    ----------
    label : {"benign", "malignant"}
    rng : numpy.random.Generator
    size : int
        Side of the square image in pixels, at least 64.
    laterality : {"L", "R"}
        "L" puts the chest wall at the left edge; "R" mirrors the image.
    burn_in_label : bool
        Burn a bright "L" marker into the background, as film labels are, to test that a model
        or a preprocessing step is not fooled by it.

    Returns
    -------
    (numpy.ndarray, tuple of int)
        float32 (size, size) image in [0, 1] and the lesion box (x, y, width, height).
    """
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    if label not in ("benign", "malignant"):
        raise ValueError(f"label must be 'benign' or 'malignant', got {label!r}")
    shape = (size, size)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32) / size

    # Breast: half-ellipse from the chest wall (column 0), nipple towards the right.
    depth = rng.uniform(0.62, 0.85)
    half_height = rng.uniform(0.38, 0.47)
    centre_row = rng.uniform(0.47, 0.55)
    radial = np.sqrt((columns / depth) ** 2 + ((rows - centre_row) / half_height) ** 2)
    breast = np.clip((1.0 - radial) / 0.03, 0.0, 1.0)
    thickness = np.sqrt(np.clip(1.0 - radial**2, 0.0, 1.0))

    texture = 0.6 * _smooth_noise(rng, shape, size / 40) + 0.4 * _smooth_noise(rng, shape, size / 120)
    density = rng.uniform(0.25, 0.55)
    glandular = np.clip(density + 0.18 * texture, 0.0, 1.0) * (1.0 - 0.5 * radial)
    image = breast * (0.22 + 0.3 * thickness + 0.35 * glandular)

    # Pectoral muscle: a bright wedge in the upper chest-wall corner (mediolateral oblique look).
    pectoral_width, pectoral_height = rng.uniform(0.15, 0.3), rng.uniform(0.35, 0.6)
    pectoral = (columns / pectoral_width + rows / pectoral_height) < 1.0
    image = np.where(pectoral & (breast > 0.5), np.maximum(image, 0.75 + 0.05 * texture), image)

    # Lesion inside the breast, away from the skin line and the pectoral wedge.
    radius = rng.uniform(0.035, 0.075) * size
    angle = rng.uniform(-0.9, 0.9)
    reach = rng.uniform(0.3, 0.6)
    centre = (
        float(np.clip(reach * depth * np.cos(angle) * size + 0.12 * size, 0.2 * size, 0.75 * size)),
        float(np.clip((centre_row + reach * half_height * np.sin(angle)) * size, 0.2 * size, 0.8 * size)),
    )
    malignant = label == "malignant"
    aspect = rng.uniform(0.7, 1.0)
    mass = _lesion_mask(rng, shape, centre, radius, radius * aspect, irregular=malignant)
    contrast = rng.uniform(0.12, 0.25)
    image = image + contrast * mass
    extent = mass
    if malignant:
        spicules = _spicules(rng, shape, centre, radius) * breast
        image = image + rng.uniform(0.1, 0.2) * spicules
        extent = np.maximum(mass, spicules)

    image = image + rng.normal(0.0, 0.025, shape)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    roi = _box(extent, margin=max(size // 64, 2), shape=shape)

    if laterality == "R":
        image = image[:, ::-1].copy()
        x, y, width, height = roi
        roi = (size - x - width, y, width, height)
    if burn_in_label:
        _burn_letter_l(image, rng, laterality)
    return image, roi


def make_synthetic_ultrasound(label: Label, rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, Roi]:
    """Generate a B-mode-like image with one hypoechoic mass.

    Speckle (Rayleigh-distributed, slightly correlated) over layered tissue: a bright skin line,
    subcutaneous fat and a brighter fibroglandular layer, with depth attenuation. The benign mass
    is oval, wider than tall, with posterior acoustic enhancement; the malignant mass is
    irregular, taller than wide, with posterior acoustic shadowing.

    Returns
    -------
    (numpy.ndarray, tuple of int)
        float32 (size, size) image in [0, 1] and the lesion box (x, y, width, height).
    """
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    if label not in ("benign", "malignant"):
        raise ValueError(f"label must be 'benign' or 'malignant', got {label!r}")
    shape = (size, size)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32) / size

    # Echogenicity of the layers, then depth attenuation.
    skin = np.exp(-(((rows - 0.04) / 0.012) ** 2))
    fat_end = rng.uniform(0.18, 0.3) + 0.03 * _smooth_noise(rng, shape, size / 10)
    echogenicity = np.where(rows < fat_end, 0.35, 0.6 + 0.12 * _smooth_noise(rng, shape, size / 25))
    echogenicity = echogenicity + 0.8 * skin
    attenuation = np.exp(-rng.uniform(0.4, 0.9) * rows)

    # Lesion: hypoechoic, placed in the glandular layer.
    malignant = label == "malignant"
    radius = rng.uniform(0.08, 0.15) * size
    # Aspect ratio = height / width; the ranges overlap around 1 so shape alone is not decisive.
    aspect = rng.uniform(0.95, 1.5) if malignant else rng.uniform(0.5, 1.05)
    radius_x, radius_y = radius / np.sqrt(aspect), radius * np.sqrt(aspect)
    centre = (rng.uniform(0.3, 0.7) * size, rng.uniform(0.42, 0.6) * size)
    mass = _lesion_mask(rng, shape, centre, radius_x, radius_y, irregular=malignant)
    inside = rng.uniform(0.08, 0.25)
    echogenicity = echogenicity * (1.0 - mass) + inside * mass

    # Posterior feature: a column below the mass, brighter (enhancement) or darker (shadowing).
    # One case in five shows none, as many real lesions do.
    strength = 0.0 if rng.random() < 0.2 else rng.uniform(0.25, 0.6)
    below = (rows * size > centre[1]) & (np.abs(columns * size - centre[0]) < radius_x * 0.9)
    fade = np.exp(-np.clip(rows * size - centre[1], 0, None) / (0.5 * size))
    posterior = below * fade * (1.0 - mass)
    echogenicity = echogenicity * (1.0 + (-strength if malignant else strength) * posterior)

    # Speckle: the magnitude of correlated complex Gaussian noise is Rayleigh distributed.
    real = _smooth_noise(rng, shape, 0.8)
    imaginary = _smooth_noise(rng, shape, 0.8)
    speckle = np.sqrt(real**2 + imaginary**2) / np.sqrt(2.0)
    image = echogenicity * attenuation * speckle * 0.75
    image = image + rng.normal(0.0, 0.02, shape)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return image, _box(mass, margin=max(size // 64, 2), shape=shape)


def make_synthetic_case(label: Label, seed: int, size: int = 256, *, burn_in_label: bool = False) -> SyntheticCase:
    """Generate one mammogram-like and one ultrasound-like image of the given label.

    The same ``label``, ``seed`` and ``size`` always give the same images.
    """
    rng = np.random.default_rng(seed)
    laterality: Literal["L", "R"] = "L" if rng.random() < 0.5 else "R"
    mammogram, mammogram_roi = make_synthetic_mammogram(
        label, rng, size, laterality=laterality, burn_in_label=burn_in_label
    )
    ultrasound, ultrasound_roi = make_synthetic_ultrasound(label, rng, size)
    return SyntheticCase(mammogram, ultrasound, mammogram_roi, ultrasound_roi, label, laterality)


def _save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(np.round(image * 255.0).astype(np.uint8), mode="L").save(path)


def write_synthetic_dataset(
    out_dir: str | os.PathLike[str],
    n_per_class: int = 20,
    seed: int = 0,
    *,
    size: int = 256,
    ratios: tuple[float, float, float] = (0.7, 0.2, 0.1),
) -> Path:
    """Write a synthetic paired data set: PNGs under ``images/`` and ``manifest.csv``.

    Each case has one mammogram and one ultrasound of one synthetic patient, source "synthetic",
    split by :func:`patient_split` with ``seed``. Paths in the manifest are relative, so the folder
    can be moved.

    Parameters
    ----------
    out_dir : path-like
        Folder to write into; created if needed. Existing files of the same names are replaced.
    n_per_class : int
        Cases per label, at least 1.
    seed : int
        Seed of the images and of the split.
    size : int
        Image side in pixels.
    ratios : tuple of 3 float
        Train, val and test shares of patients.

    Returns
    -------
    pathlib.Path
        The manifest file.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    rows: list[CaseRow] = []
    labels: list[Label] = ["benign", "malignant"] * n_per_class
    seeds = np.random.SeedSequence(seed).spawn(len(labels))
    for index, (label, case_seed) in enumerate(zip(labels, seeds)):
        case = make_synthetic_case(label, int(case_seed.generate_state(1)[0]), size, burn_in_label=index % 3 == 0)
        case_id = f"synthetic-{index:04d}"
        mammogram_path = image_dir / f"{case_id}-mammogram.png"
        ultrasound_path = image_dir / f"{case_id}-ultrasound.png"
        _save_png(case.mammogram, mammogram_path)
        _save_png(case.ultrasound, ultrasound_path)
        rows.append(
            CaseRow(
                case_id=case_id,
                patient_id=f"synthetic-patient-{index:04d}",
                mammogram_path=mammogram_path.resolve(),
                ultrasound_path=ultrasound_path.resolve(),
                label=label,
                mammogram_roi=case.mammogram_roi,
                ultrasound_roi=case.ultrasound_roi,
                source=SOURCE,
            )
        )

    rows = patient_split(rows, ratios, seed)
    manifest = write_manifest(rows, out_dir / "manifest.csv", relative_paths=True)
    logger.info("wrote %d synthetic cases to %s", len(rows), out_dir)
    return manifest
