"""Class-matched pseudo-pairs inside each split."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from mpmmu.data.bus_bra import build_bus_bra_manifest
from mpmmu.data.manifest import CaseRow, read_manifest, write_manifest
from mpmmu.data.mini_mias import build_mini_mias_manifest
from mpmmu.data.pairing import make_pseudo_pairs, pair_groups, split_pair_patient
from mpmmu.data.splits import patient_split


@pytest.fixture(scope="module")
def split_sources(bus_bra_dir, mini_mias_dir):
    ultrasound = patient_split(build_bus_bra_manifest(bus_bra_dir), seed=0)
    mammogram = patient_split(build_mini_mias_manifest(mini_mias_dir), seed=0)
    return ultrasound, mammogram


def _components(pair: CaseRow) -> tuple[str, str]:
    us_case, _, mg_case = pair.case_id.partition("+")
    return us_case, mg_case


@pytest.mark.parametrize("design", ["ultrasound", "mammogram"])
def test_make_pseudo_pairs_matches_class_and_split(split_sources, design):
    ultrasound, mammogram = split_sources
    by_id = {row.case_id: row for row in (*ultrasound, *mammogram)}

    pairs = make_pseudo_pairs(ultrasound, mammogram, design, seed=0)

    for pair in pairs:
        us_case, mg_case = (by_id[case_id] for case_id in _components(pair))
        assert us_case.label == mg_case.label == pair.label
        assert us_case.split == mg_case.split == pair.split
        assert pair.ultrasound_path == us_case.ultrasound_path
        assert pair.mammogram_path == mg_case.mammogram_path
        assert pair.ultrasound_roi == us_case.ultrasound_roi
        assert pair.mammogram_roi == mg_case.mammogram_roi
        assert pair.patient_id == f"{us_case.patient_id}+{mg_case.patient_id}"
        assert pair.source == "pseudo-pair"
        assert pair.pseudo_pair


def test_make_pseudo_pairs_ultrasound_design_balances_reuse(split_sources):
    ultrasound, mammogram = split_sources

    pairs = make_pseudo_pairs(ultrasound, mammogram, "ultrasound", seed=0)

    assert sorted(_components(pair)[0] for pair in pairs) == sorted(row.case_id for row in ultrasound)
    patient_of = {row.case_id: row.patient_id for row in ultrasound}
    patients_per_mammogram = {
        (pair.split, pair.label, _components(pair)[1], patient_of[_components(pair)[0]]) for pair in pairs
    }
    reuse = Counter(key[:3] for key in patients_per_mammogram)
    for split in ("train", "val", "test"):
        for label in ("benign", "malignant"):
            available = {row.case_id for row in mammogram if row.split == split and row.label == label}
            counts = [reuse[(split, label, case_id)] for case_id in available]
            assert min(counts) >= 1
            assert max(counts) - min(counts) <= 1


def test_make_pseudo_pairs_mammogram_design_one_pair_each(split_sources):
    ultrasound, mammogram = split_sources

    pairs = make_pseudo_pairs(ultrasound, mammogram, "mammogram", seed=0)
    us_cases = [_components(pair)[0] for pair in pairs]

    assert sorted(_components(pair)[1] for pair in pairs) == sorted(row.case_id for row in mammogram)
    assert len(set(us_cases)) == len(us_cases)


@pytest.mark.parametrize("design", ["ultrasound", "mammogram"])
def test_make_pseudo_pairs_links_one_mammogram_patient(split_sources, design):
    ultrasound, mammogram = split_sources

    pairs = make_pseudo_pairs(ultrasound, mammogram, design, seed=0)
    us_groups, mg_groups = pair_groups(pairs)

    partners: dict[str, set[str]] = {}
    for us_patient, mg_patient in zip(us_groups, mg_groups):
        partners.setdefault(us_patient, set()).add(mg_patient)
    assert all(len(mg_patients) == 1 for mg_patients in partners.values())


def test_make_pseudo_pairs_reproducible_by_seed(split_sources):
    ultrasound, mammogram = split_sources

    first = make_pseudo_pairs(ultrasound, mammogram, "ultrasound", seed=4)
    again = make_pseudo_pairs(ultrasound, mammogram, "ultrasound", seed=4)
    other = make_pseudo_pairs(ultrasound, mammogram, "ultrasound", seed=5)

    assert first == again
    assert first != other


def test_pair_groups_recovers_both_patients(split_sources, tmp_path):
    ultrasound, mammogram = split_sources
    pairs = make_pseudo_pairs(ultrasound, mammogram, "ultrasound", seed=0)
    pairs = read_manifest(write_manifest(pairs, tmp_path / "pairs.csv"))

    us_groups, mg_groups = pair_groups(pairs + [ultrasound[0]])

    assert us_groups[0].startswith("busbra-")
    assert mg_groups[0].startswith("mias-woman-")
    assert set(us_groups[:-1]) == {row.patient_id for row in ultrasound}
    assert set(mg_groups[:-1]) == {row.patient_id for row in mammogram}
    assert us_groups[-1] == mg_groups[-1] == ultrasound[0].patient_id


def test_make_pseudo_pairs_warns_without_partner(caplog):
    image = Path("/images/x.png")
    ultrasound = [CaseRow("u1", "pu", None, image, "malignant", split="test")]
    mammogram = [CaseRow("m1", "pm", image, None, "benign", split="test")]

    with caplog.at_level(logging.WARNING):
        pairs = make_pseudo_pairs(ultrasound, mammogram, "ultrasound")

    assert pairs == []
    assert "no partner" in caplog.text


def test_make_pseudo_pairs_raises_unsplit_rows():
    image = Path("/images/x.png")
    rows = [CaseRow("u1", "pu", None, image, "benign")]

    with pytest.raises(ValueError, match="'u1' has no split; split the source rows before pairing"):
        make_pseudo_pairs(rows, [], "ultrasound")


def test_make_pseudo_pairs_raises_unknown_design():
    with pytest.raises(ValueError, match="design must be 'ultrasound' or 'mammogram', got 'both'"):
        make_pseudo_pairs([], [], "both")


def test_split_pair_patient_raises_without_plus():
    assert split_pair_patient("a+b") == ("a", "b")
    with pytest.raises(ValueError, match="got 'ab'"):
        split_pair_patient("ab")
