"""Move a study's data in and out of the store: exports for iMRMC and RJafroc, reads and AI results.

Exports contain reader names, case ids, reference truth and ratings, never a patient identifier,
because the store holds none.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mpmmu.data.manifest import CaseRow
from mpmmu.errors import StudyStoreError
from mpmmu.metrics import write_imrmc, write_rjafroc_csv
from mpmmu.study.analysis import Rating, mrmc_data
from mpmmu.study.design import MODES, birads_rank, check_probability, modes_for
from mpmmu.study.store import StudyStore

logger = logging.getLogger(__name__)

ExportFormat = Literal["imrmc", "rjafroc", "reads"]

#: Columns of the reads CSV that :func:`export_reads_csv` writes and :func:`import_reads_csv` reads.
READS_COLUMNS = ("reader", "case_id", "mode", "birads", "probability", "reading_seconds", "session", "truth", "ai_p_malignant_shown", "committed_at")


def export_study(
    store: StudyStore,
    study: int | str,
    path: str | os.PathLike[str],
    export_format: ExportFormat,
    *,
    rating: Rating = "probability",
) -> Path:
    """Write a study's reads in one format and return the file written.

    Parameters
    ----------
    export_format : {"imrmc", "rjafroc", "reads"}
        "imrmc": the iMRMC input file (truth rows, then reader,case,modality,rating rows).
        "rjafroc": a CSV that RJafroc's ``DfReadDataFile(path, format = "MRMC")`` reads.
        "reads": every locked read with BI-RADS, probability, session and reading time.
    rating : {"probability", "birads"}
        The rating written for "imrmc" and "rjafroc".

    Raises
    ------
    MrmcDataError
        For "imrmc" and "rjafroc" when the reads are incomplete.
    """
    info = store.study(study)
    path = Path(path)
    reads = store.reads(info.id)
    if export_format == "reads":
        export_reads_csv(reads, path)
    elif export_format == "imrmc":
        data = mrmc_data(reads, rating)
        _warn_missing_reads(store, info, reads, data, export_format)
        write_imrmc(data, path, title=f"mpmmu reader study {info.name} ({rating})")
    elif export_format == "rjafroc":
        data = mrmc_data(reads, rating)
        _warn_missing_reads(store, info, reads, data, export_format)
        numbers = write_rjafroc_csv(data, path)
        if any(str(number) != case_id for case_id, number in numbers.items()):
            key_path = path.with_name(path.stem + "-case-numbers.csv")
            with key_path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["case_id", "case"])
                writer.writerows(numbers.items())
            logger.info("RJafroc needs numeric cases; wrote the case number key to %s", key_path)
    else:
        raise StudyStoreError(f"export format {export_format!r} is unknown; use 'imrmc', 'rjafroc' or 'reads'")
    logger.info("exported study %d as %s to %s", info.id, export_format, path)
    return path


def _warn_missing_reads(store: StudyStore, info: Any, reads: Sequence[Any], data: Any, export_format: str) -> None:
    """Log a warning when the study is not fully read, so the export leaves cases out."""
    n_readers = len(store.readers(info.id))
    expected = 2 * info.n_cases * n_readers
    missing = expected - len(reads)
    if missing <= 0:
        return
    logger.warning(
        "study %r is not fully read: %d of %d reads are missing, so the %s export covers only %d of %d readers "
        "and %d of %d cases; see `mpmmu study status --study %s`",
        info.name,
        missing,
        expected,
        export_format,
        len(data.readers),
        n_readers,
        len(data.case_ids),
        info.n_cases,
        info.name,
    )


def export_reads_csv(reads: Sequence[Any], path: str | os.PathLike[str]) -> Path:
    """Write locked reads as CSV with :data:`READS_COLUMNS` and return the path."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(READS_COLUMNS)
        for read in reads:
            writer.writerow(
                [
                    read.reader,
                    read.case_id,
                    read.mode,
                    read.birads,
                    read.probability,
                    "" if read.reading_seconds is None else f"{read.reading_seconds:.3f}",
                    read.session,
                    read.truth,
                    "" if read.ai_p_malignant_shown is None else f"{read.ai_p_malignant_shown:.6f}",
                    read.committed_at.isoformat(),
                ]
            )
    return path


#: Columns that :func:`import_reads_csv` requires; reading_seconds is optional and other columns are ignored.
IMPORT_COLUMNS = ("reader", "case_id", "mode", "birads", "probability")

