"""Class-matched pseudo-pairs of an ultrasound case and a mammogram case from different patients.

No public data set pairs a mammogram and an ultrasound of the same lesion, so two-modality
training and testing on public data pairs images across data sets by label, inside each split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np

from mpmmu.data.manifest import LABELS, PSEUDO_PAIR_SOURCE, SPLITS, CaseRow

logger = logging.getLogger(__name__)

PairDesign = Literal["ultrasound", "mammogram"]


def _group(rows: Sequence[CaseRow], modality: str) -> dict[tuple[str, str], list[CaseRow]]:
    groups: dict[tuple[str, str], list[CaseRow]] = {}
    for row in rows:
        path = row.ultrasound_path if modality == "ultrasound" else row.mammogram_path
        if path is None:
            raise ValueError(f"case {row.case_id!r} was passed as {modality} but has no {modality}_path")
        if row.split is None:
            raise ValueError(f"case {row.case_id!r} has no split; split the source rows before pairing")
        if row.label is None:
            continue
        groups.setdefault((row.split, row.label), []).append(row)
    return groups


def _group_order(key: tuple[str, str]) -> tuple[int, str, int]:
    split, label = key
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split, LABELS.index(label))


def _pair(us: CaseRow, mg: CaseRow) -> CaseRow:
    return CaseRow(
        case_id=f"{us.case_id}+{mg.case_id}",
        patient_id=f"{us.patient_id}+{mg.patient_id}",
        mammogram_path=mg.mammogram_path,
        ultrasound_path=us.ultrasound_path,
        label=us.label,
        mammogram_roi=mg.mammogram_roi,
        ultrasound_roi=us.ultrasound_roi,
        source=PSEUDO_PAIR_SOURCE,
        split=us.split,
    )


def _balanced_draw(pool: list[CaseRow], n: int, rng: np.random.Generator) -> list[CaseRow]:
    # Cycle through shuffled copies of the pool, so every member is drawn floor(n / len) or
    # ceil(n / len) times.
    drawn: list[CaseRow] = []
    while len(drawn) < n:
        drawn.extend(pool[i] for i in rng.permutation(len(pool)))
    return drawn[:n]


def _by_patient(rows: list[CaseRow]) -> list[list[CaseRow]]:
    patients: dict[str, list[CaseRow]] = {}
    for row in rows:
        patients.setdefault(row.patient_id, []).append(row)
    return list(patients.values())


def make_pseudo_pairs(
    us_rows: Sequence[CaseRow],
    mg_rows: Sequence[CaseRow],
    design: PairDesign = "ultrasound",
    seed: int = 0,
) -> list[CaseRow]:
    """Pair ultrasound and mammogram cases of the same label inside each split.

    Parameters
    ----------
    us_rows : sequence of CaseRow
        Ultrasound cases with ``split`` set; unlabelled cases are skipped.
    mg_rows : sequence of CaseRow
        Mammogram cases with ``split`` set; unlabelled cases are skipped.
    design : {"ultrasound", "mammogram"}
        "ultrasound": every ultrasound case gets a mammogram of its split and label, the same
        one for all images of an ultrasound patient. The mammograms are reused as evenly as
        possible over ultrasound patients, so the number of patients per mammogram differs by at
        most 1 within a split and label. "mammogram": one pair per mammogram case, each with an
        image of a different ultrasound patient where the split and label have enough of them.
    seed : int
        Seed of the draw; the same inputs and seed give the same pairs.

    Returns
    -------
    list of CaseRow
        Pairs with case_id ``"<us case>+<mg case>"``, patient_id ``"<us patient>+<mg patient>"``,
        both images and ROIs, the shared label and split, and source ``"pseudo-pair"``
        (``CaseRow.pseudo_pair`` is True). Ordered by split, label, then driving case.

    Raises
    ------
    ValueError
        On an unknown design, or a row without a split or without the modality's image.

    Notes
    -----
    No public data set contains a mammogram and an ultrasound of the same lesion, so these pairs
    join two patients who share only the label. They assume the modalities are independent given
    the label, which real pairs are not (a large spiculated mass looks suspicious in both), so a
    gain of fusion measured on pseudo-pairs is an upper bound for real paired data and must be
    reported as such. A mammogram reused across many pairs lets a stage-2 learner memorise its
    identity, so every split and inner cross-validation over pairs must group by both patients
    (see :func:`pair_groups`). Both designs link each ultrasound patient to a single mammogram
    patient, so the patient graph splits into one small component per mammogram patient and
    such grouping never has to drop a pair. A split-and-label group with no partner in the other modality
    produces no pairs, with a warning.
    """
    if design not in ("ultrasound", "mammogram"):
        raise ValueError(f"design must be 'ultrasound' or 'mammogram', got {design!r}")
    us_groups = _group(us_rows, "ultrasound")
    mg_groups = _group(mg_rows, "mammogram")
    rng = np.random.default_rng(seed)

    pairs: list[CaseRow] = []
    keys = sorted(set(us_groups) | set(mg_groups), key=_group_order)
    for key in keys:
        us_pool, mg_pool = us_groups.get(key, []), mg_groups.get(key, [])
        driving, partners = (us_pool, mg_pool) if design == "ultrasound" else (mg_pool, us_pool)
        if not driving:
            continue
        if not partners:
            logger.warning(
                "split %r, label %r: %d %s case(s) have no partner in the other modality, left unpaired",
                key[0], key[1], len(driving), design,
            )
            continue
        if design == "ultrasound":
            # One mammogram per ultrasound patient, shared by all of that patient's images, so
            # each ultrasound patient joins exactly one mammogram patient and grouped CV over
            # both patients can still test every pair.
            patients = _by_patient(us_pool)
            drawn = _balanced_draw(mg_pool, len(patients), rng)
            for images, mg in zip(patients, drawn):
                pairs.extend(_pair(us, mg) for us in images)
        else:
            # One image of a distinct ultrasound patient per mammogram case, for the same reason.
            patients = _by_patient(us_pool)
            drawn_patients = _balanced_draw(patients, len(mg_pool), rng)
            for mg, images in zip(mg_pool, drawn_patients):
                pairs.append(_pair(images[int(rng.integers(len(images)))], mg))

    logger.info("made %d %s-driven pseudo-pairs (seed %d)", len(pairs), design, seed)
    return pairs


def split_pair_patient(patient_id: str) -> tuple[str, str]:
    """Split a pseudo-pair's patient_id ``"<us patient>+<mg patient>"`` into its two patients."""
    us_patient, separator, mg_patient = patient_id.partition("+")
    if not separator or "+" in mg_patient:
        raise ValueError(f"pseudo-pair patient_id must be '<us patient>+<mg patient>', got {patient_id!r}")
    return us_patient, mg_patient


def pair_groups(rows: Sequence[CaseRow]) -> tuple[np.ndarray, np.ndarray]:
    """Return the ultrasound patient and the mammogram patient of each row, for grouped CV.

    For a pseudo-pair both come from its patient_id; for any other case both are its own
    patient_id. Grouped cross-validation over pairs should keep both groups apart, for example by
    splitting on one and checking the other, or by splitting the source rows before pairing.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Two object arrays of str, shape (len(rows),).
    """
    us_groups = np.empty(len(rows), dtype=object)
    mg_groups = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        if row.pseudo_pair:
            us_groups[i], mg_groups[i] = split_pair_patient(row.patient_id)
        else:
            us_groups[i] = mg_groups[i] = row.patient_id
    return us_groups, mg_groups
