"""The reader-study store: studies, readers, reading sessions, reads and events in one database.

The database is a SQLite file by default (``MPMMU_STUDY_DB``, else
``<cache_root>/study/studies.sqlite3``) or any SQLAlchemy URL, PostgreSQL included
(``postgresql+psycopg://user@host/db``). Every public method runs in its own transaction, so a read
is durable once :meth:`StudyStore.record_read` returns. On SQLite the store uses WAL mode with
``synchronous=FULL`` and begins every transaction with ``BEGIN IMMEDIATE``, so that concurrent
writers queue on the busy timeout instead of failing with "database is locked".

The store never receives a patient identifier: cases are stored by manifest ``case_id``, reference
label, lesion boxes and the SHA-256 of their image files. The manifest's ``patient_id`` column is
not copied.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mpmmu.data.manifest import CaseRow, format_roi
from mpmmu.errors import StudyStoreError
from mpmmu.study import migrations
from mpmmu.study.database import (
    STUDY_DB_ENV,
    as_url,
    as_utc,
    build_engine,
    case_info,
    default_url,
    file_sha256,
    hash_code,
    new_code,
    reader_info,
    study_info,
    utc_now,
)
from mpmmu.study.design import (
    MODES,
    birads_rank,
    check_design,
    check_probability,
    modes_for,
    plan_reader,
    reader_seed,
)
from mpmmu.study.models import (
    Assignment,
    Event,
    Read,
    Reader,
    ReadingSession,
    Study,
    StudyCase,
)
from mpmmu.study.records import (
    CaseInfo,
    Finished,
    ReaderInfo,
    ReaderProgress,
    ReadRecord,
    StudyInfo,
    Task,
    Waiting,
)

logger = logging.getLogger(__name__)


def _check_reader_name(name: str) -> str:
    cleaned = str(name).strip()
    if not cleaned or len(cleaned) > 100 or any(char in cleaned for char in ",\r\n") or cleaned == "-1":
        raise StudyStoreError(
            f"reader name {name!r} is invalid; use 1-100 characters without commas or line breaks "
            "(and not '-1', which iMRMC reserves)"
        )
    return cleaned


class StudyStore:
    """The reader-study database.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL or a SQLite file path; default :func:`default_url`.
    clock : callable, optional
        Returns the current time as an aware UTC datetime; tests replace it to pass a washout.
    migrate : bool
        Bring the schema to the current version on open (default). With False the database must
        already be current.

    Raises
    ------
    StudyStoreError
        When the database cannot be reached or its schema is newer than this mpmmu.
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        migrate: bool = True,
    ) -> None:
        self.url = as_url(url) if url is not None else default_url()
        self.clock = clock or utc_now
        self.engine = build_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        try:
            if migrate:
                self.schema_version = migrations.upgrade(self.engine)
            else:
                self.schema_version = migrations.current_version(self.engine)
        except StudyStoreError:
            self.engine.dispose()
            raise
        except OperationalError as error:
            self.engine.dispose()
            raise StudyStoreError(
                f"the study database {self.engine.url.render_as_string(hide_password=True)} could not be "
                f"opened: {error.orig}; check {STUDY_DB_ENV} and that the server is running"
            ) from error
        if self.schema_version != migrations.CURRENT_VERSION:
            raise StudyStoreError(
                f"the study database has schema version {self.schema_version}, expected "
                f"{migrations.CURRENT_VERSION}; open it with migrate=True to upgrade it"
            )
        logger.info(
            "study store open at %s (schema version %d)",
            self.engine.url.render_as_string(hide_password=True),
            self.schema_version,
        )

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> StudyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Open an ORM session inside one transaction, committed when the block ends without error."""
        with self._sessions() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ studies

    def create_study(
        self,
        name: str,
        rows: Sequence[CaseRow],
        *,
        design: str = "sequential",
        readers: int | Sequence[str] = 3,
        seed: int = 0,
        washout_days: int = 0,
        manifest_path: str | os.PathLike[str] | None = None,
        manifest_sha256: str = "",
        image_hashes: Mapping[str, tuple[str | None, str | None]] | None = None,
    ) -> tuple[StudyInfo, dict[str, str]]:
        """Create a study from manifest rows, draw each reader's order and issue invitation codes.

        Parameters
        ----------
        name : str
            Unique study name.
        rows : sequence of CaseRow
            The cases; each needs a reference label. Only case_id, label, the lesion boxes and
            the image hashes are stored, never patient_id.
        design : {"sequential", "crossover"}
        readers : int or sequence of str
            Number of readers (named R1, R2, ...) or their names.
        seed : int
            Study seed; reader k's order uses :func:`mpmmu.study.design.reader_seed`.
        washout_days : int
            Days between a crossover's sessions; 0 for a sequential study.
        manifest_path, manifest_sha256 : optional
            Where the cases came from, so pages can find the images again.
        image_hashes : mapping of case_id to (mammogram_sha256, ultrasound_sha256), optional
            Default: hash the files the rows point to.

        Returns
        -------
        StudyInfo
        dict of str to str
            Each reader's invitation code. Only their hashes are stored, so keep this output.

        Raises
        ------
        StudyStoreError
            On a duplicate study name, an unknown design, a seed outside [0, 2**31), a case
            without a label, duplicate case ids or ids with a comma, a study without both benign
            and malignant cases, or invalid reader names.
        """
        check_design(design, washout_days)
        name = str(name).strip()
        if not name:
            raise StudyStoreError("the study name is empty; give the study a name")
        rows = list(rows)
        if not rows:
            raise StudyStoreError("the manifest has no cases; a study needs at least one benign and one malignant case")
        if not 0 <= int(seed) < 2**31:
            raise StudyStoreError(f"seed {seed} is invalid; use an integer from 0 to 2147483647")
        case_ids = [row.case_id for row in rows]
        unreadable = [case_id for case_id in case_ids if any(char in case_id for char in ",\r\n")]
        if unreadable:
            raise StudyStoreError(
                f"case id {unreadable[0]!r} contains a comma or line break, which the iMRMC export "
                "cannot write; rename the case in the manifest"
            )
        duplicates = sorted({case_id for case_id in case_ids if case_ids.count(case_id) > 1})
        if duplicates:
            raise StudyStoreError(f"case ids must be unique in a study, repeated: {duplicates[:5]}")
        unlabelled = [row.case_id for row in rows if row.label not in ("benign", "malignant")]
        if unlabelled:
            raise StudyStoreError(
                f"{len(unlabelled)} cases have no reference label (first: {unlabelled[0]!r}); "
                "a reader study needs benign or malignant for every case"
            )
        if {row.label for row in rows} != {"benign", "malignant"}:
            raise StudyStoreError(
                "the cases are all of one class; a reader study needs benign and malignant cases for ROC analysis"
            )
        if isinstance(readers, int):
            if readers < 1:
                raise StudyStoreError(f"number of readers {readers} is invalid; invite at least 1")
            reader_names = [f"R{k + 1}" for k in range(readers)]
        else:
            reader_names = [_check_reader_name(reader) for reader in readers]
            if not reader_names or len(set(reader_names)) != len(reader_names):
                raise StudyStoreError(f"reader names must be given and unique, got {list(readers)}")

        hashes = dict(image_hashes or {})
        for row in rows:
            if row.case_id not in hashes:
                hashes[row.case_id] = (
                    file_sha256(row.mammogram_path) if row.mammogram_path is not None else None,
                    file_sha256(row.ultrasound_path) if row.ultrasound_path is not None else None,
                )

        now = self.clock()
        codes: dict[str, str] = {}
        try:
            with self.transaction() as session:
                study = Study(
                    name=name,
                    design=design,
                    washout_days=int(washout_days),
                    seed=int(seed),
                    manifest_path=os.fspath(manifest_path) if manifest_path is not None else "",
                    manifest_sha256=manifest_sha256,
                    created_at=now,
                )
                session.add(study)
                session.flush()
                cases = {}
                for position, row in enumerate(rows):
                    mammogram_hash, ultrasound_hash = hashes[row.case_id]
                    case = StudyCase(
                        study_id=study.id,
                        position=position,
                        case_id=row.case_id,
                        label=row.label,
                        mammogram_sha256=mammogram_hash,
                        ultrasound_sha256=ultrasound_hash,
                        mammogram_roi=format_roi(row.mammogram_roi),
                        ultrasound_roi=format_roi(row.ultrasound_roi),
                    )
                    session.add(case)
                    cases[row.case_id] = case
                session.flush()
                for position, reader_name in enumerate(reader_names):
                    code = new_code()
                    codes[reader_name] = code
                    self._add_reader(session, study, reader_name, position, code, case_ids, cases, now)
                session.add(
                    Event(
                        study_id=study.id,
                        kind="study_created",
                        detail=json.dumps({"design": design, "seed": seed, "readers": len(reader_names)}),
                        created_at=now,
                    )
                )
                session.flush()
                info = study_info(session, study)
        except IntegrityError as error:
            raise StudyStoreError(f"a study named {name!r} already exists; choose another name") from error
        logger.info(
            "created study %d %r: %s design, %d cases, %d readers, seed %d",
            info.id,
            name,
            design,
            len(rows),
            len(reader_names),
            seed,
        )
        return info, codes

    def _add_reader(
        self,
        session: Session,
        study: Study,
        name: str,
        position: int,
        code: str,
        case_ids: Sequence[str],
        cases: Mapping[str, StudyCase],
        now: datetime,
    ) -> Reader:
        seed = reader_seed(study.seed, position)
        reader = Reader(
            study_id=study.id,
            position=position,
            name=name,
            code_sha256=hash_code(code),
            seed=seed,
            created_at=now,
        )
        session.add(reader)
        session.flush()
        for plan in plan_reader(case_ids, study.design, seed):
            reading_session = ReadingSession(
                study_id=study.id,
                reader_id=reader.id,
                number=plan.number,
                available_from=now if plan.number == 1 else None,
            )
            session.add(reading_session)
            session.flush()
            for position_in_session, (case_id, condition) in enumerate(plan.items, start=1):
                session.add(
                    Assignment(
                        session_id=reading_session.id,
                        reader_id=reader.id,
                        case_pk=cases[case_id].id,
                        position=position_in_session,
                        condition=condition,
                    )
                )
        return reader

    def add_reader(self, study_id: int, name: str) -> tuple[ReaderInfo, str]:
        """Invite one more reader to a study and return the reader and their invitation code."""
        name = _check_reader_name(name)
        code = new_code()
        now = self.clock()
        try:
            with self.transaction() as session:
                study = self._study(session, study_id)
                position = session.scalar(select(func.count()).where(Reader.study_id == study.id)) or 0
                cases = {case.case_id: case for case in study.cases}
                reader = self._add_reader(session, study, name, int(position), code, list(cases), cases, now)
                info = reader_info(reader)
        except IntegrityError as error:
            raise StudyStoreError(f"study {study_id} already has a reader named {name!r}") from error
        return info, code

    def reissue_codes(self, study_id: int, names: Sequence[str] | None = None) -> dict[str, str]:
        """Replace the invitation codes of the named readers (default all) and return the new codes."""
        codes: dict[str, str] = {}
        with self.transaction() as session:
            study = self._study(session, study_id)
            chosen = {reader.name: reader for reader in study.readers}
            unknown = sorted(set(names or ()) - set(chosen))
            if unknown:
                raise StudyStoreError(f"study {study_id} has no reader named {unknown}; readers: {sorted(chosen)}")
            for reader in study.readers:
                if names and reader.name not in names:
                    continue
                code = new_code()
                reader.code_sha256 = hash_code(code)
                codes[reader.name] = code
                session.add(
                    Event(study_id=study.id, reader_id=reader.id, kind="code_reissued", detail="{}", created_at=self.clock())
                )
        return codes

    @staticmethod
    def _study(session: Session, study: int | str) -> Study:
        if isinstance(study, str) and not study.isdigit():
            found = session.scalar(select(Study).where(Study.name == study))
        else:
            found = session.get(Study, int(study))
        if found is None:
            raise StudyStoreError(f"study {study!r} not found; list the studies with `mpmmu study status`")
        return found

    def study(self, study: int | str) -> StudyInfo:
        """Return a study by id or name."""
        with self.transaction() as session:
            return study_info(session, self._study(session, study))

    def studies(self) -> list[StudyInfo]:
        """Return every study, oldest first."""
        with self.transaction() as session:
            return [study_info(session, study) for study in session.scalars(select(Study).order_by(Study.id))]

    def cases(self, study_id: int) -> list[CaseInfo]:
        """Return a study's cases in manifest order, with reference labels (organiser use only)."""
        with self.transaction() as session:
            return [case_info(case) for case in self._study(session, study_id).cases]

    def readers(self, study_id: int) -> list[ReaderInfo]:
        """Return a study's readers in invitation order."""
        with self.transaction() as session:
            return [reader_info(reader) for reader in self._study(session, study_id).readers]

    def reading_order(self, reader_id: int) -> dict[int, list[tuple[str, str]]]:
        """Return a reader's recorded order: session number to (case_id, condition) in reading order."""
        with self.transaction() as session:
            rows = session.execute(
                select(ReadingSession.number, StudyCase.case_id, Assignment.condition)
                .join(Assignment, Assignment.session_id == ReadingSession.id)
                .join(StudyCase, StudyCase.id == Assignment.case_pk)
                .where(ReadingSession.reader_id == reader_id)
                .order_by(ReadingSession.number, Assignment.position)
            ).all()
        order: dict[int, list[tuple[str, str]]] = {}
        for number, case_id, condition in rows:
            order.setdefault(number, []).append((case_id, condition))
        return order

    # ------------------------------------------------------------------ AI results

    def record_ai_result(self, study_id: int, case_id: str, p_malignant: float, model_version: str) -> CaseInfo:
        """Store the AI probability of a case, unless one is already stored.

        The first result stays, because it is the one aided readers saw; a later result from
        another model version is logged and ignored.
        """
        if not 0.0 <= float(p_malignant) <= 1.0:
            raise StudyStoreError(f"AI probability {p_malignant!r} for case {case_id!r} must lie in [0, 1]")
        with self.transaction() as session:
            case = self._case(session, study_id, case_id)
            if case.ai_p_malignant is None:
                case.ai_p_malignant = float(p_malignant)
                case.ai_model_version = str(model_version)
                case.ai_recorded_at = self.clock()
            elif case.ai_model_version != model_version:
                logger.warning(
                    "case %s of study %d keeps its AI result from model %s; ignored the one from %s",
                    case_id,
                    study_id,
                    case.ai_model_version,
                    model_version,
                )
            return case_info(case)

    @staticmethod
    def _case(session: Session, study_id: int, case_id: str) -> StudyCase:
        case = session.scalar(select(StudyCase).where(StudyCase.study_id == study_id, StudyCase.case_id == case_id))
        if case is None:
            raise StudyStoreError(f"study {study_id} has no case {case_id!r}")
        return case

    # ------------------------------------------------------------------ readers

    def sign_in(self, code: str) -> ReaderInfo:
        """Return the reader an invitation code belongs to and log the sign-in.

        Raises
        ------
        StudyStoreError
            When no reader has this code.
        """
        with self.transaction() as session:
            reader = session.scalar(select(Reader).where(Reader.code_sha256 == hash_code(code)))
            if reader is None:
                raise StudyStoreError("the invitation code is not valid; check it or ask the study organiser for a new one")
            session.add(Event(study_id=reader.study_id, reader_id=reader.id, kind="sign_in", detail="{}", created_at=self.clock()))
            return reader_info(reader)

    def next_task(self, reader_id: int) -> Task | Waiting | Finished:
        """Return the read due next for a reader, where they stopped.

        Completes a session whose reads are all locked and opens the next one after the study's
        washout, counted from that moment.
        """
        now = self.clock()
        with self.transaction() as session:
            reader = session.get(Reader, reader_id)
            if reader is None:
                raise StudyStoreError(f"reader {reader_id} not found")
            study = session.get(Study, reader.study_id)
            done_reads = {
                (read.case_pk, read.mode): read
                for read in session.scalars(select(Read).where(Read.reader_id == reader_id))
            }
            sessions = list(reader.sessions)
            reads_total = sum(len(modes_for(item.condition)) for s in sessions for item in s.assignments)
            reads_done = len(done_reads)
            for index, reading_session in enumerate(sessions):
                pending = [
                    (item, mode)
                    for item in reading_session.assignments
                    for mode in modes_for(item.condition)
                    if (item.case_pk, mode) not in done_reads
                ]
                if not pending:
                    self._complete_session(session, study, reading_session, sessions[index + 1 :], now)
                    continue
                available_from = as_utc(reading_session.available_from)
                if available_from is None or available_from > now:
                    return Waiting(reader_id, reading_session.number, available_from or now, reads_done, reads_total)
                item, mode = pending[0]
                case = session.get(StudyCase, item.case_pk)
                unaided = done_reads.get((item.case_pk, "unaided")) if mode == "aided" and item.condition == "sequential" else None
                return Task(
                    reader_id=reader_id,
                    session=reading_session.number,
                    position=item.position,
                    session_length=len(reading_session.assignments),
                    condition=item.condition,
                    mode=mode,
                    case=case_info(case),
                    reads_done=reads_done,
                    reads_total=reads_total,
                    unaided_read=self._read_record(session, unaided) if unaided is not None else None,
                )
            return Finished(reader_id, reads_total)

    @staticmethod
    def _complete_session(
        session: Session, study: Study, reading_session: ReadingSession, later: Sequence[ReadingSession], now: datetime
    ) -> None:
        if reading_session.completed_at is not None:
            return
        reading_session.completed_at = now
        if later and later[0].available_from is None:
            later[0].available_from = now + timedelta(days=study.washout_days)
        session.add(
            Event(
                study_id=study.id,
                reader_id=reading_session.reader_id,
                kind="session_completed",
                detail=json.dumps({"session": reading_session.number}),
                created_at=now,
            )
        )

    def log_event(
        self,
        reader_id: int,
        kind: str,
        *,
        case_id: str | None = None,
        mode: str | None = None,
        detail: Mapping[str, Any] | None = None,
        once: bool = False,
    ) -> bool:
        """Record something a reader did, for example ``case_opened`` or ``heatmap_opened``.

        Parameters
        ----------
        once : bool
            Record it only if the same reader, kind, case and mode have no event yet (used for
            ``case_opened``, whose first time starts the reading clock).

        Returns
        -------
        bool
            Whether an event was written.
        """
        with self.transaction() as session:
            reader = session.get(Reader, reader_id)
            if reader is None:
                raise StudyStoreError(f"reader {reader_id} not found")
            case_pk = self._case(session, reader.study_id, case_id).id if case_id is not None else None
            if once:
                existing = session.scalar(
                    select(Event.id).where(
                        Event.reader_id == reader_id,
                        Event.kind == kind,
                        Event.case_pk == case_pk,
                        (Event.mode == mode) if mode is not None else Event.mode.is_(None),
                    )
                )
                if existing is not None:
                    return False
            session.add(
                Event(
                    study_id=reader.study_id,
                    reader_id=reader_id,
                    case_pk=case_pk,
                    kind=kind,
                    mode=mode,
                    detail=json.dumps(dict(detail or {}), sort_keys=True),
                    created_at=self.clock(),
                )
            )
            return True

    def record_read(
        self,
        reader_id: int,
        case_id: str,
        mode: str,
        birads: str,
        probability: int,
        *,
        reading_seconds: float | None = None,
        enforce_schedule: bool = True,
    ) -> ReadRecord:
        """Lock one read in its own transaction and return it.

        Parameters
        ----------
        reader_id : int
        case_id : str
        mode : {"unaided", "aided"}
        birads : str
            One of :data:`mpmmu.study.design.BIRADS_CATEGORIES`.
        probability : int
            Probability of malignancy, whole percent 0-100.
        reading_seconds : float, optional
            Default: seconds since the reader first opened this case in this mode
            (``case_opened`` event), or None when it was never opened.
        enforce_schedule : bool
            Reject a read whose session is not open yet (default). Imports of reads collected
            elsewhere pass False, because their washout happened outside the store.

        Raises
        ------
        StudyStoreError
            When the rating is invalid, the case is not on the reader's list in this mode, its
            session is not open yet, a sequential aided read comes before the unaided one, or the
            read is already locked.
        """
        if mode not in MODES:
            raise StudyStoreError(f"read mode {mode!r} is invalid; use 'unaided' or 'aided'")
        birads_rank(birads)
        birads = str(birads).strip().upper()
        probability = check_probability(probability)
        now = self.clock()
        reader_label = f"reader {reader_id}"
        try:
            with self.transaction() as session:
                reader = session.get(Reader, reader_id)
                if reader is None:
                    raise StudyStoreError(f"reader {reader_id} not found")
                reader_label = f"reader {reader.name!r}"
                case = self._case(session, reader.study_id, case_id)
                assignment, reading_session = self._assignment(session, reader, case, mode)
                available_from = as_utc(reading_session.available_from)
                if enforce_schedule and (available_from is None or available_from > now):
                    raise StudyStoreError(
                        f"session {reading_session.number} of reader {reader.name!r} is not open yet"
                        + (f"; it opens {available_from:%Y-%m-%d %H:%M} UTC" if available_from else "")
                    )
                if mode == "aided" and assignment.condition == "sequential":
                    unaided = session.scalar(
                        select(Read.id).where(Read.reader_id == reader_id, Read.case_pk == case.id, Read.mode == "unaided")
                    )
                    if unaided is None:
                        raise StudyStoreError(
                            f"case {case_id!r}: lock the unaided read before the aided read of a sequential study"
                        )
                if reading_seconds is None:
                    opened = session.scalar(
                        select(func.min(Event.created_at)).where(
                            Event.reader_id == reader_id,
                            Event.case_pk == case.id,
                            Event.kind == "case_opened",
                            Event.mode == mode,
                        )
                    )
                    if opened is not None:
                        reading_seconds = max(0.0, (now - as_utc(opened)).total_seconds())
                if reading_session.started_at is None:
                    reading_session.started_at = now
                read = Read(
                    study_id=reader.study_id,
                    reader_id=reader_id,
                    session_id=reading_session.id,
                    case_pk=case.id,
                    mode=mode,
                    birads=birads,
                    probability=probability,
                    reading_seconds=None if reading_seconds is None else float(reading_seconds),
                    ai_p_malignant_shown=case.ai_p_malignant if mode == "aided" else None,
                    committed_at=now,
                )
                session.add(read)
                session.flush()
                record = self._read_record(session, read)
        except IntegrityError as error:
            raise StudyStoreError(
                f"{reader_label} has already locked the {mode} read of case {case_id!r}; a locked read cannot change"
            ) from error
        logger.debug("reader %d locked the %s read of case %s", reader_id, mode, case_id)
        return record

    @staticmethod
    def _assignment(session: Session, reader: Reader, case: StudyCase, mode: str) -> tuple[Assignment, ReadingSession]:
        rows = session.execute(
            select(Assignment, ReadingSession)
            .join(ReadingSession, ReadingSession.id == Assignment.session_id)
            .where(Assignment.reader_id == reader.id, Assignment.case_pk == case.id)
        ).all()
        for assignment, reading_session in rows:
            if mode in modes_for(assignment.condition):
                return assignment, reading_session
        raise StudyStoreError(f"case {case.case_id!r} is not on the reading list of reader {reader.name!r} for an {mode} read")

    @staticmethod
    def _read_record(session: Session, read: Read) -> ReadRecord:
        reader = session.get(Reader, read.reader_id)
        case = session.get(StudyCase, read.case_pk)
        number = session.scalar(select(ReadingSession.number).where(ReadingSession.id == read.session_id))
        return ReadRecord(
            id=read.id,
            study_id=read.study_id,
            reader=reader.name,
            case_id=case.case_id,
            truth=int(case.label == "malignant"),
            mode=read.mode,
            birads=read.birads,
            probability=read.probability,
            session=int(number),
            reading_seconds=read.reading_seconds,
            ai_p_malignant_shown=read.ai_p_malignant_shown,
            committed_at=as_utc(read.committed_at),
        )

    # ------------------------------------------------------------------ results

    def reads(self, study_id: int) -> list[ReadRecord]:
        """Return every locked read of a study, by reader, then case, then mode."""
        with self.transaction() as session:
            study = self._study(session, study_id)
            rows = session.execute(
                select(Read, Reader.name, StudyCase.case_id, StudyCase.label, ReadingSession.number)
                .join(Reader, Reader.id == Read.reader_id)
                .join(StudyCase, StudyCase.id == Read.case_pk)
                .join(ReadingSession, ReadingSession.id == Read.session_id)
                .where(Read.study_id == study.id)
                .order_by(Reader.position, StudyCase.position, Read.mode.desc())
            ).all()
        return [
            ReadRecord(
                id=read.id,
                study_id=read.study_id,
                reader=reader_name,
                case_id=case_id,
                truth=int(label == "malignant"),
                mode=read.mode,
                birads=read.birads,
                probability=read.probability,
                session=int(number),
                reading_seconds=read.reading_seconds,
                ai_p_malignant_shown=read.ai_p_malignant_shown,
                committed_at=as_utc(read.committed_at),
            )
            for read, reader_name, case_id, label, number in rows
        ]

    def events(self, study_id: int, kind: str | None = None) -> list[dict[str, Any]]:
        """Return a study's events as dicts (reader name, case_id, kind, mode, detail, created_at)."""
        with self.transaction() as session:
            query = (
                select(Event, Reader.name, StudyCase.case_id)
                .outerjoin(Reader, Reader.id == Event.reader_id)
                .outerjoin(StudyCase, StudyCase.id == Event.case_pk)
                .where(Event.study_id == study_id)
                .order_by(Event.id)
            )
            if kind is not None:
                query = query.where(Event.kind == kind)
            rows = session.execute(query).all()
        return [
            {
                "reader": reader_name,
                "case_id": case_id,
                "kind": item.kind,
                "mode": item.mode,
                "detail": json.loads(item.detail or "{}"),
                "created_at": as_utc(item.created_at),
            }
            for item, reader_name, case_id in rows
        ]

    def progress(self, study_id: int) -> list[ReaderProgress]:
        """Return each reader's progress (reads locked of reads required, current session)."""
        readers = self.readers(study_id)
        table = []
        for reader in readers:
            state = self.next_task(reader.id)
            if isinstance(state, Finished):
                table.append(ReaderProgress(reader.name, state.reads_total, state.reads_total, 0, None, True))
            elif isinstance(state, Waiting):
                table.append(
                    ReaderProgress(reader.name, state.reads_done, state.reads_total, state.session, state.available_from, False)
                )
            else:
                table.append(ReaderProgress(reader.name, state.reads_done, state.reads_total, state.session, None, False))
        return table
