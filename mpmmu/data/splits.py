"""Patient-level, label-stratified splits: train/val/test and k-fold, reproducible by seed.

Every case of one patient lands in the same part, so no patient's images are in both training
and evaluation data. A patient with any malignant case counts as malignant for stratification.
Patients without any label form their own stratum.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from mpmmu.data.manifest import SPLITS, CaseRow

logger = logging.getLogger(__name__)


def patient_strata(rows: Sequence[CaseRow]) -> dict[str, str]:
    """Return each patient's stratum: "malignant" if any case is malignant, else "benign" or "unknown"."""
    strata: dict[str, str] = {}
    for row in rows:
        current = strata.get(row.patient_id, "unknown")
        if row.label == "malignant" or current == "malignant":
            strata[row.patient_id] = "malignant"
        elif row.label == "benign" or current == "benign":
            strata[row.patient_id] = "benign"
        else:
            strata[row.patient_id] = "unknown"
    return strata


def _allocate(n: int, ratios: Sequence[float]) -> list[int]:
    # Largest-remainder rounding keeps the part sizes summing to n.
    exact = np.asarray(ratios, dtype=float) * n
    sizes = np.floor(exact).astype(int)
    remainder = n - int(sizes.sum())
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[:remainder]] += 1
    return sizes.tolist()


def patient_split(
    rows: Sequence[CaseRow],
    ratios: tuple[float, float, float] = (0.7, 0.2, 0.1),
    seed: int = 0,
) -> list[CaseRow]:
    """Assign every case to "train", "val" or "test" by patient, stratified by label.

    Within each stratum (see :func:`patient_strata`) the patients are shuffled with ``seed`` and
    cut into parts of sizes ``ratios`` by largest-remainder rounding, so each part gets the
    stratum's share of patients to within one.

    Parameters
    ----------
    rows : sequence of CaseRow
    ratios : tuple of 3 float
        Shares of patients for train, val and test; non-negative and summing to 1.
    seed : int
        Seed of the shuffle; the same rows and seed give the same split.

    Returns
    -------
    list of CaseRow
        Copies of ``rows`` in their original order with ``split`` set.

    Raises
    ------
    ValueError
        When ``ratios`` does not hold three non-negative shares summing to 1.
    """
    if len(ratios) != 3 or any(share < 0 for share in ratios) or not np.isclose(sum(ratios), 1.0):
        raise ValueError(f"ratios must be three non-negative shares (train, val, test) summing to 1, got {ratios}")

    strata = patient_strata(rows)
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for stratum in ("benign", "malignant", "unknown"):
        patients = sorted(patient for patient, value in strata.items() if value == stratum)
        if not patients:
            continue
        order = rng.permutation(len(patients))
        start = 0
        for split, size in zip(SPLITS, _allocate(len(patients), ratios)):
            for index in order[start : start + size]:
                split_of[patients[index]] = split
            start += size

    logger.info(
        "patient split (seed %d): %s",
        seed,
        {split: sum(value == split for value in split_of.values()) for split in SPLITS},
    )
    return [row.with_split(split_of[row.patient_id]) for row in rows]


def patient_kfold(
    rows: Sequence[CaseRow], k: int = 5, seed: int = 0
) -> list[tuple[list[CaseRow], list[CaseRow]]]:
    """Split cases into k patient-wise folds stratified by label (scikit-learn StratifiedGroupKFold).

    Parameters
    ----------
    rows : sequence of CaseRow
    k : int
        Number of folds, at least 2 and at most the number of patients.
    seed : int
        Seed of the fold shuffle.

    Returns
    -------
    list of (train_rows, test_rows)
        Fold i's test rows carry split ``"fold<i+1>"``; train rows keep their split.

    Notes
    -----
    Stratification uses each case's patient stratum, so a patient with mixed labels counts as
    malignant, the same rule as :func:`patient_split`. Pseudo-pairs should not be folded here:
    fold the source rows, then pair inside each fold.
    """
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    patients = sorted({row.patient_id for row in rows})
    if k > len(patients):
        raise ValueError(f"k = {k} folds need at least {k} patients, got {len(patients)}")

    strata = patient_strata(rows)
    groups = np.array([row.patient_id for row in rows])
    y = np.array([strata[row.patient_id] for row in rows])
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    for fold, (train_index, test_index) in enumerate(splitter.split(np.zeros(len(rows)), y, groups), start=1):
        train = [rows[i] for i in train_index]
        test = [rows[i].with_split(f"fold{fold}") for i in test_index]
        folds.append((train, test))
    return folds
