"""One-case report of a second read: a PNG page (also as PDF) and a JSON record.

The report contains the images with the lesion box, the Grad-CAM heatmaps, the model's numbers, the
radiologist's reads, the model version and the research-use statement. It never contains a patient
identifier: :class:`mpmmu.records.ImageRecord` carries none, and the report adds only image hashes,
laterality, view and size.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mpmmu.explain.overlay import overlay
from mpmmu.i18n import SUPPORTED_LANGUAGES, t
from mpmmu.records import ImageRecord, Prediction

logger = logging.getLogger(__name__)

#: BI-RADS assessment categories a reader can give one lesion (ACR BI-RADS Atlas, 5th edition);
#: 0 (incomplete) and 6 (known malignancy) do not apply to a second read.
BIRADS_CATEGORIES: tuple[str, ...] = ("1", "2", "3", "4A", "4B", "4C", "5")

#: Below this fraction of base learners on the side of the final probability, the case is flagged
#: as a no-call: with four learners, a 2-2 split or worse.
NO_CALL_AGREEMENT = 0.75

Band = Literal["low", "below", "above", "high"]
MODALITIES = ("mammography", "ultrasound")

# A4 portrait at 150 dpi.
PAGE_SIZE = (1240, 1754)
MARGIN = 70

_LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


_TOKEN = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]|[^\s\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]+|\s+")


def probability_band(p_malignant: float, threshold: float) -> Band:
    """Place a probability in one of four plain-language bands around the operating threshold.

    "low" is under half the threshold, "below" up to the threshold, "above" from the threshold to
    halfway to 1, "high" beyond that.
    """
    if p_malignant < threshold / 2.0:
        return "low"
    if p_malignant < threshold:
        return "below"
    if p_malignant < (1.0 + threshold) / 2.0:
        return "above"
    return "high"


def is_no_call(prediction: Prediction) -> bool:
    """Return whether the base learners disagree enough to put the case in the no-call zone."""
    return prediction.agreement < NO_CALL_AGREEMENT


@dataclass(frozen=True)
class CaseReport:
    """Everything one report shows.

    Attributes
    ----------
    prediction : Prediction
    mammogram, ultrasound : ImageRecord or None
    mammogram_roi, ultrasound_roi : (x, y, width, height) or None
        Lesion boxes in original pixels.
    initial_read, revised_read : dict or None
        The reader's read locked before the AI result and the revision after it, each
        ``{"birads": str, "probability": int (0-100), "locked_at": str}``.
    created_at : datetime
    """

    prediction: Prediction
    mammogram: ImageRecord | None
    ultrasound: ImageRecord | None
    mammogram_roi: tuple[int, int, int, int] | None = None
    ultrasound_roi: tuple[int, int, int, int] | None = None
    initial_read: Mapping[str, Any] | None = None
    revised_read: Mapping[str, Any] | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def record(self, modality: str) -> ImageRecord | None:
        """Return the image of ``modality``."""
        return self.mammogram if modality == "mammography" else self.ultrasound

    def roi(self, modality: str) -> tuple[int, int, int, int] | None:
        """Return the lesion box of ``modality``."""
        return self.mammogram_roi if modality == "mammography" else self.ultrasound_roi


def report_data(report: CaseReport) -> dict[str, Any]:
    """Return the report's numbers and facts as JSON-ready values."""
    prediction = report.prediction
    images = {}
    for modality in MODALITIES:
        record = report.record(modality)
        if record is None:
            continue
        roi = report.roi(modality)
        images[modality] = {
            "sha256": record.sha256,
            "format": record.source_format,
            "laterality": record.laterality,
            "view": record.view,
            "height": record.shape[0],
            "width": record.shape[1],
            "roi": list(roi) if roi else None,
            "roi_used": prediction.roi_used.get(modality),
        }

    return {
        "research_use": {code: t("common.research_use", code) for code in SUPPORTED_LANGUAGES},
        "created_at": report.created_at.isoformat(timespec="seconds"),
        "model_version": prediction.model_version,
        "device": prediction.device,
        "fusion": prediction.fusion,
        "p_malignant": round(float(prediction.p_malignant), 6),
        "p_mammography": None if prediction.p_mammography is None else round(float(prediction.p_mammography), 6),
        "p_ultrasound": None if prediction.p_ultrasound is None else round(float(prediction.p_ultrasound), 6),
        "threshold": round(float(prediction.threshold), 6),
        "label": prediction.label,
        "band": probability_band(prediction.p_malignant, prediction.threshold),
        "agreement": round(float(prediction.agreement), 6),
        "no_call": is_no_call(prediction),
        "votes": {name: round(float(value), 6) for name, value in prediction.votes.items()},
        "answered_by": prediction.fusion,
        "votes_model": prediction.votes_model,
        "votes_threshold": None if prediction.votes_threshold is None else round(float(prediction.votes_threshold), 6),
        "pseudo_paired_training": prediction.pseudo_paired_training,
        "warnings": list(prediction.warnings),
        "timings_s": {name: round(float(value), 4) for name, value in prediction.timings.items()},
        "images": images,
        "reader": {
            "initial": dict(report.initial_read) if report.initial_read else None,
            "revised": dict(report.revised_read) if report.revised_read else None,
        },
        "patient_identifiers": "not included",
    }