#: Maximum number of invalid rows that one import error message lists; it also gives the total count.
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class ReadsImport:
    """Outcome of :func:`import_reads_csv`: reads locked now and rows skipped as already locked."""

    added: int
    skipped: int


@dataclass(frozen=True)
class _PlannedRead:
    line: int
    reader: str
    reader_id: int
    case_id: str
    mode: str
    birads: str
    probability: int
    reading_seconds: float | None


def import_reads_csv(store: StudyStore, study: int | str, path: str | os.PathLike[str]) -> ReadsImport:
    """Lock reads collected outside the app (for example on paper), all or nothing.

    The CSV needs the columns reader, case_id, mode, birads and probability; reading_seconds is
    optional. Every row is checked before any read is written. The checks: the reader and case
    exist, the case is on that reader's list in that mode, the ratings are valid, and no read
    appears twice. In a sequential study an aided read also needs its unaided read, locked
    already or in the same file.
    A row identical to a read already locked (same reader, case, mode, BI-RADS and probability)
    is skipped, so importing the same file again is a no-op. Unaided reads are locked before
    aided ones. The washout between crossover sessions is not checked, because the reads
    happened before the import.

    Raises
    ------
    StudyStoreError
        On a missing column or any invalid row, before anything is written; the message lists
        each invalid row by line. Also when the store rejects a read during the write, which the
        checks above should prevent; reads locked before that one stay locked.
    """
    info = store.study(study)
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader_csv = csv.DictReader(handle)
        missing = set(IMPORT_COLUMNS) - set(reader_csv.fieldnames or ())
        if missing:
            raise StudyStoreError(
                f"{path}: missing columns {sorted(missing)}; expected {', '.join(IMPORT_COLUMNS)} "
                "and optionally reading_seconds"
            )
        rows = list(enumerate(reader_csv, start=2))

    planned, skipped, errors = _check_rows(store, info, rows)
    if errors:
        listed = "\n".join(f"  {error}" for error in errors[:MAX_LISTED_ERRORS])
        more = f"\n  ... and {len(errors) - MAX_LISTED_ERRORS} more" if len(errors) > MAX_LISTED_ERRORS else ""
        raise StudyStoreError(
            f"{path}: {len(errors)} invalid rows, so no read was imported; fix them and import the file again:\n{listed}{more}"
        )

    planned.sort(key=lambda read: read.mode != "unaided")
    for read in planned:
        try:
            store.record_read(
                read.reader_id,
                read.case_id,
                read.mode,
                read.birads,
                read.probability,
                reading_seconds=read.reading_seconds,
                enforce_schedule=False,
            )
        except StudyStoreError as error:
            raise StudyStoreError(f"{path}, line {read.line}: {error}") from error
    logger.info("imported %d reads into study %d from %s, %d already locked", len(planned), info.id, path, skipped)
    return ReadsImport(added=len(planned), skipped=skipped)


