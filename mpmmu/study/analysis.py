"""Analysis of a study's locked reads: MRMC tests, AI alone, operating points, changes of mind, time.

The statistics come from :mod:`mpmmu.metrics`; this module only turns the store's reads into
their inputs and collects the results. The two modalities of the MRMC analysis are the reading
modes, in the order ("aided", "unaided"), so every difference is aided minus unaided.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import mean, median
from typing import Any, Literal

from mpmmu.errors import MrmcDataError, StudyStoreError
from mpmmu.metrics import (
    DBMResult,
    DeLongResult,
    MrmcData,
    ORResult,
    dbm_analysis,
    delong_ci,
    or_analysis,
    roc_curve_points,
    threshold_metrics,
)
from mpmmu.study.design import POSITIVE_BIRADS, birads_rank
from mpmmu.study.records import CaseInfo, ReadRecord, StudyInfo
from mpmmu.study.store import StudyStore

logger = logging.getLogger(__name__)

Rating = Literal["probability", "birads"]

#: MRMC modality order; the analyses report first minus second, so aided - unaided.
MRMC_MODES: tuple[str, str] = ("aided", "unaided")


def rating_value(read: ReadRecord, rating: Rating) -> float:
    """Return the number a read contributes to the ROC analysis (percent, or the BI-RADS rank 1-6)."""
    if rating == "probability":
        return float(read.probability)
    if rating == "birads":
        return float(birads_rank(read.birads))
    raise StudyStoreError(f"rating {rating!r} is unknown; use 'probability' or 'birads'")


def mrmc_data(reads: Sequence[ReadRecord], rating: Rating = "probability") -> MrmcData:
    """Build the fully crossed ratings of a study from its reads.

    Raises
    ------
    MrmcDataError
        When a reader has not yet locked every read (the message names the first missing one).
    """
    if not reads:
        raise MrmcDataError("the study has no locked reads yet; analyse it once the readers have read")
    return MrmcData.from_long(
        [read.reader for read in reads],
        [read.mode for read in reads],
        [read.case_id for read in reads],
        [read.truth for read in reads],
        [rating_value(read, rating) for read in reads],
        modality_order=[mode for mode in MRMC_MODES if any(read.mode == mode for read in reads)],
        row_labels=[f"read {read.id} ({read.reader}, {read.case_id}, {read.mode})" for read in reads],
    )


@dataclass(frozen=True)
class OperatingPoint:
    """Sensitivity and specificity of one reader in one mode at BI-RADS >= 4A."""

    reader: str
    mode: str
    sensitivity: float
    specificity: float
    tp: int
    fp: int
    tn: int
    fn: int


@dataclass(frozen=True)
class ChangeOfMind:
    """Changes in one reader's calls between the unaided and the aided read of the same cases.

    A call is positive at BI-RADS >= 4A. ``helpful`` counts cases whose call became right after the
    AI (a malignant case moved to >= 4A, or a benign one below it), ``harmful`` the reverse.
    """

    reader: str
    cases: int
    birads_changed: int
    call_changed: int
    helpful: int
    harmful: int
    mean_probability_change_toward_truth: float


@dataclass(frozen=True)
class ReadingTime:
    """Reading time of one reader in one mode, over the reads whose time is known, in seconds."""

    reader: str
    mode: str
    reads: int
    median_seconds: float
    mean_seconds: float


@dataclass
class StudyAnalysis:
    """Everything the analysis page and ``mpmmu study analyse --study`` show about one study."""

    study: StudyInfo
    rating: Rating
    alpha: float
    data: MrmcData
    or_jackknife: ORResult
    or_delong: ORResult
    dbm: DBMResult
    ai: DeLongResult | None
    ai_cases: int
    operating_points: list[OperatingPoint]
    changes: list[ChangeOfMind]
    reading_times: list[ReadingTime]
    heatmaps_opened: dict[str, int]
    roc_points: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)

    def reader_auc(self) -> dict[str, dict[str, float]]:
        """Return each reader's AUC per mode: ``{mode: {reader: auc}}``."""
        return {
            mode: {reader: float(self.or_jackknife.auc[i, j]) for j, reader in enumerate(self.data.readers)}
            for i, mode in enumerate(self.data.modalities)
        }

    def mean_auc(self) -> dict[str, float]:
        """Return the reader-averaged AUC per mode."""
        return {mode: float(self.or_jackknife.modality_auc[i]) for i, mode in enumerate(self.data.modalities)}

    def tests(self) -> list[tuple[str, Any]]:
        """Return the MRMC tests as (title, MrmcTest): OR jackknife, OR DeLong, DBM, three analyses each."""
        items = []
        for title, result in (("OR, jackknife", self.or_jackknife), ("OR, DeLong", self.or_delong), ("DBM", self.dbm)):
            for test in (result.random, result.fixed_readers, result.fixed_cases):
                items.append((title, test))
        return items

    def to_dict(self) -> dict[str, Any]:
        """Return the analysis as JSON-ready values."""

        def finite(value: float) -> float | None:
            return None if value is None or not math.isfinite(value) else float(value)

        return {
            "study": {"id": self.study.id, "name": self.study.name, "design": self.study.design},
            "rating": self.rating,
            "confidence_level": 1.0 - self.alpha,
            "n_readers": len(self.data.readers),
            "n_cases": len(self.data.case_ids),
            "n_normal": self.data.n_normal,
            "n_abnormal": self.data.n_abnormal,
            "reader_auc": self.reader_auc(),
            "modality_auc": self.mean_auc(),
            "ai_alone": None
            if self.ai is None
            else {"auc": self.ai.auc, "ci_low": self.ai.ci_low, "ci_high": self.ai.ci_high, "cases": self.ai_cases},
            "analyses": {
                f"{title}: {test.analysis}": {**test.to_dict(), "method": title} for title, test in self.tests()
            },
            "operating_points": [vars(point) | {"sensitivity": finite(point.sensitivity), "specificity": finite(point.specificity)} for point in self.operating_points],
            "changes_of_mind": [vars(change) | {"mean_probability_change_toward_truth": finite(change.mean_probability_change_toward_truth)} for change in self.changes],
            "reading_time": [vars(item) for item in self.reading_times],
            "heatmaps_opened": self.heatmaps_opened,
        }


