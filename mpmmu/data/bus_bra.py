"""Build a manifest from the BUS-BRA breast ultrasound data set.

BUS-BRA (Gómez-Flores et al., Medical Physics 2024) contains 1,875 B-mode PNGs of 1,064 patients
with biopsy-proven labels. ``bus_data.csv`` lists per image: ID, Case (the patient), Pathology,
Width, Height and BBOX, the lesion box ``[x, y, width, height]``. Most lesions have two images
(ID suffixes ``-l`` and ``-r``), so splits go by Case, never by image.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

from PIL import Image

from mpmmu.data.manifest import BuildResult, CaseRow, Roi
from mpmmu.errors import ManifestError

logger = logging.getLogger(__name__)

SOURCE = "bus-bra"
_REQUIRED_COLUMNS = ("ID", "Case", "Pathology", "Width", "Height", "BBOX")


def _clamp_box(box: Roi, width: int, height: int) -> Roi:
    x, y, box_width, box_height = box
    x0, y0 = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
    x1, y1 = min(x + box_width, width), min(y + box_height, height)
    return x0, y0, max(x1 - x0, 1), max(y1 - y0, 1)


def _parse_bbox(text: str, image_id: str, line: int) -> Roi:
    try:
        values = json.loads(text)
        x, y, width, height = (int(value) for value in values)
    except (ValueError, TypeError) as error:
        raise ManifestError(
            f"bus_data.csv line {line}, column 'BBOX': {text!r} of {image_id} is not '[x, y, width, height]'"
        ) from error
    if width <= 0 or height <= 0:
        raise ManifestError(
            f"bus_data.csv line {line}, column 'BBOX': {text!r} of {image_id} has a non-positive size"
        )
    return x, y, width, height


def build_bus_bra(root: str | os.PathLike[str]) -> BuildResult:
    """Read BUS-BRA's ``bus_data.csv`` into ultrasound-only cases.

    Each image is one case: case_id = ID (``bus_0001-l``), patient_id = ``"busbra-" + Case``,
    label = Pathology, ultrasound_roi = BBOX.

    Parameters
    ----------
    root : path-like
        The ``bus-bra`` folder, holding ``bus_data.csv`` and ``images/``.

    Returns
    -------
    BuildResult
        Rows with absolute image paths and no split; counts "images", "patients", "benign",
        "malignant", "size_mismatch" (rows whose Width or Height differs from the PNG) and
        "bbox_clamped".

    Raises
    ------
    ManifestError
        When the folder, the CSV, a column or an image is missing, or a row is invalid.

    Notes
    -----
    Four rows (bus_0856-l, bus_0857-r, bus_0912-l, bus_0990-l) give a Height that differs from
    their PNG. The model reads the PNG, so each BBOX is checked against the PNG's own size and
    clamped into it with a warning. In the 2024 release all four boxes already fit.
    """
    root = Path(root)
    table = root / "bus_data.csv"
    if not table.is_file():
        raise ManifestError(
            f"BUS-BRA table {str(table)!r} not found; point --data or MPMMU_DATA at the folder holding bus-bra/"
        )

    rows: list[CaseRow] = []
    warnings: list[str] = []
    size_mismatch = 0
    clamped = 0
    with table.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in _REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{str(table)!r} lacks column(s) {', '.join(missing)}; is this BUS-BRA's bus_data.csv?")
        for line, record in enumerate(reader, start=2):
            image_id = record["ID"].strip()
            label = record["Pathology"].strip().lower()
            if label not in ("benign", "malignant"):
                raise ManifestError(
                    f"bus_data.csv line {line}, column 'Pathology': {record['Pathology']!r} of {image_id} "
                    "is neither benign nor malignant"
                )
            image_path = (root / "images" / f"{image_id}.png").resolve()
            if not image_path.is_file():
                raise ManifestError(f"BUS-BRA image {str(image_path)!r} listed on line {line} not found")
            with Image.open(image_path) as image:
                png_width, png_height = image.size

            if (png_width, png_height) != (int(record["Width"]), int(record["Height"])):
                size_mismatch += 1
                message = (
                    f"{image_id}: bus_data.csv gives {record['Width']}x{record['Height']} but the PNG is "
                    f"{png_width}x{png_height}; the BBOX is checked against the PNG"
                )
                logger.warning(message)
                warnings.append(message)

            box = _parse_bbox(record["BBOX"], image_id, line)
            fitted = _clamp_box(box, png_width, png_height)
            if fitted != box:
                clamped += 1
                message = f"{image_id}: BBOX {box} exceeds the {png_width}x{png_height} PNG, clamped to {fitted}"
                logger.warning(message)
                warnings.append(message)

            rows.append(
                CaseRow(
                    case_id=image_id,
                    patient_id=f"busbra-{record['Case'].strip()}",
                    mammogram_path=None,
                    ultrasound_path=image_path,
                    label=label,  # type: ignore[arg-type]
                    ultrasound_roi=fitted,
                    source=SOURCE,
                )
            )

    counts = {
        "images": len(rows),
        "patients": len({row.patient_id for row in rows}),
        "benign": sum(row.label == "benign" for row in rows),
        "malignant": sum(row.label == "malignant" for row in rows),
        "size_mismatch": size_mismatch,
        "bbox_clamped": clamped,
    }
    logger.info("BUS-BRA: %s", counts)
    return BuildResult(rows=tuple(rows), counts=counts, warnings=tuple(warnings))


def build_bus_bra_manifest(root: str | os.PathLike[str]) -> list[CaseRow]:
    """Return BUS-BRA's cases (see :func:`build_bus_bra`) without the build summary."""
    return list(build_bus_bra(root).rows)


