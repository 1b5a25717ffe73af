"""Versioned schema of the study store: ordered migrations recorded in ``schema_version``.

Each migration is a function that takes an open connection inside a transaction and moves the
schema from version ``n - 1`` to ``n``. It describes its tables with its own
:class:`sqlalchemy.MetaData`, never with the current ORM models, so that an old database always
upgrades through the same steps. :func:`upgrade` applies the missing migrations in order, each in
its own transaction together with its ``schema_version`` row, under a lock that keeps two
processes from migrating at once.

Version 1 is the first schema: studies, cases, readers, reading sessions, assignments, reads and
events. Version 2 adds the AI result per case (``ai_p_malignant``, ``ai_model_version``,
``ai_recorded_at``) and the teaching quiz's ``quiz_attempts`` table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from mpmmu.errors import StudyStoreError

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock held while migrating (any constant unique to mpmmu).
_POSTGRES_MIGRATION_LOCK = 0x6D706D6D75


def _schema_version_table(metadata: MetaData) -> Table:
    return Table(
        "schema_version",
        metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("description", String(200), nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False),
    )


def _migration_1(connection: Connection) -> None:
    metadata = MetaData()
    Table(
        "studies",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(200), nullable=False, unique=True),
        Column("design", String(20), nullable=False),
        Column("washout_days", Integer, nullable=False),
        Column("seed", Integer, nullable=False),
        Column("manifest_path", Text, nullable=False),
        Column("manifest_sha256", String(64), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "cases",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("study_id", Integer, ForeignKey("studies.id"), nullable=False, index=True),
        Column("position", Integer, nullable=False),
        Column("case_id", String(200), nullable=False),
        Column("label", String(20), nullable=False),
        Column("mammogram_sha256", String(64)),
        Column("ultrasound_sha256", String(64)),
        Column("mammogram_roi", String(80), nullable=False),
        Column("ultrasound_roi", String(80), nullable=False),
        UniqueConstraint("study_id", "case_id"),
    )
    Table(
        "readers",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("study_id", Integer, ForeignKey("studies.id"), nullable=False, index=True),
        Column("position", Integer, nullable=False),
        Column("name", String(100), nullable=False),
        Column("code_sha256", String(64), nullable=False, unique=True),
        Column("seed", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("study_id", "name"),
    )
    Table(
        "reading_sessions",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("study_id", Integer, ForeignKey("studies.id"), nullable=False, index=True),
        Column("reader_id", Integer, ForeignKey("readers.id"), nullable=False, index=True),
        Column("number", Integer, nullable=False),
        Column("available_from", DateTime(timezone=True)),
        Column("started_at", DateTime(timezone=True)),
        Column("completed_at", DateTime(timezone=True)),
        UniqueConstraint("reader_id", "number"),
    )
    Table(
        "assignments",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("session_id", Integer, ForeignKey("reading_sessions.id"), nullable=False, index=True),
        Column("reader_id", Integer, ForeignKey("readers.id"), nullable=False, index=True),
        Column("case_pk", Integer, ForeignKey("cases.id"), nullable=False),
        Column("position", Integer, nullable=False),
        Column("condition", String(20), nullable=False),
        UniqueConstraint("session_id", "position"),
        UniqueConstraint("session_id", "case_pk"),
    )
    Table(
        "reads",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("study_id", Integer, ForeignKey("studies.id"), nullable=False, index=True),
        Column("reader_id", Integer, ForeignKey("readers.id"), nullable=False, index=True),
        Column("session_id", Integer, ForeignKey("reading_sessions.id"), nullable=False),
        Column("case_pk", Integer, ForeignKey("cases.id"), nullable=False),
        Column("mode", String(10), nullable=False),
        Column("birads", String(4), nullable=False),
        Column("probability", Integer, nullable=False),
        Column("reading_seconds", Float),
        Column("ai_p_malignant_shown", Float),
        Column("committed_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("reader_id", "case_pk", "mode"),
    )
    Table(
        "events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("study_id", Integer, ForeignKey("studies.id"), nullable=False, index=True),
        Column("reader_id", Integer, ForeignKey("readers.id"), index=True),
        Column("case_pk", Integer, ForeignKey("cases.id")),
        Column("kind", String(40), nullable=False),
        Column("mode", String(10)),
        Column("detail", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    metadata.create_all(connection)


def _migration_2(connection: Connection) -> None:
    preparer = connection.dialect.identifier_preparer
    timestamp = DateTime(timezone=True).compile(dialect=connection.dialect)
    real = Float().compile(dialect=connection.dialect)
    for column, sql_type in (
        ("ai_p_malignant", real),
        ("ai_model_version", "VARCHAR(100)"),
        ("ai_recorded_at", timestamp),
    ):
        connection.execute(text(f"ALTER TABLE cases ADD COLUMN {preparer.quote(column)} {sql_type}"))

    metadata = MetaData()
    Table(
        "quiz_attempts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("trainee", String(100), nullable=False, index=True),
        Column("library", String(64), nullable=False),
        Column("case_id", String(200), nullable=False),
        Column("birads", String(4), nullable=False),
        Column("descriptors", Text, nullable=False),
        Column("call_correct", Boolean, nullable=False),
        Column("birads_correct", Boolean),
        Column("descriptors_matched", Integer, nullable=False),
        Column("descriptors_graded", Integer, nullable=False),
        Column("score", Float, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    metadata.create_all(connection)


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it produces, what it changes, and the function that does it."""

    version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "studies, cases, readers, sessions, assignments, reads, events", _migration_1),
    Migration(2, "AI result per case and the teaching quiz table", _migration_2),
)

