"""Patient-level stratified splits and k-fold."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from mpmmu.data.bus_bra import build_bus_bra_manifest
from mpmmu.data.manifest import CaseRow
from mpmmu.data.mini_mias import build_mini_mias_manifest
from mpmmu.data.splits import patient_kfold, patient_split, patient_strata


@pytest.fixture(scope="module")
def real_rows(bus_bra_dir, mini_mias_dir):
    return {"bus-bra": build_bus_bra_manifest(bus_bra_dir), "mini-mias": build_mini_mias_manifest(mini_mias_dir)}


def _splits_of_patients(rows):
    splits = defaultdict(set)
    for row in rows:
        splits[row.patient_id].add(row.split)
    return splits


@pytest.mark.parametrize("source", ["bus-bra", "mini-mias"])
def test_patient_split_no_patient_crosses(real_rows, source):
    rows = patient_split(real_rows[source], seed=3)

    crossing = [patient for patient, splits in _splits_of_patients(rows).items() if len(splits) > 1]

    assert crossing == []
    assert {row.split for row in rows} == {"train", "val", "test"}
    assert [row.case_id for row in rows] == [row.case_id for row in real_rows[source]]


def test_patient_split_ratios_and_strata(real_rows):
    rows = patient_split(real_rows["bus-bra"], seed=0)
    strata = patient_strata(rows)
    patients = {row.patient_id: row.split for row in rows}
    per_split = Counter((split, strata[patient]) for patient, split in patients.items())

    # BUS-BRA has 722 benign and 342 malignant patients; each stratum is cut 7:2:1 to within one.
    for stratum, total in (("benign", 722), ("malignant", 342)):
        sizes = [per_split[(split, stratum)] for split in ("train", "val", "test")]
        assert sum(sizes) == total
        for size, share in zip(sizes, (0.7, 0.2, 0.1)):
            assert abs(size - share * total) < 1


def test_patient_split_reproducible_by_seed(real_rows):
    first = patient_split(real_rows["bus-bra"], seed=7)
    again = patient_split(real_rows["bus-bra"], seed=7)
    other = patient_split(real_rows["bus-bra"], seed=8)

    assert [row.split for row in first] == [row.split for row in again]
    assert [row.split for row in first] != [row.split for row in other]


def test_patient_split_mixed_patient_is_malignant():
    path = Path("/images/x.png")
    rows = [
        CaseRow("a", "p1", path, None, "benign"),
        CaseRow("b", "p1", path, None, "malignant"),
        CaseRow("c", "p2", path, None, "benign"),
        CaseRow("d", "p3", path, None, None),
    ]

    assert patient_strata(rows) == {"p1": "malignant", "p2": "benign", "p3": "unknown"}
    split = patient_split(rows, (1.0, 0.0, 0.0))
    assert {row.split for row in split} == {"train"}


def test_patient_split_raises_bad_ratios():
    with pytest.raises(ValueError, match=r"summing to 1, got \(0.7, 0.2, 0.2\)"):
        patient_split([], (0.7, 0.2, 0.2))


def test_patient_kfold_no_patient_crosses(real_rows):
    rows = real_rows["bus-bra"]
    folds = patient_kfold(rows, k=5, seed=1)

    test_ids = [row.case_id for _, test in folds for row in test]
    assert sorted(test_ids) == sorted(row.case_id for row in rows)
    for train, test in folds:
        assert not {row.patient_id for row in train} & {row.patient_id for row in test}
        share = sum(row.label == "malignant" for row in test) / len(test)
        assert 0.27 < share < 0.38  # 607 / 1875 = 0.32 overall


def test_patient_kfold_reproducible_by_seed(real_rows):
    rows = real_rows["mini-mias"]

    first = [[row.case_id for row in test] for _, test in patient_kfold(rows, 5, seed=2)]
    again = [[row.case_id for row in test] for _, test in patient_kfold(rows, 5, seed=2)]

    assert first == again


def test_patient_kfold_raises_too_few_patients():
    rows = [CaseRow("a", "p1", Path("/x.png"), None, "benign")]

    with pytest.raises(ValueError, match="k = 5 folds need at least 5 patients, got 1"):
        patient_kfold(rows, 5)
