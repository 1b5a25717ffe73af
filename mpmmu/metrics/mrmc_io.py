"""Read and write reader-study ratings: long CSV, Iowa LRC, iMRMC and RJafroc-ready CSV.

Every reader returns :class:`mpmmu.metrics.mrmc.MrmcData`; every error is an
:class:`mpmmu.errors.MrmcDataError` naming the file, the line and the column at fault.

Formats
-------
Long CSV
    A header and one row per reader, modality and case. Column names may be mpmmu's
    (``reader_id, modality, case_id, truth, rating``) or RJafroc's
    (``reader, treatment, case, truth, rating``); ``readerID``, ``modalityID``, ``caseID`` and
    ``score`` are accepted too. truth is 1 abnormal, 0 normal; a higher rating is more suspicious.
LRC (input of the Iowa OR-DBM MRMC program)
    Line 1 title; line 2 the first reader id; line 3 the quoted modality names; line 4 one letter
    per modality, ``L`` when larger ratings are more suspicious and ``S`` when smaller are; then
    one row per normal case (a rating per modality, then an optional label) ended by ``*``, one
    row per abnormal case ended by ``*``; then the next reader id and its rows; ``#`` ends the
    file. Cases are identified by position, in the same order in every reader block.
iMRMC
    Free header lines (``N0:``, ``N1:``, ``NR:``, ``NM:`` are checked when present), a line
    ``BEGIN DATA:``, then rows ``readerID,caseID,modalityID,score``. Truth rows have readerID
    ``-1`` and modalityID ``truth``, with score 0 (normal) or 1 (abnormal).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np

from mpmmu.errors import MrmcDataError
from mpmmu.metrics.mrmc_data import MrmcData

logger = logging.getLogger(__name__)

#: Accepted header names (lower case) of each long-CSV column, mpmmu's name first.
LONG_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "reader_id": ("reader_id", "reader", "readerid"),
    "modality": ("modality", "treatment", "modalityid"),
    "case_id": ("case_id", "case", "caseid"),
    "truth": ("truth",),
    "rating": ("rating", "score"),
}

PathLike = str | os.PathLike[str]


def read_long_csv(path: PathLike) -> MrmcData:
    """Read a long-format ratings CSV, one row per reader, modality and case.

    Parameters
    ----------
    path : str or path-like
        CSV with a header naming the five columns (see the module docstring). Extra columns are
        ignored. Readers, modalities and cases keep their order of first appearance.

    Returns
    -------
    MrmcData

    Raises
    ------
    MrmcDataError
        On a missing column, a row with too few fields, an empty cell, a truth other than 0/1,
        a non-numeric rating, a repeated or a missing (reader, modality, case).
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise MrmcDataError(f"cannot read ratings file {path}: {error}") from error
    if not lines:
        raise MrmcDataError(
            f"{path} is empty; expected a header with reader_id, modality, case_id, truth, rating"
        )

    header = [name.strip().lower() for name in lines[0]]
    positions = {}
    for column, aliases in LONG_COLUMN_ALIASES.items():
        found = [index for index, name in enumerate(header) if name in aliases]
        if not found:
            raise MrmcDataError(
                f"{path}: column {column!r} is missing (accepted names: {', '.join(aliases)}); "
                f"the header is {lines[0]}"
            )
        positions[column] = found[0]

    columns: dict[str, list[str]] = {column: [] for column in positions}
    row_labels = []
    width = max(positions.values()) + 1
    for line_number, fields in enumerate(lines[1:], start=2):
        if not any(field.strip() for field in fields):
            continue
        if len(fields) < width:
            raise MrmcDataError(
                f"{path} line {line_number}: expected at least {width} fields, got {len(fields)}: {fields}"
            )
        for column, index in positions.items():
            value = fields[index].strip()
            if not value:
                raise MrmcDataError(f"{path} line {line_number}: column {column!r} is empty")
            columns[column].append(value)
        row_labels.append(f"{path.name} line {line_number}")

    return MrmcData.from_long(
        columns["reader_id"],
        columns["modality"],
        columns["case_id"],
        columns["truth"],
        columns["rating"],
        row_labels=row_labels,
    )


