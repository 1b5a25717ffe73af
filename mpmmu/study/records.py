"""Frozen records that the study store returns, so callers never hold a live ORM object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mpmmu.study.design import Condition, Mode


@dataclass(frozen=True)
class StudyInfo:
    """A study's settings and size."""

    id: int
    name: str
    design: str
    washout_days: int
    seed: int
    manifest_path: str
    manifest_sha256: str
    created_at: datetime
    n_cases: int
    n_readers: int


@dataclass(frozen=True)
class CaseInfo:
    """One study case as the store keeps it: no patient identifier, only ids, hashes and boxes.

    ``label`` is the reference standard; pages that readers see must never show it.
    """

    case_id: str
    position: int
    label: str
    mammogram_sha256: str | None
    ultrasound_sha256: str | None
    mammogram_roi: tuple[int, int, int, int] | None
    ultrasound_roi: tuple[int, int, int, int] | None
    ai_p_malignant: float | None
    ai_model_version: str | None

    @property
    def truth(self) -> int:
        """1 for malignant, 0 for benign."""
        return int(self.label == "malignant")


@dataclass(frozen=True)
class ReaderInfo:
    """A reader of a study (the invitation code itself is never stored, only its hash)."""

    id: int
    study_id: int
    name: str
    position: int
    seed: int


@dataclass(frozen=True)
class ReadRecord:
    """One locked read with the names a table or an export needs."""

    id: int
    study_id: int
    reader: str
    case_id: str
    truth: int
    mode: Mode
    birads: str
    probability: int
    session: int
    reading_seconds: float | None
    ai_p_malignant_shown: float | None
    committed_at: datetime


@dataclass(frozen=True)
class Task:
    """The next read a reader has to give.

    Attributes
    ----------
    session : int
        Session number (1, or 2 after a crossover's washout).
    position : int
        1-based position of the case in this session's reading list.
    session_length : int
        Cases in this session.
    condition : {"sequential", "unaided", "aided"}
        How the case is read in this session.
    mode : {"unaided", "aided"}
        The read due now; for "sequential" the unaided read comes first.
    case : CaseInfo
    reads_done, reads_total : int
        Reads locked and reads required over all of the reader's sessions, for the progress bar.
    unaided_read : ReadRecord or None
        For the aided half of a sequential read, the reader's locked unaided read.
    """

    reader_id: int
    session: int
    position: int
    session_length: int
    condition: Condition
    mode: Mode
    case: CaseInfo
    reads_done: int
    reads_total: int
    unaided_read: ReadRecord | None = None


@dataclass(frozen=True)
class Waiting:
    """The reader has finished a session and the next opens after the washout, at ``available_from``."""

    reader_id: int
    session: int
    available_from: datetime
    reads_done: int
    reads_total: int


@dataclass(frozen=True)
class Finished:
    """The reader has locked every read of the study."""

    reader_id: int
    reads_total: int


@dataclass(frozen=True)
class ReaderProgress:
    """A reader's progress for the organiser's status table."""

    reader: str
    reads_done: int
    reads_total: int
    session: int
    next_session_opens: datetime | None
    finished: bool
