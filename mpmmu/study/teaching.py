"""Teaching quiz: a case library with ground truth, the BI-RADS lexicon and the scoring of answers.

A trainee picks a BI-RADS category and the lexicon descriptors of a case before the reveal. The
page then shows the truth. An answer scores up to three parts, each worth one point and averaged over the
parts that can be graded:

- the call: BI-RADS >= 4A on a malignant case or below 4A on a benign one;
- the category: the reference BI-RADS category, when the library gives one (a reference of "4"
  accepts 4A, 4B and 4C);
- the descriptors: the fraction of reference descriptors matched, when the library gives any.

The library is a case manifest plus an optional annotations CSV with the columns case_id, birads
and one column per descriptor named ``<modality>_<descriptor>``, for example
``ultrasound_margin`` or ``mammography_calcification_distribution``.

References
----------
D'Orsi CJ, Sickles EA, Mendelson EB, Morris EA, et al. ACR BI-RADS Atlas, Breast Imaging Reporting
and Data System, 5th edition. American College of Radiology, 2013: the mammography and
ultrasound lexicons below.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mpmmu.data.manifest import CaseRow, manifest_sha256, read_manifest
from mpmmu.errors import StudyStoreError
from mpmmu.study.design import BIRADS_CATEGORIES, POSITIVE_BIRADS, birads_rank
from mpmmu.study.database import as_utc
from mpmmu.study.models import QuizAttempt
from mpmmu.study.store import StudyStore

logger = logging.getLogger(__name__)

#: Descriptors of a mass in the BI-RADS ultrasound lexicon (5th edition), in the Atlas's order.
ULTRASOUND_LEXICON: dict[str, tuple[str, ...]] = {
    "shape": ("oval", "round", "irregular"),
    "orientation": ("parallel", "not parallel"),
    "margin": ("circumscribed", "indistinct", "angular", "microlobulated", "spiculated"),
    "echo_pattern": ("anechoic", "hyperechoic", "complex cystic and solid", "hypoechoic", "isoechoic", "heterogeneous"),
    "posterior_features": ("no posterior features", "enhancement", "shadowing", "combined pattern"),
}

#: Descriptors of a mass and of calcifications in the BI-RADS mammography lexicon (5th edition).
#: "none" marks a lesion without calcifications.
MAMMOGRAPHY_LEXICON: dict[str, tuple[str, ...]] = {
    "shape": ("oval", "round", "irregular"),
    "margin": ("circumscribed", "obscured", "microlobulated", "indistinct", "spiculated"),
    "density": ("high density", "equal density", "low density", "fat-containing"),
    "calcification_morphology": (
        "none",
        "typically benign",
        "amorphous",
        "coarse heterogeneous",
        "fine pleomorphic",
        "fine linear or fine-linear branching",
    ),
    "calcification_distribution": ("none", "diffuse", "regional", "grouped", "linear", "segmental"),
}

LEXICONS: dict[str, dict[str, tuple[str, ...]]] = {"ultrasound": ULTRASOUND_LEXICON, "mammography": MAMMOGRAPHY_LEXICON}


def descriptor_keys(modalities: Sequence[str] = ("mammography", "ultrasound")) -> list[str]:
    """Return the descriptor keys ``<modality>_<descriptor>`` of the given modalities."""
    return [f"{modality}_{name}" for modality in modalities for name in LEXICONS[modality]]


@dataclass(frozen=True)
class TeachingCase:
    """A library case: the manifest row and the reference read, when the library gives one."""

    row: CaseRow
    reference_birads: str | None = None
    reference_descriptors: dict[str, str] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities the case has an image for."""
        present = []
        if self.row.mammogram_path is not None:
            present.append("mammography")
        if self.row.ultrasound_path is not None:
            present.append("ultrasound")
        return tuple(present)


@dataclass(frozen=True)
class TeachingLibrary:
    """The quiz's cases and an id (the manifest's SHA-256) that attempts are recorded under."""

    library_id: str
    cases: tuple[TeachingCase, ...]

    def case(self, case_id: str) -> TeachingCase:
        """Return a case by id, or raise StudyStoreError."""
        for case in self.cases:
            if case.row.case_id == case_id:
                return case
        raise StudyStoreError(f"the teaching library has no case {case_id!r}")


def _check_descriptor(key: str, value: str, where: str) -> str:
    modality, _, name = key.partition("_")
    lexicon = LEXICONS.get(modality, {})
    if name not in lexicon:
        raise StudyStoreError(f"{where}: descriptor {key!r} is unknown; use one of {descriptor_keys()}")
    cleaned = value.strip().lower()
    if cleaned not in lexicon[name]:
        raise StudyStoreError(f"{where}: {key} {value!r} is not a BI-RADS term; use one of {list(lexicon[name])}")
    return cleaned