def load_bus_bra_folds(root: str | os.PathLike[str], k: int = 5) -> dict[str, int]:
    """Read the authors' patient-wise fold of each image from ``<k>-fold-cv.csv`` (column kFold).

    Parameters
    ----------
    root : path-like
        The ``bus-bra`` folder.
    k : {5, 10}
        Which of the two published fold files to read.

    Returns
    -------
    dict of str to int
        Image ID to fold number, 1 to k.
    """
    path = Path(root) / f"{k}-fold-cv.csv"
    if not path.is_file():
        raise ManifestError(f"BUS-BRA fold file {str(path)!r} not found; the authors publish k = 5 and k = 10")
    with path.open(newline="", encoding="utf-8") as handle:
        return {record["ID"].strip(): int(record["kFold"]) for record in csv.DictReader(handle)}


def bus_bra_author_kfold(
    rows: list[CaseRow], root: str | os.PathLike[str], k: int = 5
) -> list[tuple[list[CaseRow], list[CaseRow]]]:
    """Split BUS-BRA rows by the authors' published folds, in the shape :func:`patient_kfold` returns.

    Returns
    -------
    list of (train_rows, test_rows)
        One pair per fold, fold 1 first; test rows carry split ``"fold<N>"``.

    Raises
    ------
    ManifestError
        When a row has no fold in the file, or one patient falls into two folds.
    """
    fold_of = load_bus_bra_folds(root, k)
    fold_of_patient: dict[str, int] = {}
    for row in rows:
        if row.case_id not in fold_of:
            raise ManifestError(f"case {row.case_id!r} has no fold in {k}-fold-cv.csv; is it a BUS-BRA case?")
        fold = fold_of[row.case_id]
        if fold_of_patient.setdefault(row.patient_id, fold) != fold:
            raise ManifestError(
                f"patient {row.patient_id!r} falls in folds {fold_of_patient[row.patient_id]} and {fold} "
                f"of {k}-fold-cv.csv; the folds are not patient-wise"
            )

    folds = []
    for fold in range(1, k + 1):
        test = [row.with_split(f"fold{fold}") for row in rows if fold_of[row.case_id] == fold]
        train = [row for row in rows if fold_of[row.case_id] != fold]
        folds.append((train, test))
    return folds