def operating_points(reads: Sequence[ReadRecord]) -> list[OperatingPoint]:
    """Compute each reader's sensitivity and specificity at BI-RADS >= 4A, per mode."""
    threshold = birads_rank(POSITIVE_BIRADS)
    groups: dict[tuple[str, str], list[ReadRecord]] = {}
    for read in reads:
        groups.setdefault((read.reader, read.mode), []).append(read)
    points = []
    for (reader, mode), group in groups.items():
        metrics = threshold_metrics(
            [read.truth for read in group], [birads_rank(read.birads) for read in group], threshold
        )
        points.append(
            OperatingPoint(reader, mode, metrics.sensitivity, metrics.specificity, metrics.tp, metrics.fp, metrics.tn, metrics.fn)
        )
    return points


def changes_of_mind(reads: Sequence[ReadRecord]) -> list[ChangeOfMind]:
    """Compare each reader's aided read of a case with their unaided read of it."""
    threshold = birads_rank(POSITIVE_BIRADS)
    pairs: dict[str, dict[str, dict[str, ReadRecord]]] = {}
    for read in reads:
        pairs.setdefault(read.reader, {}).setdefault(read.case_id, {})[read.mode] = read
    changes = []
    for reader, cases in pairs.items():
        complete = [modes for modes in cases.values() if "unaided" in modes and "aided" in modes]
        birads_changed = call_changed = helpful = harmful = 0
        shifts = []
        for modes in complete:
            before, after = modes["unaided"], modes["aided"]
            called_before = birads_rank(before.birads) >= threshold
            called_after = birads_rank(after.birads) >= threshold
            birads_changed += before.birads != after.birads
            if called_before != called_after:
                call_changed += 1
                if called_after == bool(before.truth):
                    helpful += 1
                else:
                    harmful += 1
            direction = 1 if before.truth else -1
            shifts.append(direction * (after.probability - before.probability))
        changes.append(
            ChangeOfMind(
                reader,
                len(complete),
                birads_changed,
                call_changed,
                helpful,
                harmful,
                float(mean(shifts)) if shifts else float("nan"),
            )
        )
    return changes