def write_long_csv(data: MrmcData, path: PathLike) -> Path:
    """Write the study as mpmmu's long CSV (reader_id, modality, case_id, truth, rating)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reader_id", "modality", "case_id", "truth", "rating"])
        for reader, modality, case_id, truth, rating in data.to_long():
            writer.writerow([reader, modality, case_id, truth, repr(rating)])
    return path


def write_rjafroc_csv(data: MrmcData, path: PathLike) -> dict[str, int]:
    """Write a CSV that RJafroc reads with ``DfReadDataFile(path, format = "MRMC")``.

    The columns are ``reader,treatment,case,truth,rating``. RJafroc requires numeric case
    identifiers, so case ids that are not all integers are renumbered 1..n in study order.

    Returns
    -------
    dict
        The case number written for each case id.
    """
    path = Path(path)
    if all(re.fullmatch(r"-?\d+", case_id) for case_id in data.case_ids):
        numbers = {case_id: int(case_id) for case_id in data.case_ids}
    else:
        numbers = {case_id: k + 1 for k, case_id in enumerate(data.case_ids)}
        logger.info(
            "renumbered %d non-integer case ids 1..%d for RJafroc", len(numbers), len(numbers)
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reader", "treatment", "case", "truth", "rating"])
        for reader, modality, case_id, truth, rating in data.to_long():
            writer.writerow([reader, modality, numbers[case_id], truth, repr(rating)])
    return numbers


def _lrc_tokens(
    line: str, n_modalities: int, path: Path, line_number: int
) -> tuple[list[float], str]:
    tokens = line.split()
    if len(tokens) < n_modalities:
        raise MrmcDataError(
            f"{path} line {line_number}: expected {n_modalities} ratings, got {len(tokens)}: {line.strip()!r}"
        )
    try:
        values = [float(token) for token in tokens[:n_modalities]]
    except ValueError:
        raise MrmcDataError(
            f"{path} line {line_number}: ratings must be numbers, got {line.strip()!r}"
        ) from None
    return values, " ".join(tokens[n_modalities:])


def read_lrc(path: PathLike) -> MrmcData:
    """Read an LRC file, the input format of the Iowa OR-DBM MRMC program.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    MrmcData
        Cases keep the row labels of the first reader block when every row has a unique label,
        otherwise they are named ``normal-<k>`` and ``abnormal-<k>`` by position. Ratings of an
        ``S`` modality are negated so that higher is always more suspicious.

    Raises
    ------
    MrmcDataError
        On a malformed header, a row with too few or non-numeric ratings, a missing ``*`` or
        ``#``, or reader blocks with different numbers of cases.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise MrmcDataError(f"cannot read LRC file {path}: {error}") from error
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if len(numbered) < 4:
        raise MrmcDataError(
            f"{path} is too short for an LRC file: expected a title, a reader id, modality names and L/S letters"
        )

    modality_line_number, modality_line = numbered[2]
    modalities = re.findall(r'"([^"]*)"', modality_line) or modality_line.split()
    direction_line_number, direction_line = numbered[3]
    directions = direction_line.split()
    if len(directions) != len(modalities) or any(
        letter.upper() not in ("L", "S") for letter in directions
    ):
        raise MrmcDataError(
            f"{path} line {direction_line_number}: expected one L or S per modality ({len(modalities)} "
            f"from line {modality_line_number}), got {direction_line.strip()!r}"
        )
    sign = np.array([1.0 if letter.upper() == "L" else -1.0 for letter in directions])
    n_modalities = len(modalities)

    blocks: list[tuple[str, list[list[float]], list[list[float]], list[str], list[str]]] = []
    reader_id = numbered[1][1].strip()
    position = 4
    while True:
        groups: list[tuple[list[list[float]], list[str]]] = []
        for _ in range(2):
            rows, labels = [], []
            while True:
                if position >= len(numbered):
                    raise MrmcDataError(
                        f"{path}: reader {reader_id!r} block ends without '*'; each truth group ends with a '*' line"
                    )
                line_number, line = numbered[position]
                position += 1
                if line.strip() == "*":
                    break
                values, label = _lrc_tokens(line, n_modalities, path, line_number)
                rows.append(values)
                labels.append(label)
            groups.append((rows, labels))
        blocks.append((reader_id, groups[0][0], groups[1][0], groups[0][1], groups[1][1]))
        if position >= len(numbered):
            raise MrmcDataError(f"{path}: the file ends without '#' after reader {reader_id!r}")
        line_number, line = numbered[position]
        position += 1
        if line.strip() == "#":
            break
        reader_id = line.strip()

    _, first_normal, first_abnormal, normal_labels, abnormal_labels = blocks[0]
    for reader, normal_rows, abnormal_rows, _, _ in blocks[1:]:
        if (len(normal_rows), len(abnormal_rows)) != (len(first_normal), len(first_abnormal)):
            raise MrmcDataError(
                f"{path}: reader {reader!r} has {len(normal_rows)} normal and {len(abnormal_rows)} abnormal "
                f"cases but reader {blocks[0][0]!r} has {len(first_normal)} and {len(first_abnormal)}"
            )
    labels = normal_labels + abnormal_labels
    if not all(labels) or len(set(labels)) != len(labels):
        labels = [f"normal-{k + 1}" for k in range(len(normal_labels))] + [
            f"abnormal-{k + 1}" for k in range(len(abnormal_labels))
        ]
    truth = np.array([0] * len(first_normal) + [1] * len(first_abnormal), dtype=np.int8)

    reader_ids = [block[0] for block in blocks]
    if len(set(reader_ids)) != len(reader_ids):
        raise MrmcDataError(f"{path}: reader ids repeat across blocks: {reader_ids}")
    ratings = np.empty((n_modalities, len(blocks), truth.size))
    for j, (_, normal_rows, abnormal_rows, _, _) in enumerate(blocks):
        ratings[:, j, :] = (np.asarray(normal_rows + abnormal_rows, dtype=np.float64) * sign).T
    return MrmcData(
        readers=tuple(reader_ids),
        modalities=tuple(modalities),
        case_ids=tuple(labels),
        truth=truth,
        ratings=ratings,
    )