def report_json(report: CaseReport) -> str:
    """Return :func:`report_data` as indented JSON text."""
    return json.dumps(report_data(report), indent=2, ensure_ascii=False)


def _find_font(candidates: Sequence[str]) -> str | None:
    return next((path for path in candidates if Path(path).is_file()), None)


def report_language(lang: str) -> str:
    """Return ``lang`` if this machine has a font for it, else English (logged)."""
    if lang == "zh-CN" and _find_font(_CJK_FONTS) is None:
        logger.warning("no CJK font found (looked in %s); writing the report in English", ", ".join(_CJK_FONTS))
        return "en"
    return lang


class _Writer:
    """Draw lines of text top to bottom on a page, wrapping at the page width."""

    def __init__(self, page: Image.Image, lang: str) -> None:
        self.page = page
        self.draw = ImageDraw.Draw(page)
        self.y = MARGIN
        path = _find_font(_CJK_FONTS) if lang == "zh-CN" else _find_font(_LATIN_FONTS)
        self.fonts = {}
        for size in (18, 22, 30):
            self.fonts[size] = ImageFont.truetype(path, size) if path else ImageFont.load_default(size)

    def _wrap(self, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> list[str]:
        # Chinese has no spaces between words, so each CJK character is its own token.
        lines, current = [], ""
        for token in _TOKEN.findall(text):
            candidate = current + token
            if self.draw.textlength(candidate, font=font) <= width or not current.strip():
                current = candidate
            else:
                lines.append(current.rstrip())
                current = token.lstrip()
        lines.append(current.rstrip())
        return lines

    def text(self, text: str, size: int = 18, colour: str = "#000000", gap: int = 6) -> None:
        font = self.fonts[size]
        for line in self._wrap(text, font, PAGE_SIZE[0] - 2 * MARGIN):
            self.draw.text((MARGIN, self.y), line, fill=colour, font=font)
            self.y += size + gap
        self.y += gap

    def rule(self) -> None:
        self.draw.line((MARGIN, self.y, PAGE_SIZE[0] - MARGIN, self.y), fill="#999999", width=1)
        self.y += 12


def _thumbnail(image: np.ndarray, roi: tuple[int, int, int, int] | None, box: tuple[int, int]) -> Image.Image:
    rgb = np.asarray(image)
    if rgb.dtype != np.uint8:
        rgb = np.uint8(np.round(np.clip(rgb, 0.0, 1.0) * 255.0))
    picture = Image.fromarray(rgb).convert("RGB")
    scale = min(box[0] / picture.width, box[1] / picture.height)
    picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), Image.Resampling.LANCZOS)
    if roi is not None:
        x, y, w, h = (value * scale for value in roi)
        ImageDraw.Draw(picture).rectangle((x, y, x + w, y + h), outline="#00e5ff", width=2)
    return picture