def reading_times(reads: Sequence[ReadRecord]) -> list[ReadingTime]:
    """Summarise reading time per reader and mode over the reads whose time was recorded."""
    groups: dict[tuple[str, str], list[float]] = {}
    for read in reads:
        if read.reading_seconds is not None:
            groups.setdefault((read.reader, read.mode), []).append(read.reading_seconds)
    return [
        ReadingTime(reader, mode, len(seconds), float(median(seconds)), float(mean(seconds)))
        for (reader, mode), seconds in groups.items()
    ]


def _roc_points(data: MrmcData, cases: Sequence[CaseInfo]) -> dict[str, dict[str, dict[str, list[float]]]]:
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    for j, reader in enumerate(data.readers):
        curves[reader] = {}
        for i, mode in enumerate(data.modalities):
            points = roc_curve_points(data.truth, data.ratings[i, j])
            curves[reader][mode] = {"fpr": points.fpr.tolist(), "tpr": points.tpr.tolist()}
    ai_cases = [case for case in cases if case.ai_p_malignant is not None]
    if len(ai_cases) == len(cases) and {case.truth for case in cases} == {0, 1}:
        points = roc_curve_points([case.truth for case in cases], [case.ai_p_malignant for case in cases])
        curves["AI"] = {"ai": {"fpr": points.fpr.tolist(), "tpr": points.tpr.tolist()}}
    return curves


#: Minimum number of cases of each truth for the OR and DBM analyses. The jackknife leaves one case
#: out and DeLong's sample covariances divide by n - 1, so both need two cases in each class.
MIN_CASES_PER_CLASS = 2


def check_case_counts(n_abnormal: int, n_normal: int, remedy: str) -> None:
    """Raise MrmcDataError when there are too few cases of either truth for an MRMC analysis.

    ``remedy`` ends the message with the next step, for example adding cases.
    """
    if n_abnormal >= MIN_CASES_PER_CLASS and n_normal >= MIN_CASES_PER_CLASS:
        return
    raise MrmcDataError(
        f"the MRMC analysis (Obuchowski-Rockette with jackknife or DeLong covariance, and DBM) needs at least "
        f"{MIN_CASES_PER_CLASS} malignant and {MIN_CASES_PER_CLASS} benign cases, got {n_abnormal} malignant "
        f"and {n_normal} benign; {remedy}"
    )


def analyse_reads(
    study: StudyInfo,
    cases: Sequence[CaseInfo],
    reads: Sequence[ReadRecord],
    events: Sequence[Mapping[str, Any]] = (),
    *,
    rating: Rating = "probability",
    alpha: float = 0.05,
) -> StudyAnalysis:
    """Analyse a study's reads (see :func:`analyse_study` for the store-backed entry point).

    Raises
    ------
    MrmcDataError
        When the reads are incomplete or the study has fewer than 2 readers or 2 cases of each truth.
    """
    data = mrmc_data(reads, rating)
    check_case_counts(
        data.n_abnormal,
        data.n_normal,
        "create a new study from a manifest with more cases of each class",
    )
    if len(data.modalities) != 2:
        raise MrmcDataError(
            f"the reads cover only the {data.modalities[0]} mode; the MRMC comparison needs unaided and aided reads"
        )
    with_ai = [case for case in cases if case.ai_p_malignant is not None]
    ai = None
    if with_ai and len(with_ai) < len(cases):
        logger.warning(
            "study %d: %d of %d cases have an AI result; the AI-alone AUC is left out",
            study.id,
            len(with_ai),
            len(cases),
        )
    elif with_ai:
        ai = delong_ci([case.truth for case in cases], [case.ai_p_malignant for case in cases], alpha=alpha)

    opened: dict[str, set[str]] = {}
    for item in events:
        if item["kind"] == "heatmap_opened" and item["reader"] is not None:
            opened.setdefault(item["reader"], set()).add(item["case_id"])

    return StudyAnalysis(
        study=study,
        rating=rating,
        alpha=alpha,
        data=data,
        or_jackknife=or_analysis(data, covariance="jackknife", alpha=alpha),
        or_delong=or_analysis(data, covariance="delong", alpha=alpha),
        dbm=dbm_analysis(data, alpha=alpha),
        ai=ai,
        ai_cases=len(with_ai),
        operating_points=operating_points(reads),
        changes=changes_of_mind(reads),
        reading_times=reading_times(reads),
        heatmaps_opened={reader: len(opened.get(reader, ())) for reader in data.readers},
        roc_points=_roc_points(data, cases),
    )


