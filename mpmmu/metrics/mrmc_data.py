"""The record of a fully crossed reader study and its construction from a long ratings table."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mpmmu.errors import MrmcDataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MrmcData:
    """Ratings of a fully crossed reader study.

    Attributes
    ----------
    readers, modalities, case_ids : tuple of str
        Labels in analysis order; modality order sets the sign of differences (first - second).
    truth : numpy.ndarray of int8, shape (n_cases,)
        1 abnormal (positive), 0 normal.
    ratings : numpy.ndarray of float64, shape (n_modalities, n_readers, n_cases)
        Higher means more suspicious.
    """

    readers: tuple[str, ...]
    modalities: tuple[str, ...]
    case_ids: tuple[str, ...]
    truth: np.ndarray
    ratings: np.ndarray

    def __post_init__(self) -> None:
        # Store read-only copies with canonical types so the record cannot change after checks.
        for name, labels in (
            ("readers", self.readers),
            ("modalities", self.modalities),
            ("case_ids", self.case_ids),
        ):
            object.__setattr__(self, name, tuple(str(label) for label in labels))
        truth = np.array(self.truth)
        ratings = np.array(self.ratings, dtype=np.float64)
        if not np.isin(truth, (0, 1)).all():
            raise MrmcDataError("truth must be 0 (normal) or 1 (abnormal) for every case")
        truth = truth.astype(np.int8)
        truth.setflags(write=False)
        ratings.setflags(write=False)
        object.__setattr__(self, "truth", truth)
        object.__setattr__(self, "ratings", ratings)

        expected = (len(self.modalities), len(self.readers), len(self.case_ids))
        if self.ratings.shape != expected:
            raise MrmcDataError(
                f"ratings must have shape (modalities, readers, cases) = {expected}, got {self.ratings.shape}"
            )
        if self.truth.shape != (len(self.case_ids),):
            raise MrmcDataError(
                f"truth must have one value per case ({len(self.case_ids)}), got shape {self.truth.shape}"
            )
        if not np.isfinite(self.ratings).all():
            raise MrmcDataError("every rating must be a finite number")
        for name, labels in (
            ("reader", self.readers),
            ("modality", self.modalities),
            ("case", self.case_ids),
        ):
            if len(set(labels)) != len(labels):
                raise MrmcDataError(f"{name} labels must be unique, got {list(labels)}")

    @property
    def n_normal(self) -> int:
        """Number of normal (truth 0) cases."""
        return int(np.sum(self.truth == 0))

    @property
    def n_abnormal(self) -> int:
        """Number of abnormal (truth 1) cases."""
        return int(np.sum(self.truth == 1))

    @classmethod
    def from_long(
        cls,
        reader_ids: Sequence[object],
        modalities: Sequence[object],
        case_ids: Sequence[object],
        truth: Sequence[object],
        ratings: Sequence[object],
        *,
        reader_order: Sequence[object] | None = None,
        modality_order: Sequence[object] | None = None,
        case_order: Sequence[object] | None = None,
        row_labels: Sequence[str] | None = None,
    ) -> MrmcData:
        """Build a study from a long table, one row per reader, modality and case.

        Parameters
        ----------
        reader_ids, modalities, case_ids : sequence
            Labels of each row, compared as strings.
        truth : sequence of 0/1
            1 abnormal, 0 normal; every row of one case must agree.
        ratings : sequence of float
        reader_order, modality_order, case_order : sequence, optional
            Analysis order of the labels; each must list exactly the labels present. Default:
            order of first appearance.
        row_labels : sequence of str, optional
            How to name each row in error messages (for example "line 12"); default "row <i>".

        Raises
        ------
        MrmcDataError
            On columns of different lengths, a truth other than 0/1, a case with conflicting
            truth, a non-numeric rating, a repeated (reader, modality, case), or a missing one.
        """
        n_rows = len(reader_ids)
        lengths = {len(modalities), len(case_ids), len(truth), len(ratings)}
        if lengths != {n_rows}:
            raise MrmcDataError(
                f"the long table's columns have different lengths: reader {n_rows}, modality "
                f"{len(modalities)}, case {len(case_ids)}, truth {len(truth)}, rating {len(ratings)}"
            )
        if n_rows == 0:
            raise MrmcDataError("the ratings table has no rows")

        def name_row(index: int) -> str:
            return row_labels[index] if row_labels is not None else f"row {index}"

        reader_text = [str(value) for value in reader_ids]
        modality_text = [str(value) for value in modalities]
        case_text = [str(value) for value in case_ids]
        readers = _ordered_labels("reader", reader_text, reader_order)
        modality_labels = _ordered_labels("modality", modality_text, modality_order)
        cases = _ordered_labels("case", case_text, case_order)
        reader_index = {label: k for k, label in enumerate(readers)}
        modality_index = {label: k for k, label in enumerate(modality_labels)}
        case_index = {label: k for k, label in enumerate(cases)}

        truth_by_case = np.full(len(cases), -1, dtype=np.int8)
        rating_cube = np.full((len(modality_labels), len(readers), len(cases)), np.nan)
        first_row = np.full(rating_cube.shape, -1, dtype=np.int64)
        for row in range(n_rows):
            case_label = case_text[row]
            row_truth = _parse_truth(truth[row], name_row(row))
            row_rating = _parse_rating(ratings[row], name_row(row))
            k = case_index[case_label]
            if truth_by_case[k] == -1:
                truth_by_case[k] = row_truth
            elif truth_by_case[k] != row_truth:
                raise MrmcDataError(
                    f"case {case_label!r} has truth {truth_by_case[k]} elsewhere but {row_truth} "
                    f"on {name_row(row)}; a case's truth must be the same in every row"
                )
            cell = (modality_index[modality_text[row]], reader_index[reader_text[row]], k)
            if first_row[cell] >= 0:
                raise MrmcDataError(
                    f"reader {reader_text[row]!r}, modality {modality_text[row]!r}, case "
                    f"{case_label!r} is rated twice ({name_row(int(first_row[cell]))} and "
                    f"{name_row(row)}); keep one rating per reader, modality and case"
                )
            first_row[cell] = row
            rating_cube[cell] = row_rating

        missing = np.argwhere(first_row < 0)
        if missing.size:
            i, j, k = missing[0]
            raise MrmcDataError(
                f"the design is incomplete: reader {readers[j]!r} has no rating of case "
                f"{cases[k]!r} in modality {modality_labels[i]!r} ({len(missing)} reader-modality-case "
                f"combinations missing in all); every reader must rate every case in every modality"
            )
        return cls(
            readers=tuple(readers),
            modalities=tuple(modality_labels),
            case_ids=tuple(cases),
            truth=truth_by_case,
            ratings=rating_cube,
        )

    def to_long(self) -> list[tuple[str, str, str, int, float]]:
        """Return the rows (reader_id, modality, case_id, truth, rating), reader-major."""
        rows = []
        for j, reader in enumerate(self.readers):
            for i, modality in enumerate(self.modalities):
                for k, case_id in enumerate(self.case_ids):
                    rows.append(
                        (
                            reader,
                            modality,
                            case_id,
                            int(self.truth[k]),
                            float(self.ratings[i, j, k]),
                        )
                    )
        return rows


def _ordered_labels(kind: str, values: list[str], order: Sequence[object] | None) -> list[str]:
    present = list(dict.fromkeys(values))
    if order is None:
        return present
    requested = [str(value) for value in order]
    unknown = sorted(set(values) - set(requested))
    if unknown:
        raise MrmcDataError(
            f"{kind} {unknown[0]!r} appears in the ratings but not in the {kind} order {requested}"
        )
    absent = [label for label in requested if label not in set(present)]
    if absent:
        raise MrmcDataError(f"{kind} {absent[0]!r} is in the {kind} order but has no ratings")
    if len(set(requested)) != len(requested):
        raise MrmcDataError(f"the {kind} order lists a label twice: {requested}")
    return requested


def _parse_truth(value: object, where: str) -> int:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number not in (0.0, 1.0):
        raise MrmcDataError(f"truth must be 0 (normal) or 1 (abnormal), got {text!r} on {where}")
    return int(number)


def _parse_rating(value: object, where: str) -> float:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise MrmcDataError(f"rating must be a number, got {text!r} on {where}") from None
    if not math.isfinite(number):
        raise MrmcDataError(f"rating must be finite, got {text!r} on {where}")
    return number


def check_design(data: MrmcData) -> None:
    """Raise :class:`MrmcDataError` unless there are 2+ modalities, readers and cases of each truth."""
    if len(data.modalities) < 2:
        raise MrmcDataError(
            f"an MRMC comparison needs at least 2 modalities, got {len(data.modalities)}"
        )
    if len(data.readers) < 2:
        raise MrmcDataError(f"an MRMC analysis needs at least 2 readers, got {len(data.readers)}")
    if data.n_normal < 2 or data.n_abnormal < 2:
        raise MrmcDataError(
            f"an MRMC analysis needs at least 2 normal and 2 abnormal cases, got {data.n_normal} "
            f"normal and {data.n_abnormal} abnormal"
        )