def render_report_page(report: CaseReport, lang: str = "en") -> Image.Image:
    """Draw the report as one A4 page at 150 dpi.

    Parameters
    ----------
    report : CaseReport
    lang : str
        Language of the texts; falls back to English when no font for it is installed.
    """
    lang = report_language(lang)
    data = report_data(report)
    prediction = report.prediction
    page = Image.new("RGB", PAGE_SIZE, "white")
    writer = _Writer(page, lang)

    writer.text(t("report.title", lang), size=30)
    writer.text(t("common.research_use", lang), size=22, colour="#b30000")
    writer.text(
        t(
            "report.provenance",
            lang,
            created=data["created_at"],
            version=prediction.model_version,
            device=prediction.device,
            fusion=prediction.fusion,
        )
    )
    writer.rule()

    # Images: each modality as the image with its lesion box beside its Grad-CAM overlay.
    cell = ((PAGE_SIZE[0] - 2 * MARGIN - 30) // 2, 330)
    for modality in MODALITIES:
        record = report.record(modality)
        if record is None:
            continue
        facts = [t(f"report.{modality}", lang)]
        if record.laterality in ("L", "R"):
            facts.append(t("second_read.left" if record.laterality == "L" else "second_read.right", lang))
        if record.view:
            facts.append(record.view)
        writer.text(" · ".join(facts), size=22)
        roi = report.roi(modality)
        left = _thumbnail(record.pixels, roi, cell)
        page.paste(left, (MARGIN, writer.y))
        heatmap = prediction.heatmaps.get(modality)
        if heatmap is not None and heatmap.shape == record.shape:
            right = _thumbnail(overlay(record.pixels, heatmap, alpha=0.5), roi, cell)
            page.paste(right, (MARGIN + cell[0] + 30, writer.y))
        writer.y += max(left.height, 1) + 14

    writer.rule()
    band = t(f"common.band_{data['band']}", lang)
    writer.text(
        t("report.result", lang, percent=f"{100 * prediction.p_malignant:.1f}", threshold=f"{100 * prediction.threshold:.0f}", band=band),
        size=22,
    )

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}%"

    writer.text(
        t(
            "report.modalities",
            lang,
            mammography=percent(prediction.p_mammography),
            ultrasound=percent(prediction.p_ultrasound),
            fused=percent(prediction.p_malignant),
        )
    )
    writer.text(t("common.report_threshold_source", lang, model=t(f"common.fusion_{prediction.fusion}", lang)))
    votes = ", ".join(f"{t(f'common.learner_{name}', lang)} {100 * value:.0f}%" for name, value in prediction.votes.items())
    if prediction.votes_model and prediction.votes_model != prediction.fusion:
        votes_threshold = prediction.threshold if prediction.votes_threshold is None else prediction.votes_threshold
        votes_text = t(
            "common.report_votes_comparison",
            lang,
            votes_model=t(f"common.fusion_{prediction.votes_model}", lang),
            fusion=t(f"common.fusion_{prediction.fusion}", lang),
            votes=votes,
            percent=f"{100 * prediction.agreement:.0f}",
            threshold=f"{100 * votes_threshold:.0f}",
        )
    else:
        votes_text = t("report.votes", lang, votes=votes, agreement=f"{100 * prediction.agreement:.0f}")
    writer.text(votes_text)
    if data["no_call"]:
        writer.text(t("common.no_call", lang), colour="#b30000")
    for warning in prediction.warnings:
        writer.text(warning, colour="#8a5a00")
    writer.rule()

    for which in ("initial", "revised"):
        read = data["reader"][which]
        if read:
            writer.text(t(f"report.read_{which}", lang, birads=read["birads"], probability=read["probability"], time=read["locked_at"]))
        elif which == "initial":
            writer.text(t("report.read_none", lang))
    writer.rule()
    if prediction.pseudo_paired_training:
        writer.text(t("common.pseudo_pair_caveat", lang), colour="#555555")
    writer.text(t("report.no_identifiers", lang), colour="#555555")
    return page


def report_png(report: CaseReport, lang: str = "en") -> bytes:
    """Return the report page as PNG bytes."""
    buffer = io.BytesIO()
    render_report_page(report, lang).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def report_pdf(report: CaseReport, lang: str = "en") -> bytes:
    """Return the report page as a one-page PDF (the PNG page embedded at 150 dpi)."""
    buffer = io.BytesIO()
    render_report_page(report, lang).save(buffer, format="PDF", resolution=150.0, title="mpmmu second read")
    return buffer.getvalue()
