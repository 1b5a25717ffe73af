"""The study database's engine, URLs, invitation codes and the conversion of rows to records.

SQLite engines use WAL mode with ``synchronous=FULL``, so a committed read survives a crash of
the process and of the machine. They begin every transaction with ``BEGIN IMMEDIATE``, so
concurrent writers wait up to the busy timeout for the write lock. Without it, a transaction that
upgrades from reading to writing fails at once with "database is locked".
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from mpmmu.config import cache_root
from mpmmu.data.manifest import parse_roi
from mpmmu.study.models import Reader, Study, StudyCase
from mpmmu.study.records import CaseInfo, ReaderInfo, StudyInfo

#: Environment variable holding the SQLAlchemy URL of the study database.
STUDY_DB_ENV = "MPMMU_STUDY_DB"

# Invitation codes: 12 characters from an alphabet without 0/O, 1/I/L (about 59 bits).
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 12

# Seconds a SQLite connection waits for another writer's lock before it gives up.
_SQLITE_BUSY_TIMEOUT_S = 60


def default_url() -> str:
    """Return the study database URL: ``MPMMU_STUDY_DB``, else a SQLite file under the cache root."""
    configured = os.environ.get(STUDY_DB_ENV, "").strip()
    if configured:
        return configured
    return f"sqlite:///{cache_root() / 'study' / 'studies.sqlite3'}"


def as_url(location: str | os.PathLike[str]) -> str:
    """Return ``location`` as an SQLAlchemy URL; a plain file path becomes a SQLite URL."""
    text = os.fspath(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file's bytes, the same hash as :attr:`ImageRecord.sha256`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_code(code: str) -> str:
    """Return the SHA-256 of an invitation code after removing dashes and spaces and upper-casing it."""
    normalised = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(normalised.encode("ascii", errors="replace")).hexdigest()


def new_code() -> str:
    """Draw a new invitation code, printed in groups of four (``ABCD-EFGH-JKMN``)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[k : k + 4] for k in range(0, _CODE_LENGTH, 4))


def as_utc(value: datetime | None) -> datetime | None:
    """Return a stored timestamp as an aware UTC datetime (SQLite returns naive ones, written in UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def build_engine(url: str) -> Engine:
    """Create the engine for ``url``, with the SQLite settings above when it is a SQLite URL."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)

    memory = url in ("sqlite://", "sqlite:///:memory:")
    if memory:
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        database = url.split("///", 1)[-1]
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN instead of the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a transaction waits for another writer
        # (up to the busy timeout) instead of failing when it upgrades from reading to writing.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def case_info(case: StudyCase) -> CaseInfo:
    """Convert a case row to its record."""
    return CaseInfo(
        case_id=case.case_id,
        position=case.position,
        label=case.label,
        mammogram_sha256=case.mammogram_sha256,
        ultrasound_sha256=case.ultrasound_sha256,
        mammogram_roi=parse_roi(case.mammogram_roi or ""),
        ultrasound_roi=parse_roi(case.ultrasound_roi or ""),
        ai_p_malignant=case.ai_p_malignant,
        ai_model_version=case.ai_model_version,
    )


def study_info(session: Session, study: Study) -> StudyInfo:
    """Convert a study row to its record, counting its cases and readers."""
    n_cases = session.scalar(select(func.count()).where(StudyCase.study_id == study.id)) or 0
    n_readers = session.scalar(select(func.count()).where(Reader.study_id == study.id)) or 0
    return StudyInfo(
        id=study.id,
        name=study.name,
        design=study.design,
        washout_days=study.washout_days,
        seed=study.seed,
        manifest_path=study.manifest_path,
        manifest_sha256=study.manifest_sha256,
        created_at=as_utc(study.created_at),
        n_cases=int(n_cases),
        n_readers=int(n_readers),
    )


def reader_info(reader: Reader) -> ReaderInfo:
    """Convert a reader row to its record."""
    return ReaderInfo(reader.id, reader.study_id, reader.name, reader.position, reader.seed)
