"""Error types raised by mpmmu.

Every error the package raises on purpose derives from :class:`MpmmuError`, so the app and the
command line can turn any of them into a plain sentence without catching unrelated bugs.
"""

from __future__ import annotations


class MpmmuError(Exception):
    """Base class of every error that mpmmu raises on purpose."""


class ImageReadError(MpmmuError):
    """An image file could not be read: corrupt, truncated, or not an image at all."""


class NoPixelDataError(ImageReadError):
    """A DICOM file is valid but holds no Pixel Data, for example a Structured Report."""


class UnsupportedImageError(MpmmuError):
    """An image was read but mpmmu cannot use it (format, size, photometry or modality)."""


class ImageTooLargeError(UnsupportedImageError):
    """An image or upload is larger than the configured limit."""


class PreprocessError(MpmmuError):
    """Preprocessing failed, for example a lesion box that lies outside the image."""


class ManifestError(MpmmuError):
    """A case manifest is invalid; the message names the row and the column."""


class BundleError(MpmmuError):
    """A model bundle is missing, altered, or was saved with incompatible library versions."""


class ModelInputError(MpmmuError):
    """A case cannot be scored, for example because neither image was given."""


class StudyStoreError(MpmmuError):
    """The reader-study store rejected an operation or could not be reached."""


class ModelWeightsError(MpmmuError):
    """Pretrained weights are missing, unreadable, or do not match the network they are loaded into."""


class TrainingDataError(MpmmuError, ValueError):
    """The training data cannot support a training step, e.g. too few patients of one class for its folds."""


class MetricInputError(MpmmuError, ValueError):
    """Labels, scores or probabilities passed to a metric are invalid (shape, values, classes)."""


class MrmcDataError(MetricInputError):
    """A reader-study ratings table is invalid or incomplete; the message names the row at fault."""
