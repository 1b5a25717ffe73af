"""Tests of the patient-grouped fold builder."""

from __future__ import annotations

import numpy as np
import pytest

from mpmmu.ensemble.folds import bipartite_components, check_groups, grouped_folds
from mpmmu.ensemble.synthetic import make_synthetic_pairs


def _pair_groups(pairs: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([pairs["groups_us"], pairs["groups_mg"]])


def _assert_no_patient_on_both_sides(groups: np.ndarray, folds: list) -> None:
    for index, (train, test) in enumerate(folds):
        for column, name in ((0, "ultrasound"), (1, "mammography")):
            shared = set(groups[train, column]) & set(groups[test, column])
            assert not shared, f"fold {index}: {name} patients on both sides: {sorted(shared)[:5]}"


def test_bipartite_components_links_pairs_sharing_a_patient() -> None:
    groups = np.array(
        [["u1", "m1"], ["u2", "m1"], ["u3", "m2"], ["u3", "m3"], ["u4", "m4"], ["u5", "m3"]]
    )

    components = bipartite_components(groups)

    assert components[0] == components[1]
    assert components[2] == components[3] == components[5]
    assert len({components[0], components[2], components[4]}) == 3


def test_bipartite_components_keeps_columns_apart() -> None:
    # Ultrasound patient "7" and mammography patient "7" are different people.
    groups = np.array([["7", "1"], ["2", "7"]])

    components = bipartite_components(groups)

    assert components[0] != components[1]


def test_bipartite_components_raises_one_column() -> None:
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        bipartite_components(np.array(["a", "b"]))


def test_check_groups_raises_wrong_length() -> None:
    with pytest.raises(ValueError, match="X has 5 rows"):
        check_groups(np.arange(4), 5)


def test_check_groups_raises_three_columns() -> None:
    with pytest.raises(ValueError, match="got shape"):
        check_groups(np.zeros((5, 3)), 5)


def test_grouped_folds_components_never_leak_patient() -> None:
    pairs = make_synthetic_pairs(n_ultrasound_patients=120, n_mammograms=16, seed=3)
    groups = _pair_groups(pairs)

    folds = grouped_folds(pairs["y"], groups, n_splits=4, random_state=0)

    assert len(folds) == 4
    _assert_no_patient_on_both_sides(groups, folds)
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(pairs["y"])))


def test_grouped_folds_two_way_never_leaks_patient() -> None:
    # Two images per ultrasound patient, each paired with its own mammogram, link every patient
    # of a class into one component, as image-level pseudo-pairing does.
    pairs = make_synthetic_pairs(
        n_ultrasound_patients=120, n_mammograms=16, images_per_ultrasound_patient=2, seed=4
    )
    groups = _pair_groups(pairs)
    assert len(np.unique(bipartite_components(groups))) == 2

    folds = grouped_folds(pairs["y"], groups, n_splits=4, random_state=0)

    _assert_no_patient_on_both_sides(groups, folds)
    tested = np.concatenate([test for _, test in folds])
    assert len(np.unique(tested)) == len(tested)
    assert len(tested) > len(pairs["y"]) // 3


def test_grouped_folds_one_column_never_splits_a_patient() -> None:
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 30, size=100)
    y = patients % 2

    folds = grouped_folds(y, patients, n_splits=5, random_state=0)

    for train, test in folds:
        assert not set(patients[train]) & set(patients[test])


def test_grouped_folds_without_groups_stratifies() -> None:
    y = np.array([0] * 30 + [1] * 10)

    folds = grouped_folds(y, None, n_splits=5, random_state=0)

    for _, test in folds:
        assert y[test].sum() == 2


def test_grouped_folds_raises_fewer_groups_than_folds() -> None:
    y = np.array([0, 1, 0, 1, 0, 1])
    patients = np.array(["a", "a", "b", "b", "c", "c"])

    with pytest.raises(ValueError, match="at least n_splits=5 patient groups, got 3"):
        grouped_folds(y, patients, n_splits=5)


def test_grouped_folds_raises_one_class_in_training_part() -> None:
    # One malignant patient: the fold that tests it trains on benign cases only.
    y = np.array([0, 0, 0, 0, 1, 1])
    patients = np.array(["a", "b", "c", "d", "e", "e"])

    with pytest.raises(ValueError, match="contains only class 0"):
        grouped_folds(y, patients, n_splits=3, random_state=0)
