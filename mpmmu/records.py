"""Frozen records that cross module boundaries.

A case flows as: file -> :class:`ImageRecord` (``mpmmu.io``) -> :class:`ModelInput` with its
invertible :class:`Transform` (``mpmmu.preprocess``) -> branch outputs -> :class:`Prediction`
(``mpmmu.pipeline``). None of these records contains a patient identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Modality = Literal["mammography", "ultrasound"]
Laterality = Literal["L", "R", "unknown"]


@dataclass(frozen=True)
class WindowPreset:
    """One VOI window: Window Center (0028,1050) and Window Width (0028,1051), or a VOI LUT."""

    center: float
    width: float
    explanation: str = ""
    function: Literal["LINEAR", "LINEAR_EXACT", "SIGMOID", "LUT"] = "LINEAR"


@dataclass(frozen=True)
class ImageRecord:
    """One decoded image with a de-identified summary of its header.

    Attributes
    ----------
    pixels : numpy.ndarray
        float32 (H, W) greyscale or (H, W, 3) RGB in [0, 1], ready to display: Modality LUT,
        default VOI window and MONOCHROME1 inversion already applied.
    stored : numpy.ndarray
        float32 (H, W) values after the Modality LUT, before VOI, for re-windowing; for RGB images
        the luminance in [0, 1].
    photometric_interpretation, bits_stored, modality, laterality, view, presentation_intent
        The DICOM attributes of those keywords (raster files: "MONOCHROME2"/"RGB", bit depth,
        "" for the rest, laterality "unknown").
    pixel_spacing : tuple of float or None
        Row and column spacing in mm.
    frame_count, frame_index : int
        Frames in the file and the frame decoded (0-based).
    windows : tuple of WindowPreset
        The file's VOI presets; ``window_index`` is the one applied to ``pixels``.
    header : dict
        De-identified summary (never PatientName, PatientID, PatientBirthDate, AccessionNumber).
    source_format : str
        "dicom", "png", "jpeg", "tiff", "bmp", "pgm".
    sha256 : str
        Hash of the input bytes; studies reference images by it.
    warnings : tuple of str
        Non-fatal problems a reader should see (FOR PROCESSING, unexpected Modality, ...).
    """

    pixels: np.ndarray
    stored: np.ndarray
    photometric_interpretation: str
    bits_stored: int
    modality: str
    laterality: Laterality
    view: str
    presentation_intent: str
    pixel_spacing: tuple[float, float] | None
    frame_count: int
    frame_index: int
    windows: tuple[WindowPreset, ...]
    window_index: int | None
    header: dict[str, Any]
    source_format: str
    sha256: str
    warnings: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width in pixels."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    @property
    def is_color(self) -> bool:
        """Whether ``pixels`` is an RGB image."""
        return self.pixels.ndim == 3


@dataclass(frozen=True)
class Transform:
    """Mapping from the original image onto the model input, recorded so that it can be undone.

    The original image is first cropped to ``crop_box`` (x, y, width, height in original pixels),
    then mirrored left-right if ``flipped``, then scaled by ``scale`` and placed at
    (``pad_left``, ``pad_top``) inside a square of ``output_size`` pixels.
    """

    original_shape: tuple[int, int]
    crop_box: tuple[int, int, int, int]
    flipped: bool
    scale: float
    pad_left: int
    pad_top: int
    output_size: int
    roi_used: bool
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInput:
    """A preprocessed image ready for one branch.

    Attributes
    ----------
    tensor : numpy.ndarray
        float32 (3, S, S), normalised as the backbone expects.
    display : numpy.ndarray
        float32 (S, S) or (S, S, 3) in [0, 1], the same pixels before normalisation.
    transform : Transform
    modality : Modality
    mask : numpy.ndarray or None
        bool (H, W) in original pixels: the breast or B-mode region kept, where one was found.
    marks : numpy.ndarray or None
        bool (H, W) in original pixels: ultrasound caliper marks and annotation text that were
        inpainted, or None when none were found.
    """

    tensor: np.ndarray
    display: np.ndarray
    transform: Transform
    modality: Modality
    mask: np.ndarray | None = None
    warnings: tuple[str, ...] = ()
    marks: np.ndarray | None = None


@dataclass(frozen=True)
class Prediction:
    """The model's output for one case.

    Attributes
    ----------
    p_malignant : float
        Probability of malignancy from the fusion the bundle selected (or the single-modality
        model when one image is missing).
    p_mammography, p_ultrasound : float or None
        Each branch's own probability; None when that image was not given.
    votes : dict of str to float
        Each base learner's probability ("logistic_regression", "svm", "random_forest",
        "extra_trees") and the meta-learner's ("meta_mlp").
    threshold : float
        Operating threshold chosen on validation data.
    fusion : str
        "stacking", "late_fusion", "mammography_only" or "ultrasound_only".
    agreement : float
        Fraction of base learners whose vote is on the same side of ``votes_threshold`` as
        ``p_malignant`` is of ``threshold``. With late fusion the base learners belong to the
        stacking ensemble, so this compares them with their own model's threshold.
    heatmaps : dict of Modality to numpy.ndarray
        Grad-CAM maps for the malignant class in original image pixels, float32 in [0, 1].
    attention : dict of str to numpy.ndarray
        "mammography_spatial" (H, W) CBAM spatial map in original pixels; "ultrasound_channels"
        (C,) ECA channel weights.
    votes_model : str
        The model whose learners cast ``votes``: equal to ``fusion``, except "stacking" when
        late fusion answered; "" when there are no votes.
    votes_threshold : float or None
        The operating threshold of ``votes_model``; None when there are no votes.
    """

    p_malignant: float
    p_mammography: float | None
    p_ultrasound: float | None
    votes: dict[str, float]
    threshold: float
    fusion: str
    agreement: float
    model_version: str
    device: str
    timings: dict[str, float]
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    roi_used: dict[str, bool] = field(default_factory=dict)
    pseudo_paired_training: bool = True
    warnings: tuple[str, ...] = ()
    votes_model: str = ""
    votes_threshold: float | None = None

    @property
    def label(self) -> Literal["benign", "malignant"]:
        """The class on this side of the operating threshold."""
        return "malignant" if self.p_malignant >= self.threshold else "benign"
