"""Teaching quiz: lexicon, annotations, grading and the running score per trainee."""

from __future__ import annotations

import pytest

from mpmmu.errors import StudyStoreError
from mpmmu.study.store import StudyStore
from mpmmu.study.teaching import (
    MAMMOGRAPHY_LEXICON,
    ULTRASOUND_LEXICON,
    TeachingCase,
    load_library,
    read_annotations,
    record_answer,
    score_answer,
    trainee_scores,
)
from mpmmu.data.manifest import CaseRow


def test_lexicon_covers_requested_descriptors():
    assert set(ULTRASOUND_LEXICON) == {"shape", "orientation", "margin", "echo_pattern", "posterior_features"}
    assert set(MAMMOGRAPHY_LEXICON) == {"shape", "margin", "density", "calcification_morphology", "calcification_distribution"}


@pytest.mark.parametrize(
    "label, reference, answer, expected",
    [
        ("malignant", None, "4B", (True, None, 1.0)),
        ("malignant", None, "3", (False, None, 0.0)),
        ("benign", "3", "3", (True, True, 1.0)),
        ("benign", "3", "4A", (False, False, 0.0)),
        ("malignant", "4", "4C", (True, True, 1.0)),
        ("malignant", "5", "4C", (True, False, 0.5)),
    ],
)
def test_score_answer_call_and_category(label, reference, answer, expected):
    case = TeachingCase(CaseRow("x", "p", None, None, label), reference)
    grade = score_answer(case, answer, {})
    assert (grade.call_correct, grade.birads_correct, grade.score) == expected


def test_score_answer_descriptors():
    case = TeachingCase(
        CaseRow("x", "p", None, None, "malignant"),
        None,
        {"ultrasound_shape": "irregular", "ultrasound_margin": "spiculated"},
    )
    grade = score_answer(case, "5", {"ultrasound_shape": "Irregular", "ultrasound_margin": "circumscribed"})
    assert (grade.descriptors_matched, grade.descriptors_graded) == (1, 2)
    assert grade.score == pytest.approx((1.0 + 0.5) / 2)


def test_read_annotations_raises_term_outside_lexicon(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("case_id,birads,ultrasound_margin\nx,4A,wavy\n")
    with pytest.raises(StudyStoreError, match="line 2: ultrasound_margin 'wavy' is not a BI-RADS term"):
        read_annotations(path)


def test_read_annotations_raises_unknown_column(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("case_id,colour\nx,red\n")
    with pytest.raises(StudyStoreError, match="unknown columns"):
        read_annotations(path)


def test_library_quiz_running_score(synthetic_manifest, tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("case_id,birads,ultrasound_shape\nsynthetic-0001,4C,irregular\n")
    library = load_library(synthetic_manifest, notes)
    assert len(library.cases) == 20
    assert library.case("synthetic-0001").reference_birads == "4C"
    with StudyStore(tmp_path / "quiz.sqlite3") as store:
        first = record_answer(store, "Trainee A", library, "synthetic-0001", "4C", {"ultrasound_shape": "irregular"})
        second = record_answer(store, "Trainee A", library, "synthetic-0000", "5", {})
        record_answer(store, "Trainee B", library, "synthetic-0000", "2", {})
        scores = trainee_scores(store, "Trainee A", library.library_id)
        with pytest.raises(StudyStoreError, match="trainee name"):
            record_answer(store, " ", library, "synthetic-0000", "2", {})
    assert first.score == 1.0
    assert not second.call_correct
    assert scores["attempts"] == 2
    assert scores["calls_correct"] == 1
    assert scores["mean_score"] == pytest.approx(0.5)