def read_annotations(path: str | os.PathLike[str]) -> dict[str, tuple[str | None, dict[str, str]]]:
    """Read a library's annotations CSV into ``{case_id: (birads, {descriptor_key: term})}``.

    Raises
    ------
    StudyStoreError
        On a missing case_id column, an unknown column, a BI-RADS category or a descriptor term
        outside the lexicon; the message names the line.
    """
    path = Path(path)
    annotations: dict[str, tuple[str | None, dict[str, str]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.DictReader(handle)
        columns = set(rows.fieldnames or ())
        if "case_id" not in columns:
            raise StudyStoreError(f"{path}: the annotations CSV needs a case_id column")
        unknown = columns - {"case_id", "birads", *descriptor_keys()}
        if unknown:
            raise StudyStoreError(f"{path}: unknown columns {sorted(unknown)}; descriptor columns are {descriptor_keys()}")
        for line, row in enumerate(rows, start=2):
            where = f"{path}, line {line}"
            birads = (row.get("birads") or "").strip().upper() or None
            if birads is not None and birads != "4":
                try:
                    birads_rank(birads)
                except StudyStoreError as error:
                    raise StudyStoreError(f"{where}: {error}") from error
            descriptors = {
                key: _check_descriptor(key, value, where)
                for key, value in row.items()
                if key not in ("case_id", "birads") and value and value.strip()
            }
            annotations[row["case_id"].strip()] = (birads, descriptors)
    return annotations


def load_library(
    manifest: str | os.PathLike[str], annotations: str | os.PathLike[str] | None = None
) -> TeachingLibrary:
    """Load a teaching library: the labelled cases of a manifest and their optional annotations.

    Raises
    ------
    StudyStoreError
        When the manifest has no labelled case.
    """
    rows = [row for row in read_manifest(manifest) if row.label is not None]
    if not rows:
        raise StudyStoreError(f"the manifest {manifest} has no case with a benign or malignant label to teach with")
    notes = read_annotations(annotations) if annotations is not None else {}
    cases = tuple(
        TeachingCase(row, *notes[row.case_id]) if row.case_id in notes else TeachingCase(row) for row in rows
    )
    return TeachingLibrary(manifest_sha256(manifest), cases)


@dataclass(frozen=True)
class QuizScore:
    """The grading of one answer; ``score`` is the mean of the graded parts, in [0, 1]."""

    call_correct: bool
    birads_correct: bool | None
    descriptors_matched: int
    descriptors_graded: int
    score: float


def score_answer(case: TeachingCase, birads: str, descriptors: Mapping[str, str]) -> QuizScore:
    """Grade a trainee's BI-RADS category and descriptors against the case's truth."""
    rank = birads_rank(birads)
    category = BIRADS_CATEGORIES[rank - 1]
    called_malignant = rank >= birads_rank(POSITIVE_BIRADS)
    call_correct = called_malignant == (case.row.label == "malignant")

    birads_correct = None
    if case.reference_birads is not None:
        reference = case.reference_birads
        birads_correct = category.startswith("4") if reference == "4" else category == reference

    graded = len(case.reference_descriptors)
    matched = sum(
        1
        for key, reference in case.reference_descriptors.items()
        if str(descriptors.get(key, "")).strip().lower() == reference
    )

    parts = [1.0 if call_correct else 0.0]
    if birads_correct is not None:
        parts.append(1.0 if birads_correct else 0.0)
    if graded:
        parts.append(matched / graded)
    return QuizScore(call_correct, birads_correct, matched, graded, sum(parts) / len(parts))


def record_answer(
    store: StudyStore,
    trainee: str,
    library: TeachingLibrary,
    case_id: str,
    birads: str,
    descriptors: Mapping[str, str],
) -> QuizScore:
    """Grade an answer, store it under the trainee's name and return the grade."""
    trainee = str(trainee).strip()
    if not trainee or len(trainee) > 100:
        raise StudyStoreError(f"trainee name {trainee!r} is invalid; use 1-100 characters")
    case = library.case(case_id)
    grade = score_answer(case, birads, descriptors)
    with store.transaction() as session:
        session.add(
            QuizAttempt(
                trainee=trainee,
                library=library.library_id,
                case_id=case_id,
                birads=BIRADS_CATEGORIES[birads_rank(birads) - 1],
                descriptors=json.dumps(dict(descriptors), sort_keys=True),
                call_correct=grade.call_correct,
                birads_correct=grade.birads_correct,
                descriptors_matched=grade.descriptors_matched,
                descriptors_graded=grade.descriptors_graded,
                score=grade.score,
                created_at=store.clock(),
            )
        )
    return grade


def trainee_scores(store: StudyStore, trainee: str, library_id: str | None = None) -> dict[str, Any]:
    """Return a trainee's running score: attempts, correct calls, mean score and the attempts themselves."""
    with store.transaction() as session:
        query = select(QuizAttempt).where(QuizAttempt.trainee == str(trainee).strip()).order_by(QuizAttempt.id)
        if library_id is not None:
            query = query.where(QuizAttempt.library == library_id)
        attempts = [
            {
                "case_id": attempt.case_id,
                "birads": attempt.birads,
                "call_correct": attempt.call_correct,
                "birads_correct": attempt.birads_correct,
                "descriptors_matched": attempt.descriptors_matched,
                "descriptors_graded": attempt.descriptors_graded,
                "score": attempt.score,
                "created_at": as_utc(attempt.created_at),
            }
            for attempt in session.scalars(query)
        ]
    n = len(attempts)
    return {
        "attempts": n,
        "calls_correct": sum(1 for attempt in attempts if attempt["call_correct"]),
        "mean_score": sum(attempt["score"] for attempt in attempts) / n if n else 0.0,
        "history": attempts,
    }
