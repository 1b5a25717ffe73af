"""Case manifests: one CSV row per case, with its images, label, lesion ROIs, source and split.

The CSV has the columns of :data:`MANIFEST_COLUMNS`. A label is ``benign`` or ``malignant``, or
empty when unknown. An ROI is ``x,y,width,height`` in pixels of the original image, or empty.
Either image path may be empty for a single-modality case, but not both. Relative paths resolve
against the folder that contains the manifest.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from mpmmu.errors import ManifestError

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS: tuple[str, ...] = (
    "case_id",
    "patient_id",
    "mammogram_path",
    "ultrasound_path",
    "label",
    "mammogram_roi",
    "ultrasound_roi",
    "source",
    "split",
)

LABELS: tuple[str, ...] = ("benign", "malignant")
SPLITS: tuple[str, ...] = ("train", "val", "test")
PSEUDO_PAIR_SOURCE = "pseudo-pair"

# Fold splits are written "fold1", "fold2", ... when a manifest stores a k-fold assignment.
_FOLD_SPLIT = re.compile(r"^fold\d+$")

Label = Literal["benign", "malignant"]
Roi = tuple[int, int, int, int]


@dataclass(frozen=True)
class CaseRow:
    """One case of a manifest.

    Attributes
    ----------
    case_id : str
        Unique within the manifest, for example ``bus_0001-l`` or ``mdb001-1``.
    patient_id : str
        The patient (or woman) the images come from; splits never separate one patient's cases.
        A pseudo-pair's patient_id is ``"<ultrasound patient>+<mammogram patient>"``.
    mammogram_path, ultrasound_path : pathlib.Path or None
        Absolute image paths; None when the case lacks that modality.
    label : {"benign", "malignant"} or None
        None when unknown.
    mammogram_roi, ultrasound_roi : tuple of int or None
        Lesion box (x, y, width, height) in pixels of the original image.
    source : str
        Where the case comes from: "bus-bra", "mini-mias", "pseudo-pair", "synthetic", ...
    split : str or None
        "train", "val", "test", "fold<N>", or None when unassigned.
    """

    case_id: str
    patient_id: str
    mammogram_path: Path | None
    ultrasound_path: Path | None
    label: Label | None
    mammogram_roi: Roi | None = None
    ultrasound_roi: Roi | None = None
    source: str = ""
    split: str | None = None

    @property
    def pseudo_pair(self) -> bool:
        """Whether the mammogram and the ultrasound come from different patients, matched by label."""
        return self.source == PSEUDO_PAIR_SOURCE

    @property
    def y(self) -> int | None:
        """The label as 1 (malignant), 0 (benign) or None."""
        if self.label is None:
            return None
        return int(self.label == "malignant")

    def with_split(self, split: str | None) -> CaseRow:
        """Return a copy of the row assigned to ``split``."""
        return replace(self, split=split)


def format_roi(roi: Roi | None) -> str:
    """Write an ROI as ``x,y,width,height``, or an empty string for None."""
    if roi is None:
        return ""
    return ",".join(str(int(value)) for value in roi)


def parse_roi(text: str, *, where: str = "") -> Roi | None:
    """Parse ``x,y,width,height`` into a tuple of int; an empty string gives None.

    Raises
    ------
    ManifestError
        Unless the text contains four integers with x, y >= 0 and width, height > 0. The message
        starts with ``where`` (for example "row 3, column 'ultrasound_roi'").
    """
    text = text.strip()
    if not text:
        return None
    prefix = f"{where}: " if where else ""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 4:
        raise ManifestError(
            f"{prefix}ROI {text!r} has {len(parts)} values, expected 4 as 'x,y,width,height' "
            "in pixels of the original image; fix the value or leave it empty"
        )
    try:
        x, y, width, height = (int(part) for part in parts)
    except ValueError as error:
        raise ManifestError(
            f"{prefix}ROI {text!r} is not four integers 'x,y,width,height'; write whole pixels"
        ) from error
    if width <= 0 or height <= 0:
        raise ManifestError(
            f"{prefix}ROI {text!r} has width {width} and height {height}, both must be > 0; "
            "fix the box or leave it empty"
        )
    if x < 0 or y < 0:
        raise ManifestError(
            f"{prefix}ROI {text!r} starts at x={x}, y={y}, both must be >= 0; fix the box"
        )
    return x, y, width, height


def _location(row_number: int, column: str) -> str:
    # Row 1 is the first data row, on line 2 of the file after the header.
    return f"row {row_number} (line {row_number + 1}), column {column!r}"


def _resolve(text: str, base: Path) -> Path | None:
    text = text.strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    return Path(os.path.normpath(path))


def _parse_row(record: dict[str, str], row_number: int, base: Path) -> CaseRow:
    case_id = (record.get("case_id") or "").strip()
    if not case_id:
        raise ManifestError(f"{_location(row_number, 'case_id')}: case_id is empty; give every case a unique id")
    patient_id = (record.get("patient_id") or "").strip()
    if not patient_id:
        raise ManifestError(
            f"{_location(row_number, 'patient_id')}: patient_id of case {case_id!r} is empty; "
            "splits need the patient, give each case one (a pseudonym, never a real identifier)"
        )

    label_text = (record.get("label") or "").strip()
    if label_text and label_text not in LABELS:
        raise ManifestError(
            f"{_location(row_number, 'label')}: label {label_text!r} of case {case_id!r} is invalid; "
            "use 'benign', 'malignant' or leave it empty when unknown"
        )
    label: Label | None = label_text or None  # type: ignore[assignment]

    mammogram_path = _resolve(record.get("mammogram_path") or "", base)
    ultrasound_path = _resolve(record.get("ultrasound_path") or "", base)
    if mammogram_path is None and ultrasound_path is None:
        raise ManifestError(
            f"{_location(row_number, 'mammogram_path')}: case {case_id!r} has neither a mammogram_path "
            "nor an ultrasound_path; give at least one image or remove the row"
        )

    mammogram_roi = parse_roi(record.get("mammogram_roi") or "", where=_location(row_number, "mammogram_roi"))
    ultrasound_roi = parse_roi(record.get("ultrasound_roi") or "", where=_location(row_number, "ultrasound_roi"))
    if mammogram_roi is not None and mammogram_path is None:
        raise ManifestError(
            f"{_location(row_number, 'mammogram_roi')}: case {case_id!r} has a mammogram_roi but no "
            "mammogram_path; add the image or clear the ROI"
        )
    if ultrasound_roi is not None and ultrasound_path is None:
        raise ManifestError(
            f"{_location(row_number, 'ultrasound_roi')}: case {case_id!r} has an ultrasound_roi but no "
            "ultrasound_path; add the image or clear the ROI"
        )

    source = (record.get("source") or "").strip()
    if source == PSEUDO_PAIR_SOURCE and patient_id.count("+") != 1:
        raise ManifestError(
            f"{_location(row_number, 'patient_id')}: pseudo-pair {case_id!r} has patient_id "
            f"{patient_id!r}, expected '<ultrasound patient>+<mammogram patient>' with one '+'"
        )

    split_text = (record.get("split") or "").strip()
    if split_text and split_text not in SPLITS and not _FOLD_SPLIT.match(split_text):
        raise ManifestError(
            f"{_location(row_number, 'split')}: split {split_text!r} of case {case_id!r} is invalid; "
            "use 'train', 'val', 'test', 'fold<N>' or leave it empty"
        )

    return CaseRow(
        case_id=case_id,
        patient_id=patient_id,
        mammogram_path=mammogram_path,
        ultrasound_path=ultrasound_path,
        label=label,
        mammogram_roi=mammogram_roi,
        ultrasound_roi=ultrasound_roi,
        source=source,
        split=split_text or None,
    )


def _check_files(row: CaseRow, row_number: int) -> None:
    for column, path in (("mammogram_path", row.mammogram_path), ("ultrasound_path", row.ultrasound_path)):
        if path is not None and not path.is_file():
            raise ManifestError(
                f"{_location(row_number, column)}: file {str(path)!r} of case {row.case_id!r} not found; "
                "fix the path (relative paths resolve against the manifest's folder) or set MPMMU_DATA"
            )


def parse_manifest_records(
    records: Iterable[dict[str, str]],
    fieldnames: Sequence[str] | None,
    base: Path,
    *,
    check_files: bool = False,
) -> list[CaseRow]:
    """Validate CSV records and turn them into :class:`CaseRow` objects.

    Parameters
    ----------
    records : iterable of dict
        Rows as :class:`csv.DictReader` yields them.
    fieldnames : sequence of str or None
        The header.
    base : pathlib.Path
        Folder that relative paths resolve against.
    check_files : bool
        Also require every image path to be an existing file.

    Raises
    ------
    ManifestError
        On the first invalid row, naming the row number, the column and what to do.
    """
    header = [name.strip() for name in (fieldnames or [])]
    missing = [column for column in MANIFEST_COLUMNS if column not in header]
    if missing:
        raise ManifestError(
            f"manifest header is missing column(s) {', '.join(map(repr, missing))}; the header must "
            f"list {', '.join(MANIFEST_COLUMNS)}"
        )
    extra = [column for column in header if column not in MANIFEST_COLUMNS]
    if extra:
        logger.warning("manifest has extra column(s) %s; they are ignored", ", ".join(extra))

    rows: list[CaseRow] = []
    first_row_of: dict[str, int] = {}
    for row_number, record in enumerate(records, start=1):
        record = {(key or "").strip(): value for key, value in record.items()}
        row = _parse_row(record, row_number, base)
        if row.case_id in first_row_of:
            raise ManifestError(
                f"{_location(row_number, 'case_id')}: case_id {row.case_id!r} repeats row "
                f"{first_row_of[row.case_id]}; case ids must be unique"
            )
        first_row_of[row.case_id] = row_number
        if check_files:
            _check_files(row, row_number)
        rows.append(row)
    return rows


def read_manifest(path: str | os.PathLike[str], *, check_files: bool = False) -> list[CaseRow]:
    """Read and validate a manifest CSV.

    Parameters
    ----------
    path : path-like
        The CSV file. Relative image paths resolve against its folder.
    check_files : bool
        Also require every image path to be an existing file.

    Returns
    -------
    list of CaseRow
        In file order, with absolute paths.

    Raises
    ------
    ManifestError
        When the file is missing or any row is invalid; the message names the row and column.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {str(path)!r} not found; build one with 'mpmmu data build'")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = parse_manifest_records(reader, reader.fieldnames, path.resolve().parent, check_files=check_files)
    logger.info("read %d cases from manifest %s", len(rows), path)
    return rows


