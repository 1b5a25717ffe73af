"""Study analysis: MRMC inputs from reads, operating points, changes of mind, reading time, figures."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mpmmu.errors import MrmcDataError
from mpmmu.metrics import roc_auc
from mpmmu.study.analysis import (
    analyse_reads,
    changes_of_mind,
    mrmc_data,
    operating_points,
    reading_times,
    roc_figures,
)
from mpmmu.study.records import CaseInfo, ReadRecord, StudyInfo

NOW = datetime(2026, 2, 1, tzinfo=timezone.utc)
TRUTH = {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "f": 1}


def read(reader: str, case_id: str, mode: str, birads: str, probability: int, seconds: float | None = 10.0, index: list[int] = [0]) -> ReadRecord:
    index[0] += 1
    return ReadRecord(index[0], 1, reader, case_id, TRUTH[case_id], mode, birads, probability, 1, seconds, None, NOW)


def full_reads() -> list[ReadRecord]:
    # R1 improves with the AI on case c (benign, 4A -> 3) and d (malignant, 3 -> 4B); R2 is
    # harmed on case e (malignant, 4C -> 3).
    table = {
        "R1": {"a": ("2", "2", 5, 5), "b": ("3", "3", 20, 15), "c": ("4A", "3", 40, 20), "d": ("3", "4B", 30, 60), "e": ("4C", "4C", 80, 85), "f": ("5", "5", 95, 97)},
        "R2": {"a": ("3", "3", 10, 12), "b": ("2", "2", 3, 3), "c": ("3", "3", 15, 15), "d": ("4B", "4B", 60, 65), "e": ("4C", "3", 75, 30), "f": ("4A", "4A", 50, 55)},
    }
    reads = []
    for reader, cases in table.items():
        for case_id, (birads_unaided, birads_aided, p_unaided, p_aided) in cases.items():
            reads.append(read(reader, case_id, "unaided", birads_unaided, p_unaided, seconds=20.0))
            reads.append(read(reader, case_id, "aided", birads_aided, p_aided, seconds=8.0))
    return reads


def cases(with_ai: bool = True) -> list[CaseInfo]:
    return [
        CaseInfo(case_id, k, "malignant" if truth else "benign", None, None, None, None, (0.3 + 0.4 * truth + 0.01 * k) if with_ai else None, "m" if with_ai else None)
        for k, (case_id, truth) in enumerate(TRUTH.items())
    ]


def study() -> StudyInfo:
    return StudyInfo(1, "unit", "sequential", 0, 0, "", "", NOW, 6, 2)


def test_mrmc_data_aided_first_and_ratings():
    data = mrmc_data(full_reads())
    assert data.modalities == ("aided", "unaided")
    assert data.readers == ("R1", "R2")
    assert data.ratings[1, 0, 2] == 40
    birads = mrmc_data(full_reads(), rating="birads")
    assert birads.ratings[1, 0, 2] == 3  # 4A is the third category


def test_mrmc_data_raises_missing_read():
    with pytest.raises(MrmcDataError, match="incomplete"):
        mrmc_data(full_reads()[:-1])


def test_operating_points_at_birads_4a():
    points = {(p.reader, p.mode): p for p in operating_points(full_reads())}
    r1_unaided = points[("R1", "unaided")]
    assert (r1_unaided.tp, r1_unaided.fn, r1_unaided.tn, r1_unaided.fp) == (2, 1, 2, 1)
    r1_aided = points[("R1", "aided")]
    assert (r1_aided.sensitivity, r1_aided.specificity) == (1.0, 1.0)


def test_changes_of_mind_helpful_and_harmful():
    changes = {change.reader: change for change in changes_of_mind(full_reads())}
    assert (changes["R1"].call_changed, changes["R1"].helpful, changes["R1"].harmful) == (2, 2, 0)
    assert (changes["R2"].call_changed, changes["R2"].helpful, changes["R2"].harmful) == (1, 0, 1)
    assert changes["R1"].birads_changed == 2
    # R1's probabilities moved toward the truth: -5 on b, -20 on c, +30 d, +5 e, +2 f, 0 on a.
    assert changes["R1"].mean_probability_change_toward_truth == pytest.approx((0 + 5 + 20 + 30 + 5 + 2) / 6)


def test_reading_times_skip_unknown():
    reads = full_reads() + [read("R3", "a", "unaided", "2", 1, seconds=None)]
    times = {(t.reader, t.mode): t for t in reading_times(reads)}
    assert times[("R1", "unaided")].median_seconds == 20.0
    assert ("R3", "unaided") not in times


def test_analyse_reads_matches_metrics_and_ai():
    analysis = analyse_reads(study(), cases(), full_reads())
    reader_auc = analysis.reader_auc()
    r1_aided = [r for r in full_reads() if r.reader == "R1" and r.mode == "aided"]
    assert reader_auc["aided"]["R1"] == pytest.approx(roc_auc([r.truth for r in r1_aided], [r.probability for r in r1_aided]))
    assert analysis.ai is not None
    assert analysis.ai.auc == 1.0
    assert len(analysis.tests()) == 9
    summary = analysis.to_dict()
    assert summary["modality_auc"]["aided"] == pytest.approx(sum(reader_auc["aided"].values()) / 2)
    figures = roc_figures(analysis)
    assert sorted(figures) == ["R1", "R2"]
    assert len(figures["R1"].data) == 4  # chance line, unaided, aided, AI


def test_analyse_reads_without_ai_result():
    analysis = analyse_reads(study(), cases(with_ai=False), full_reads())
    assert analysis.ai is None
    assert analysis.to_dict()["ai_alone"] is None


def test_analyse_reads_raises_one_mode_only():
    unaided_only = [r for r in full_reads() if r.mode == "unaided"]
    with pytest.raises(MrmcDataError, match="needs unaided and aided reads"):
        analyse_reads(study(), cases(), unaided_only)