#: Schema version that :func:`upgrade` brings a database to by default.
CURRENT_VERSION = MIGRATIONS[-1].version


def current_version(engine: Engine) -> int:
    """Return the database's schema version, 0 when it has no ``schema_version`` table."""
    with engine.connect() as connection:
        return _read_version(connection)


def _read_version(connection: Connection) -> int:
    if not inspect(connection).has_table("schema_version"):
        return 0
    table = _schema_version_table(MetaData())
    rows = connection.execute(select(table.c.version)).scalars().all()
    return max(rows, default=0)


def _lock(connection: Connection) -> None:
    # SQLite takes its write lock with BEGIN IMMEDIATE (see mpmmu.study.store); PostgreSQL needs
    # an explicit lock because two sessions could both see version 0 and both create the tables.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK})


def upgrade(engine: Engine, target: int = CURRENT_VERSION) -> int:
    """Apply every migration above the database's version up to ``target`` and return the version.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The study database. On SQLite the engine must begin transactions with ``BEGIN
        IMMEDIATE``, which :class:`mpmmu.study.store.StudyStore` arranges.
    target : int
        Version to reach; default the current schema.

    Raises
    ------
    StudyStoreError
        When the database is newer than this mpmmu (downgrades are not supported) or ``target``
        is not a known version.
    """
    known = {migration.version for migration in MIGRATIONS}
    if target not in known:
        raise StudyStoreError(f"schema version {target} is unknown; this mpmmu knows versions {sorted(known)}")

    version_table = _schema_version_table(MetaData())
    with engine.begin() as connection:
        _lock(connection)
        version_table.create(connection, checkfirst=True)

    version = current_version(engine)
    if version > CURRENT_VERSION:
        raise StudyStoreError(
            f"the study database has schema version {version}, newer than this mpmmu "
            f"supports ({CURRENT_VERSION}); upgrade mpmmu before opening it"
        )
    for migration in MIGRATIONS:
        if migration.version > target:
            break
        with engine.begin() as connection:
            _lock(connection)
            # Another process may have applied this step since we last looked.
            if _read_version(connection) >= migration.version:
                continue
            migration.apply(connection)
            connection.execute(
                version_table.insert().values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=datetime.now(timezone.utc),
                )
            )
        logger.info("study store migrated to schema version %d (%s)", migration.version, migration.description)
        version = migration.version
    return max(version, current_version(engine))
