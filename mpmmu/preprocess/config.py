"""Preprocessing settings, stored in the model bundle so training and inference agree."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from mpmmu.errors import PreprocessError


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of :func:`mpmmu.preprocess.preprocess`.

    Attributes
    ----------
    size : int
        Side of the square model input in pixels.
    roi_context : float
        Factor by which an ultrasound lesion box is enlarged before cropping. 1.25 gave the best
        linear-probe AUC on BUS-BRA lesion boxes.
    roi_context_mammography : float
        The same factor for mammograms. 1.0 by default because :func:`roi_from_circle` already
        makes a square of side ``max(3 * radius, 128)`` around a finding.
    min_roi_side : int
        Smallest side of a lesion crop in original pixels; smaller boxes grow about their centre.
    mean, std : tuple of float
        Per-channel normalisation; 0.5 and 0.5 is the convention of timm's tf_efficientnet_lite0.
    canonical_laterality : {"L", "R"}
        Every mammogram is mirrored so that it looks like a breast of this side as stored in
        DICOM: "L" puts the chest wall on the left edge of the image.
    interpolation : {"area", "bicubic"}
        Resampling when shrinking; enlarging always uses bicubic, clipped to [0, 1].
    segmentation_max_side : int
        Mammograms are shrunk to at most this side before breast segmentation, to save memory.
    inpaint_marks : bool
        Whether caliper marks and annotation text inside an ultrasound scan are inpainted.
    """

    size: int = 224
    roi_context: float = 1.25
    roi_context_mammography: float = 1.0
    min_roi_side: int = 32
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    canonical_laterality: Literal["L", "R"] = "L"
    interpolation: Literal["area", "bicubic"] = "area"
    segmentation_max_side: int = 512
    inpaint_marks: bool = True

    def __post_init__(self) -> None:
        if self.size < 8:
            raise PreprocessError(f"size must be >= 8 pixels, got {self.size}; use e.g. 224")
        for name in ("roi_context", "roi_context_mammography"):
            value = getattr(self, name)
            if not value >= 1.0:
                raise PreprocessError(f"{name} must be >= 1.0, got {value}; 1.0 crops the box itself")
        if self.min_roi_side < 1:
            raise PreprocessError(f"min_roi_side must be >= 1 pixel, got {self.min_roi_side}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise PreprocessError(f"mean and std need 3 values each, got {self.mean} and {self.std}")
        if any(not s > 0 for s in self.std):
            raise PreprocessError(f"std values must be > 0, got {self.std}")
        if self.canonical_laterality not in ("L", "R"):
            raise PreprocessError(f"canonical_laterality must be 'L' or 'R', got {self.canonical_laterality!r}")
        if self.interpolation not in ("area", "bicubic"):
            raise PreprocessError(f"interpolation must be 'area' or 'bicubic', got {self.interpolation!r}")
        if self.segmentation_max_side < 64:
            raise PreprocessError(
                f"segmentation_max_side must be >= 64 pixels, got {self.segmentation_max_side}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values (tuples become lists)."""
        values = asdict(self)
        values["mean"] = list(self.mean)
        values["std"] = list(self.std)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessConfig:
        """Build a config from :meth:`to_dict` output.

        Raises
        ------
        PreprocessError
            If a key is unknown, so a bundle from a newer mpmmu is not silently misread.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PreprocessError(
                f"Unknown preprocessing settings {unknown}; the bundle was saved by another mpmmu "
                f"version, known settings are {sorted(known)}"
            )
        converted = dict(values)
        for name in ("mean", "std"):
            if name in converted:
                converted[name] = tuple(float(v) for v in converted[name])
        return cls(**converted)
