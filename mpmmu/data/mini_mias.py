"""Build a manifest from the mini-MIAS mammography database.

mini-MIAS (Suckling et al., 1994) contains 322 mediolateral-oblique film mammograms of 161 women,
1024 x 1024 pixels at 200 micron. ``Info.txt`` lists one row per finding: reference number,
background tissue, abnormality class, severity (B/M) and the centre x, y and radius in pixels.

Pitfalls handled here:

- y is measured from the bottom-left corner, so the array row is ``height - y``.
- An image can have several rows (mdb005, mdb132, mdb144 with one benign and one malignant
  finding, mdb223, mdb226, mdb239, mdb249); each located finding becomes its own case.
- mdb059, mdb216, mdb233 and mdb245 have no location (widely spread calcifications, "*NOTE 3*"),
  so no lesion crop exists; they are skipped and counted.
- Images n and n + 1 (n odd) are the two breasts of one woman, so the patient is
  ``(n + 1) // 2``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from mpmmu.data.manifest import BuildResult, CaseRow, Roi
from mpmmu.errors import ManifestError

logger = logging.getLogger(__name__)

SOURCE = "mini-mias"
MIN_ROI_SIDE = 128
ROI_RADIUS_FACTOR = 3

# A finding whose centre is darker than this (8-bit grey, mean over a 15 x 15 window) lies on the
# film background, not in the breast. In this release the other located findings measure 106 or more;
# mdb212 and mdb214 measure 4 and 12.
_BACKGROUND_GREY = 30
_BACKGROUND_WINDOW = 7

_INFO_ROW = re.compile(r"^(mdb(\d{3}))\s+(.*)$")


@dataclass(frozen=True)
class MiasFinding:
    """One row of ``Info.txt``.

    Attributes
    ----------
    reference : str
        ``mdb001`` ... ``mdb322``.
    index : int
        1-based position of the row among the rows of the same image.
    tissue : str
        Background tissue: F (fatty), G (fatty-glandular), D (dense-glandular).
    abnormality : str
        CALC, CIRC, SPIC, MISC, ARCH, ASYM or NORM.
    severity : {"B", "M"} or None
        None for normal images.
    x, y, radius : int or None
        Centre and radius in pixels, y from the bottom edge; None when the file gives no location.
    """

    reference: str
    index: int
    tissue: str
    abnormality: str
    severity: str | None
    x: int | None
    y: int | None
    radius: int | None

    @property
    def number(self) -> int:
        """The image number, 1 to 322."""
        return int(self.reference[3:])

    @property
    def located(self) -> bool:
        """Whether the row gives a centre and a radius."""
        return self.x is not None and self.y is not None and self.radius is not None


def parse_info(path: str | os.PathLike[str]) -> list[MiasFinding]:
    """Parse mini-MIAS ``Info.txt`` into one :class:`MiasFinding` per data row.

    Lines that do not start with ``mdbNNN`` (the readme text around the table) are ignored.
    A row with severity but without three integer location values (``*NOTE 3*`` or nothing)
    gets ``x = y = radius = None``.

    Raises
    ------
    ManifestError
        When the file is missing, contains no rows, or a row cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"mini-MIAS truth file {str(path)!r} not found")
    findings: list[MiasFinding] = []
    rows_per_image: dict[str, int] = {}
    for line_number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        match = _INFO_ROW.match(line.strip())
        if not match:
            continue
        reference, tokens = match.group(1), match.group(3).split()
        if len(tokens) < 2:
            raise ManifestError(f"{path.name} line {line_number}: {line.strip()!r} lacks tissue and class")
        tissue, abnormality = tokens[0], tokens[1]
        severity = tokens[2] if len(tokens) > 2 and tokens[2] in ("B", "M") else None
        if abnormality != "NORM" and severity is None:
            raise ManifestError(f"{path.name} line {line_number}: abnormal finding {line.strip()!r} lacks severity B/M")

        location = tokens[3:6]
        if len(location) == 3 and all(value.isdigit() for value in location):
            x, y, radius = (int(value) for value in location)
        else:
            x = y = radius = None

        rows_per_image[reference] = rows_per_image.get(reference, 0) + 1
        findings.append(
            MiasFinding(reference, rows_per_image[reference], tissue, abnormality, severity, x, y, radius)
        )
    if not findings:
        raise ManifestError(f"{str(path)!r} contains no 'mdbNNN' rows; is this mini-MIAS Info.txt?")
    return findings


def mias_woman(number: int) -> int:
    """Return the woman of image ``number``: images 2k - 1 and 2k belong to woman k."""
    return (number + 1) // 2


def mias_laterality(number: int) -> Literal["L", "R"]:
    """Return the breast side of image ``number``: odd is left, even is right.

    Notes
    -----
    The readme's note 1 says the opposite (even left, odd right). The lead markers burnt into the
    films decide here: odd images such as mdb003 and mdb011 carry "L ML", even images such as
    mdb002, mdb004, mdb020 and mdb028 carry "R ML" or "R OBL". The markers read mirrored, so the
    films were digitised flipped left-right: an odd (left) image has its chest wall at the
    image's right edge, the opposite of the usual display.
    """
    return "L" if number % 2 == 1 else "R"


