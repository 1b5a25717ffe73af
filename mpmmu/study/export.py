"""Move a study's data in and out of the store: exports for iMRMC and RJafroc, reads and AI results.

Exports contain reader names, case ids, reference truth and ratings, never a patient identifier,
because the store holds none.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from mpmmu.data.manifest import CaseRow
from mpmmu.errors import StudyStoreError
from mpmmu.metrics import write_imrmc, write_rjafroc_csv
from mpmmu.study.analysis import Rating, mrmc_data
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
        write_imrmc(mrmc_data(reads, rating), path, title=f"mpmmu reader study {info.name} ({rating})")
    elif export_format == "rjafroc":
        numbers = write_rjafroc_csv(mrmc_data(reads, rating), path)
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


def import_reads_csv(store: StudyStore, study: int | str, path: str | os.PathLike[str]) -> int:
    """Lock reads collected outside the app (for example on paper) and return how many were added.

    The CSV needs the columns reader, case_id, mode, birads and probability; reading_seconds is
    optional. Unaided reads are locked before aided ones, so a sequential study's order rule
    holds whatever the row order. The washout between crossover sessions is not checked, because
    the reads happened before the import.

    Raises
    ------
    StudyStoreError
        On a missing column, an unknown reader, or a read the store rejects; the message names
        the line. Reads before the failing line stay locked.
    """
    info = store.study(study)
    readers = {reader.name: reader.id for reader in store.readers(info.id)}
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader_csv = csv.DictReader(handle)
        missing = {"reader", "case_id", "mode", "birads", "probability"} - set(reader_csv.fieldnames or ())
        if missing:
            raise StudyStoreError(f"{path}: missing columns {sorted(missing)}; expected reader, case_id, mode, birads, probability")
        rows = [(line, row) for line, row in enumerate(reader_csv, start=2)]

    rows.sort(key=lambda item: item[1]["mode"].strip() != "unaided")
    added = 0
    for line, row in rows:
        name = row["reader"].strip()
        if name not in readers:
            raise StudyStoreError(f"{path}, line {line}: reader {name!r} is not in study {info.name!r}; readers: {sorted(readers)}")
        seconds = (row.get("reading_seconds") or "").strip()
        try:
            store.record_read(
                readers[name],
                row["case_id"].strip(),
                row["mode"].strip(),
                row["birads"],
                row["probability"],
                reading_seconds=float(seconds) if seconds else None,
                enforce_schedule=False,
            )
        except StudyStoreError as error:
            raise StudyStoreError(f"{path}, line {line}: {error}") from error
        added += 1
    logger.info("imported %d reads into study %d from %s", added, info.id, path)
    return added


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