def validate_manifest(path: str | os.PathLike[str], *, check_files: bool = True) -> list[CaseRow]:
    """Validate a manifest CSV, image files included by default, and return its rows.

    Raises
    ------
    ManifestError
        On the first problem, naming the row, the column and what to do.
    """
    return read_manifest(path, check_files=check_files)


def validate_rows(rows: Sequence[CaseRow], *, check_files: bool = False) -> None:
    """Check in-memory rows by the same rules that :func:`read_manifest` applies.

    Raises
    ------
    ManifestError
        Naming the row number (1-based, as it would be written) and the column.
    """
    records = (_to_record(row, None) for row in rows)
    parse_manifest_records(records, MANIFEST_COLUMNS, Path("/"), check_files=check_files)


def _to_record(row: CaseRow, relative_to: Path | None) -> dict[str, str]:
    def path_text(path: Path | None) -> str:
        if path is None:
            return ""
        if relative_to is not None:
            return Path(os.path.relpath(Path(path).resolve(), relative_to)).as_posix()
        return str(path)

    return {
        "case_id": row.case_id,
        "patient_id": row.patient_id,
        "mammogram_path": path_text(row.mammogram_path),
        "ultrasound_path": path_text(row.ultrasound_path),
        "label": row.label or "",
        "mammogram_roi": format_roi(row.mammogram_roi),
        "ultrasound_roi": format_roi(row.ultrasound_roi),
        "source": row.source,
        "split": row.split or "",
    }


def write_manifest(
    rows: Sequence[CaseRow], path: str | os.PathLike[str], *, relative_paths: bool = False
) -> Path:
    """Validate rows and write them as a manifest CSV, creating the folder if needed.

    Parameters
    ----------
    rows : sequence of CaseRow
    path : path-like
        Destination CSV.
    relative_paths : bool
        Write image paths relative to the manifest's folder (portable with the images), instead of
        absolute.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ManifestError
        When a row is invalid.
    """
    validate_rows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    relative_to = path.resolve().parent if relative_paths else None
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(_to_record(row, relative_to))
    logger.info("wrote %d cases to manifest %s", len(rows), path)
    return path


def manifest_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of a manifest file's bytes, to record which data trained a model."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BuildResult:
    """Rows a builder made from a data set folder, with what it skipped or adjusted.

    Attributes
    ----------
    rows : tuple of CaseRow
        The cases, split unassigned.
    counts : dict of str to int
        Named counts for the build summary (images read, findings skipped, ...).
    warnings : tuple of str
        One sentence per row the builder adjusted, flagged or dropped.
    """

    rows: tuple[CaseRow, ...]
    counts: dict[str, int]
    warnings: tuple[str, ...] = ()
