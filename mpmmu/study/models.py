"""SQLAlchemy 2 models of the reader-study store, at the current schema version.

A study contains its cases (from a case manifest), its readers and, per reader, one reading session
(sequential design) or two (crossover design). Each session lists its cases in the reader's
randomised order (:class:`Assignment`). Each rating a reader locks is a :class:`Read`. Everything
else the reader does (sign-in, case opened, AI result shown, heatmap opened) is an
:class:`Event`. Trainees' quiz answers on the teaching page are :class:`QuizAttempt` rows.

No table has a column for a patient identifier: a case is its manifest ``case_id`` and the
SHA-256 of its image files. The tables are created and upgraded by
:mod:`mpmmu.study.migrations`, never from these models' metadata, so that every database carries
a schema version.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of the study tables."""


class SchemaVersion(Base):
    """One applied migration; the highest ``version`` is the schema version of the database."""

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    description: Mapped[str] = mapped_column(String(200))
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Study(Base):
    """A reader study: its design, seed and the manifest its cases came from."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    design: Mapped[str] = mapped_column(String(20))
    washout_days: Mapped[int] = mapped_column(Integer, default=0)
    seed: Mapped[int] = mapped_column(Integer)
    manifest_path: Mapped[str] = mapped_column(Text, default="")
    manifest_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    cases: Mapped[list[StudyCase]] = relationship(back_populates="study", order_by="StudyCase.position")
    readers: Mapped[list[Reader]] = relationship(back_populates="study", order_by="Reader.position")


class StudyCase(Base):
    """One case of a study: manifest case_id, reference label, image hashes, lesion boxes, AI result."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("study_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(20))
    mammogram_sha256: Mapped[str | None] = mapped_column(String(64))
    ultrasound_sha256: Mapped[str | None] = mapped_column(String(64))
    mammogram_roi: Mapped[str] = mapped_column(String(80), default="")
    ultrasound_roi: Mapped[str] = mapped_column(String(80), default="")
    # Added by schema version 2: the AI result the aided reads showed, kept for the AI-alone AUC.
    ai_p_malignant: Mapped[float | None] = mapped_column(Float)
    ai_model_version: Mapped[str | None] = mapped_column(String(100))
    ai_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    study: Mapped[Study] = relationship(back_populates="cases")


class Reader(Base):
    """A reader invited to a study, known by a display name and the hash of an invitation code."""

    __tablename__ = "readers"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    seed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    study: Mapped[Study] = relationship(back_populates="readers")
    sessions: Mapped[list[ReadingSession]] = relationship(
        back_populates="reader", order_by="ReadingSession.number"
    )


class ReadingSession(Base):
    """One reading session of one reader; session 2 of a crossover opens after the washout."""

    __tablename__ = "reading_sessions"
    __table_args__ = (UniqueConstraint("reader_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    available_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    reader: Mapped[Reader] = relationship(back_populates="sessions")
    assignments: Mapped[list[Assignment]] = relationship(order_by="Assignment.position")


class Assignment(Base):
    """A case in a session's reading list, at its randomised position, with its reading condition.

    ``condition`` is "sequential" (unaided read, then aided read of the same case), "unaided" or
    "aided" (one read, crossover design).
    """

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("session_id", "position"),
        UniqueConstraint("session_id", "case_pk"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("reading_sessions.id"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    position: Mapped[int] = mapped_column(Integer)
    condition: Mapped[str] = mapped_column(String(20))


class Read(Base):
    """One locked rating: a reader's BI-RADS category and probability of malignancy for one case.

    A reader rates each case once per mode ("unaided" or "aided"). The unique constraint rejects
    a second read of the same case and mode, so a locked read cannot be overwritten.
    """

    __tablename__ = "reads"
    __table_args__ = (UniqueConstraint("reader_id", "case_pk", "mode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("reading_sessions.id"))
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    mode: Mapped[str] = mapped_column(String(10))
    birads: Mapped[str] = mapped_column(String(4))
    probability: Mapped[int] = mapped_column(Integer)
    reading_seconds: Mapped[float | None] = mapped_column(Float)
    ai_p_malignant_shown: Mapped[float | None] = mapped_column(Float)
    committed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Event(Base):
    """Something a reader or the organiser did, with a JSON ``detail`` (never a patient identifier)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    reader_id: Mapped[int | None] = mapped_column(ForeignKey("readers.id"), index=True)
    case_pk: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str | None] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuizAttempt(Base):
    """One teaching-quiz answer of a trainee and its score (added by schema version 2)."""

    __tablename__ = "quiz_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trainee: Mapped[str] = mapped_column(String(100), index=True)
    library: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str] = mapped_column(String(200))
    birads: Mapped[str] = mapped_column(String(4))
    descriptors: Mapped[str] = mapped_column(Text, default="{}")
    call_correct: Mapped[bool] = mapped_column(Boolean)
    birads_correct: Mapped[bool | None] = mapped_column(Boolean)
    descriptors_matched: Mapped[int] = mapped_column(Integer, default=0)
    descriptors_graded: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
