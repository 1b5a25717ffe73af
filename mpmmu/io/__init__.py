"""Read mammograms and ultrasound images from DICOM and raster files into ImageRecords.

``read_image`` detects DICOM by content, decodes one frame to float32 display pixels in [0, 1]
with the file's Modality LUT, VOI and photometric interpretation applied, and keeps a
de-identified header summary. ``apply_window`` re-windows a record for viewer sliders.
"""

from __future__ import annotations

from mpmmu.io.deid import SUMMARY_KEYWORDS, summarize_header
from mpmmu.io.reader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_image
from mpmmu.io.voi import apply_window, window_image

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "SUMMARY_KEYWORDS",
    "apply_window",
    "read_image",
    "summarize_header",
    "window_image",
]