def analyse_study(
    store: StudyStore, study: int | str, *, rating: Rating = "probability", alpha: float = 0.05
) -> StudyAnalysis:
    """Load a study's cases, reads and events from the store and analyse them.

    Raises
    ------
    MrmcDataError
        When a reader has not locked every read yet; the message lists the readers and counts.
    """
    info = store.study(study)
    cases = store.cases(info.id)
    reads = store.reads(info.id)
    required = 2 * len(cases)
    done: dict[str, int] = {reader.name: 0 for reader in store.readers(info.id)}
    for read in reads:
        done[read.reader] += 1
    unfinished = [f"{name} {count}/{required}" for name, count in done.items() if count < required]
    if unfinished:
        raise MrmcDataError(
            f"study {info.name!r} is not fully read; reads locked per unfinished reader: {', '.join(unfinished)}. "
            "Analyse it once every reader has finished."
        )
    return analyse_reads(
        info,
        cases,
        reads,
        store.events(info.id, kind="heatmap_opened"),
        rating=rating,
        alpha=alpha,
    )


def roc_figures(analysis: StudyAnalysis, labels: Mapping[str, str] | None = None, title: str = "{reader}") -> dict[str, Any]:
    """Build one plotly ROC figure per reader, with the AI-alone curve in each when it is known.

    Parameters
    ----------
    labels : mapping of str to str, optional
        Translated curve names for "unaided", "aided" and "ai".
    title : str
        Figure title with a ``{reader}`` placeholder.
    """
    from mpmmu.viz import roc_figure

    auc = analysis.reader_auc()
    ai_curve = analysis.roc_points.get("AI", {}).get("ai")
    figures = {}
    for reader in analysis.data.readers:
        curves: dict[str, dict[str, Any]] = {}
        for mode in ("unaided", "aided"):
            points = analysis.roc_points[reader][mode]
            curves[mode] = {**points, "auc": auc[mode][reader]}
        if ai_curve is not None and analysis.ai is not None:
            curves["ai"] = {**ai_curve, "auc": analysis.ai.auc}
        figures[reader] = roc_figure(curves, title=title.format(reader=reader), curve_labels=labels)
    return figures


def format_extras(analysis: StudyAnalysis) -> str:
    """Render the study-specific results (AI alone, operating points, changes, time) as text."""
    level = round(100 * (1 - analysis.alpha))
    lines = []
    if analysis.ai is None:
        lines.append(f"AI alone: not available ({analysis.ai_cases} of {len(analysis.data.case_ids)} cases have an AI result)")
    else:
        lines.append(
            f"AI alone: AUC {analysis.ai.auc:.4f} ({level}% CI {analysis.ai.ci_low:.4f}-{analysis.ai.ci_high:.4f}, DeLong)"
        )
    lines += ["", f"Sensitivity and specificity at BI-RADS >= {POSITIVE_BIRADS}"]
    for point in sorted(analysis.operating_points, key=lambda p: (p.reader, p.mode)):
        lines.append(
            f"  {point.reader:<12}{point.mode:<9} sensitivity {point.sensitivity:.3f}  specificity {point.specificity:.3f}"
            f"  (TP {point.tp}, FN {point.fn}, TN {point.tn}, FP {point.fp})"
        )
    lines += ["", "Changes of mind after the AI (call = BI-RADS >= 4A)"]
    for change in analysis.changes:
        lines.append(
            f"  {change.reader:<12}{change.cases} cases: BI-RADS changed {change.birads_changed}, call changed "
            f"{change.call_changed} (helpful {change.helpful}, harmful {change.harmful}), "
            f"probability moved {change.mean_probability_change_toward_truth:+.1f} points toward the truth on average"
        )
    lines += ["", "Reading time (seconds)"]
    for item in sorted(analysis.reading_times, key=lambda i: (i.reader, i.mode)):
        lines.append(f"  {item.reader:<12}{item.mode:<9} median {item.median_seconds:.1f}  mean {item.mean_seconds:.1f}  ({item.reads} reads)")
    lines += ["", "Cases with a heatmap opened (aided reads)"]
    for reader, count in analysis.heatmaps_opened.items():
        lines.append(f"  {reader:<12}{count}")
    return "\n".join(lines)