def mias_roi(x: int, y: int, radius: int, image_shape: tuple[int, int]) -> Roi:
    """Return the square lesion crop (x, y, width, height) for a mini-MIAS finding.

    The square has side ``max(3 * radius, 128)`` pixels, is centred on column ``x`` and row
    ``height - y`` (Info.txt measures y from the bottom edge), and is shifted to lie inside the
    image, shrinking only when the side exceeds the image.

    Parameters
    ----------
    x, y, radius : int
        Info.txt centre and radius in pixels.
    image_shape : tuple of int
        (height, width) of the image.
    """
    height, width = image_shape
    side = min(max(ROI_RADIUS_FACTOR * radius, MIN_ROI_SIDE), height, width)
    centre_column, centre_row = x, height - y
    left = int(round(centre_column - side / 2))
    top = int(round(centre_row - side / 2))
    left = min(max(left, 0), width - side)
    top = min(max(top, 0), height - side)
    return left, top, side, side


def _centre_on_background(image: np.ndarray, column: int, row: int) -> bool:
    height, width = image.shape
    row = min(max(row, 0), height - 1)
    column = min(max(column, 0), width - 1)
    window = image[
        max(row - _BACKGROUND_WINDOW, 0) : row + _BACKGROUND_WINDOW + 1,
        max(column - _BACKGROUND_WINDOW, 0) : column + _BACKGROUND_WINDOW + 1,
    ]
    return float(window.mean()) < _BACKGROUND_GREY


def build_mini_mias(
    root: str | os.PathLike[str], *, off_breast: Literal["drop", "keep"] = "drop"
) -> BuildResult:
    """Read mini-MIAS ``Info.txt`` into mammogram-only lesion cases.

    Only findings with a location and severity B or M become cases, one per Info.txt row:
    case_id ``mdb001-1`` (reference and the row's position within the image), patient_id
    ``"mias-woman-" + (n + 1) // 2``, label benign/malignant, mammogram_roi from :func:`mias_roi`.

    Parameters
    ----------
    root : path-like
        The ``mini-mias`` folder, holding ``Info.txt`` and ``images/mdbNNN.png``.
    off_breast : {"drop", "keep"}
        What to do with a finding whose centre lies on the film background instead of the breast
        (mdb212 and mdb214 in this release). "drop" (default) leaves it out, because its crop contains
        no lesion and would teach the model a background patch labelled benign; "keep" keeps it.
        Either way a warning names it.

    Returns
    -------
    BuildResult
        Counts: "images", "women", "finding_rows", "normal_images", "unlocated_findings",
        "off_breast", "lesion_cases", "benign", "malignant", "lesion_women".

    Notes
    -----
    For mdb212 and mdb214, mirroring x as well (column ``width - x``) would put the centre inside
    the breast; that reading is unverified, so the file's coordinates are never altered.
    """
    if off_breast not in ("drop", "keep"):
        raise ValueError(f"off_breast must be 'drop' or 'keep', got {off_breast!r}")
    root = Path(root)
    findings = parse_info(root / "Info.txt")

    rows: list[CaseRow] = []
    warnings: list[str] = []
    unlocated = 0
    off_breast_count = 0
    for finding in findings:
        if finding.severity is None:
            continue
        x, y, radius = finding.x, finding.y, finding.radius
        if x is None or y is None or radius is None:
            unlocated += 1
            logger.info("%s: no location in Info.txt, skipped", finding.reference)
            continue
        image_path = (root / "images" / f"{finding.reference}.png").resolve()
        if not image_path.is_file():
            raise ManifestError(f"mini-MIAS image {str(image_path)!r} listed in Info.txt not found")
        with Image.open(image_path) as image:
            pixels = np.asarray(image.convert("L"))

        if _centre_on_background(pixels, x, pixels.shape[0] - y):
            off_breast_count += 1
            action = "dropped" if off_breast == "drop" else "kept"
            message = (
                f"{finding.reference}-{finding.index}: centre ({x}, {y}) from the bottom-left "
                f"lies on the film background, not in the breast; {action}"
            )
            logger.warning(message)
            warnings.append(message)
            if off_breast == "drop":
                continue

        rows.append(
            CaseRow(
                case_id=f"{finding.reference}-{finding.index}",
                patient_id=f"mias-woman-{mias_woman(finding.number)}",
                mammogram_path=image_path,
                ultrasound_path=None,
                label="malignant" if finding.severity == "M" else "benign",
                mammogram_roi=mias_roi(x, y, radius, pixels.shape),
                source=SOURCE,
            )
        )

    references = {finding.reference for finding in findings}
    counts = {
        "images": len(references),
        "women": len({mias_woman(int(reference[3:])) for reference in references}),
        "finding_rows": len(findings),
        "normal_images": len({finding.reference for finding in findings if finding.abnormality == "NORM"}),
        "unlocated_findings": unlocated,
        "off_breast": off_breast_count,
        "lesion_cases": len(rows),
        "benign": sum(row.label == "benign" for row in rows),
        "malignant": sum(row.label == "malignant" for row in rows),
        "lesion_women": len({row.patient_id for row in rows}),
    }
    logger.info("mini-MIAS: %s", counts)
    return BuildResult(rows=tuple(rows), counts=counts, warnings=tuple(warnings))


def build_mini_mias_manifest(
    root: str | os.PathLike[str], *, off_breast: Literal["drop", "keep"] = "drop"
) -> list[CaseRow]:
    """Return mini-MIAS lesion cases (see :func:`build_mini_mias`) without the build summary."""
    return list(build_mini_mias(root, off_breast=off_breast).rows)