def _check_rows(
    store: StudyStore, info: Any, rows: Sequence[tuple[int, dict[str, str | None]]]
) -> tuple[list[_PlannedRead], int, list[str]]:
    """Check every row against the study and return the reads to lock, the rows skipped and the errors."""
    readers = {reader.name: reader.id for reader in store.readers(info.id)}
    case_ids = {case.case_id for case in store.cases(info.id)}
    # Modes each reader's list allows per case, from the recorded reading order.
    allowed: dict[str, dict[str, set[str]]] = {}
    sequential: dict[str, set[str]] = {}
    for name, reader_id in readers.items():
        allowed[name] = {}
        sequential[name] = set()
        for items in store.reading_order(reader_id).values():
            for case_id, condition in items:
                allowed[name].setdefault(case_id, set()).update(modes_for(condition))
                if condition == "sequential":
                    sequential[name].add(case_id)
    locked = {(read.reader, read.case_id, read.mode): read for read in store.reads(info.id)}

    planned: list[_PlannedRead] = []
    skipped = 0
    errors: list[tuple[int, str]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for line, row in rows:
        try:
            read = _check_row(line, row, readers, case_ids, allowed)
        except StudyStoreError as error:
            errors.append((line, str(error)))
            continue
        key = (read.reader, read.case_id, read.mode)
        if key in seen:
            errors.append((line, f"reader {read.reader!r} has a second {read.mode} read of case {read.case_id!r} (first on line {seen[key]})"))
            continue
        seen[key] = line
        existing = locked.get(key)
        if existing is None:
            planned.append(read)
        elif existing.birads == read.birads and existing.probability == read.probability:
            skipped += 1
        else:
            errors.append(
                (
                    line,
                    f"reader {read.reader!r} already locked the {read.mode} read of case {read.case_id!r} "
                    f"as BI-RADS {existing.birads}, probability {existing.probability}; a locked read cannot change",
                )
            )

    for read in planned:
        key = (read.reader, read.case_id, "unaided")
        if read.mode == "aided" and read.case_id in sequential[read.reader] and key not in seen and key not in locked:
            errors.append(
                (
                    read.line,
                    f"reader {read.reader!r} has an aided read of case {read.case_id!r} but no unaided read; "
                    "a sequential study needs the unaided read first, so add it to the file",
                )
            )
    errors.sort()
    return planned, skipped, [f"line {line}: {text}" for line, text in errors]


def _check_row(
    line: int,
    row: Mapping[str, str | None],
    readers: Mapping[str, int],
    case_ids: set[str],
    allowed: Mapping[str, Mapping[str, set[str]]],
) -> _PlannedRead:
    """Parse one CSV row into a read, or raise StudyStoreError naming the first problem."""
    name = (row["reader"] or "").strip()
    case_id = (row["case_id"] or "").strip()
    mode = (row["mode"] or "").strip()

    if name not in readers:
        raise StudyStoreError(f"reader {name!r} not found in the study; readers: {sorted(readers)}")
    if case_id not in case_ids:
        raise StudyStoreError(f"case {case_id!r} not found in the study; check the case_id against the manifest")
    if mode not in MODES:
        raise StudyStoreError(f"read mode {mode!r} is invalid; use 'unaided' or 'aided'")
    if mode not in allowed[name].get(case_id, set()):
        raise StudyStoreError(f"case {case_id!r} is not on the reading list of reader {name!r} for an {mode} read")

    birads = row["birads"] or ""
    birads_rank(birads)
    probability = check_probability(row["probability"])

    seconds_text = (row.get("reading_seconds") or "").strip()
    seconds = None
    if seconds_text:
        try:
            seconds = float(seconds_text)
        except ValueError as error:
            raise StudyStoreError(f"reading_seconds {seconds_text!r} is not a number; give seconds or leave it empty") from error
        if not math.isfinite(seconds) or seconds < 0:
            raise StudyStoreError(f"reading_seconds {seconds_text!r} is invalid; give 0 or more seconds or leave it empty")

    return _PlannedRead(
        line=line,
        reader=name,
        reader_id=readers[name],
        case_id=case_id,
        mode=mode,
        birads=birads.strip().upper(),
        probability=probability,
        reading_seconds=seconds,
    )


def import_ai_predictions(store: StudyStore, study: int | str, path: str | os.PathLike[str]) -> int:
    """Store AI probabilities from a ``mpmmu predict`` CSV (case_id, p_malignant, model_version).

    Returns the number of study cases that got a result. Rows of other cases are ignored. Rows
    with an empty p_malignant, written for a case that could not be scored, are skipped with a
    warning.
    """
    info = store.study(study)
    case_ids = {case.case_id for case in store.cases(info.id)}
    stored = 0
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.DictReader(handle)
        missing = {"case_id", "p_malignant", "model_version"} - set(rows.fieldnames or ())
        if missing:
            raise StudyStoreError(f"{path}: missing columns {sorted(missing)}; give the CSV that `mpmmu predict` writes")
        for row in rows:
            if row["case_id"] not in case_ids:
                continue
            if not row["p_malignant"].strip():
                logger.warning("case %s has no AI probability in %s: %s", row["case_id"], path, row.get("error", ""))
                continue
            store.record_ai_result(info.id, row["case_id"], float(row["p_malignant"]), row["model_version"])
            stored += 1
    return stored


def score_cases(store: StudyStore, study: int | str, rows: Sequence[CaseRow], pipeline: Any) -> int:
    """Run :meth:`Pipeline.predict` on the study's cases without an AI result and store each probability.

    Returns the number of cases scored. A case the pipeline cannot score is logged and left
    without a result, so the aided read will try again.
    """
    info = store.study(study)
    pending = {case.case_id for case in store.cases(info.id) if case.ai_p_malignant is None}
    scored = 0
    for row in rows:
        if row.case_id not in pending:
            continue
        result = pipeline.predict_case(row, explain=False)
        if result.prediction is None:
            logger.warning("case %s could not be scored: %s", row.case_id, result.error)
            continue
        store.record_ai_result(info.id, row.case_id, result.prediction.p_malignant, result.prediction.model_version)
        scored += 1
    return scored