def read_imrmc(path: PathLike) -> MrmcData:
    """Read an iMRMC input file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    MrmcData
        Reader, modality and case order is the order of first appearance among the rating rows.

    Raises
    ------
    MrmcDataError
        On a missing ``BEGIN DATA:`` line, a row without four fields, a case without a truth
        row, a header count (N0, N1, NR, NM) that disagrees with the data, or an incomplete design.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise MrmcDataError(f"cannot read iMRMC file {path}: {error}") from error
    start = next(
        (k for k, line in enumerate(lines) if line.strip().upper().startswith("BEGIN DATA")), None
    )
    if start is None:
        raise MrmcDataError(
            f"{path}: no 'BEGIN DATA:' line; an iMRMC file lists its rows after that line"
        )
    declared = {}
    for line in lines[:start]:
        match = re.fullmatch(r"\s*(N0|N1|NR|NM)\s*:\s*(\d+)\s*", line)
        if match:
            declared[match.group(1)] = int(match.group(2))

    truth_by_case: dict[str, str] = {}
    reader_ids, case_ids, modalities, scores, row_labels = [], [], [], [], []
    for line_number, line in enumerate(lines[start + 1 :], start=start + 2):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4:
            raise MrmcDataError(
                f"{path} line {line_number}: expected readerID,caseID,modalityID,score, got {line.strip()!r}"
            )
        reader, case_id, modality, score = fields
        if reader == "-1" or modality.lower() == "truth":
            if case_id in truth_by_case and truth_by_case[case_id] != score:
                raise MrmcDataError(
                    f"{path} line {line_number}: case {case_id!r} has a second, different truth row"
                )
            truth_by_case[case_id] = score
            continue
        reader_ids.append(reader)
        case_ids.append(case_id)
        modalities.append(modality)
        scores.append(score)
        row_labels.append(f"{path.name} line {line_number}")

    truth = []
    for case_id, label in zip(case_ids, row_labels):
        if case_id not in truth_by_case:
            raise MrmcDataError(
                f"{path}: case {case_id!r} ({label}) has no truth row (readerID -1, modalityID truth)"
            )
        truth.append(truth_by_case[case_id])
    data = MrmcData.from_long(
        reader_ids,
        modalities,
        case_ids,
        truth,
        scores,
        case_order=list(truth_by_case),
        row_labels=row_labels,
    )

    found = {
        "N0": data.n_normal,
        "N1": data.n_abnormal,
        "NR": len(data.readers),
        "NM": len(data.modalities),
    }
    for key, value in declared.items():
        if value != found[key]:
            raise MrmcDataError(
                f"{path}: the header declares {key}:{value} but the data has {found[key]}"
            )
    return data


def write_imrmc(data: MrmcData, path: PathLike, title: str = "mpmmu reader study") -> Path:
    """Write the study as an iMRMC input file (truth rows first, then one row per rating).

    Raises
    ------
    MrmcDataError
        When a reader, modality or case label contains a comma or a line break, or a reader is
        named ``-1`` (the truth marker), since iMRMC could not read them back.
    """
    path = Path(path)
    for kind, labels in (
        ("reader", data.readers),
        ("modality", data.modalities),
        ("case", data.case_ids),
    ):
        for label in labels:
            if re.search(r"[,\r\n]", label):
                raise MrmcDataError(
                    f"{kind} label {label!r} contains a comma or line break, which iMRMC cannot read; rename it"
                )
    if "-1" in data.readers or "truth" in (modality.lower() for modality in data.modalities):
        raise MrmcDataError(
            "reader '-1' and modality 'truth' are reserved for iMRMC truth rows; rename them"
        )

    lines = [
        title.replace("\n", " "),
        f"N0:{data.n_normal}",
        f"N1:{data.n_abnormal}",
        f"NR:{len(data.readers)}",
        f"NM:{len(data.modalities)}",
        "BEGIN DATA:",
    ]
    lines += [
        f"-1,{case_id},truth,{int(truth)}" for case_id, truth in zip(data.case_ids, data.truth)
    ]
    lines += [
        f"{reader},{case_id},{modality},{rating!r}"
        for reader, modality, case_id, _, rating in data.to_long()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
