"""One-case report: bands, no-call flag, JSON content without identifiers, PNG and PDF pages."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from mpmmu.io import read_image
from mpmmu.records import Prediction
from mpmmu.report import CaseReport, is_no_call, probability_band, report_data, report_json, report_pdf, report_png


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.uint8(image * 255)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def case() -> CaseReport:
    rng = np.random.default_rng(3)
    mammogram = read_image(_png(rng.random((120, 90))))
    ultrasound = read_image(_png(rng.random((80, 100))))
    heatmap = np.zeros((120, 90), dtype=np.float32)
    heatmap[40:60, 30:50] = 1.0
    prediction = Prediction(
        p_malignant=0.72,
        p_mammography=0.55,
        p_ultrasound=0.81,
        votes={"logistic_regression": 0.6, "svm": 0.7, "random_forest": 0.3, "extra_trees": 0.8, "meta_mlp": 0.72},
        threshold=0.4,
        fusion="stacking",
        agreement=0.75,
        model_version="abc123",
        device="cpu",
        timings={"total": 0.2},
        heatmaps={"mammography": heatmap},
        roi_used={"mammography": True, "ultrasound": False},
    )
    return CaseReport(
        prediction=prediction,
        mammogram=mammogram,
        ultrasound=ultrasound,
        mammogram_roi=(20, 30, 40, 50),
        initial_read={"birads": "4B", "probability": 40, "locked_at": "2026-12-04 21:00 UTC"},
        revised_read={"birads": "4C", "probability": 60, "locked_at": "2026-12-04 21:05 UTC"},
    )


@pytest.mark.parametrize(
    "p, band",
    [(0.1, "low"), (0.25, "below"), (0.4, "above"), (0.69, "above"), (0.7, "high"), (0.99, "high")],
)
def test_probability_band_around_threshold(p, band):
    assert probability_band(p, 0.4) == band


def test_is_no_call_below_three_quarters(case):
    assert not is_no_call(case.prediction)
    split = Prediction(**{**case.prediction.__dict__, "agreement": 0.5})
    assert is_no_call(split)


def test_report_data_holds_numbers_and_reads(case):
    data = report_data(case)
    assert data["p_malignant"] == pytest.approx(0.72)
    assert data["label"] == "malignant"
    assert data["band"] == "high"
    assert data["reader"]["initial"]["birads"] == "4B"
    assert data["reader"]["revised"]["probability"] == 60
    assert data["images"]["mammography"]["roi"] == [20, 30, 40, 50]
    assert data["model_version"] == "abc123"
    assert data["research_use"]["en"] == "Research use only, not for clinical diagnosis."


def test_report_json_has_no_patient_identifier_fields(case):
    text = report_json(case).lower()
    for keyword in ("patientname", "patientid", "patientbirthdate", "accessionnumber"):
        assert keyword not in text
    assert json.loads(text)["patient_identifiers"] == "not included"


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_report_png_is_a4_page(case, lang):
    page = Image.open(io.BytesIO(report_png(case, lang)))
    assert page.size == (1240, 1754)


def test_report_pdf_is_pdf(case):
    data = report_pdf(case, "en")
    assert data.startswith(b"%PDF")
    assert len(data) > 10_000


@pytest.fixture(scope="module")
def late_fusion_case(case) -> CaseReport:
    prediction = Prediction(
        **{**case.prediction.__dict__, "fusion": "late_fusion", "votes_model": "stacking", "votes_threshold": 0.25}
    )
    return CaseReport(prediction=prediction, mammogram=case.mammogram, ultrasound=case.ultrasound)


def test_report_data_names_votes_model(late_fusion_case):
    data = report_data(late_fusion_case)

    assert data["answered_by"] == "late_fusion"
    assert data["votes_model"] == "stacking"
    assert data["votes_threshold"] == pytest.approx(0.25)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_report_png_late_fusion_page(late_fusion_case, lang):
    page = Image.open(io.BytesIO(report_png(late_fusion_case, lang)))
    assert page.size == (1240, 1754)
