"""Manifest reading, writing and validation."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mpmmu.data.manifest import (
    MANIFEST_COLUMNS,
    CaseRow,
    manifest_sha256,
    parse_roi,
    read_manifest,
    validate_manifest,
    validate_rows,
    write_manifest,
)
from mpmmu.errors import ManifestError

GOOD_ROW = {
    "case_id": "case-1",
    "patient_id": "patient-1",
    "mammogram_path": "mg.png",
    "ultrasound_path": "us.png",
    "label": "benign",
    "mammogram_roi": "10,20,30,40",
    "ultrasound_roi": "",
    "source": "test",
    "split": "train",
}


def _write_csv(path: Path, records: list[dict[str, str]], columns=MANIFEST_COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    return path


def _images(folder: Path) -> None:
    (folder / "mg.png").write_bytes(b"not read")
    (folder / "us.png").write_bytes(b"not read")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"label": "Malignant"}, r"row 2 \(line 3\), column 'label': label 'Malignant'"),
        ({"label": "suspicious"}, r"row 2 .*column 'label'.*use 'benign', 'malignant'"),
        ({"mammogram_roi": "1,2,3"}, r"row 2 .*column 'mammogram_roi'.*has 3 values, expected 4"),
        ({"ultrasound_roi": "1,2,-3,4"}, r"row 2 .*column 'ultrasound_roi'.*width -3 .* must be > 0"),
        ({"ultrasound_roi": "1,2,3,0"}, r"column 'ultrasound_roi'.*height 0"),
        ({"mammogram_roi": "-1,2,3,4"}, r"column 'mammogram_roi'.*x=-1.*>= 0"),
        ({"mammogram_roi": "a,b,c,d"}, r"column 'mammogram_roi'.*not four integers"),
        ({"mammogram_path": "", "ultrasound_path": "", "mammogram_roi": ""}, r"row 2 .*neither a mammogram_path nor"),
        ({"case_id": "case-1"}, r"row 2 .*column 'case_id'.*repeats row 1"),
        ({"case_id": ""}, r"row 2 .*column 'case_id'.*empty"),
        ({"patient_id": " "}, r"row 2 .*column 'patient_id'.*empty"),
        ({"split": "training"}, r"row 2 .*column 'split'.*'training'"),
        ({"mammogram_path": "", "mammogram_roi": "1,2,3,4"}, r"column 'mammogram_roi'.*no mammogram_path"),
        ({"source": "pseudo-pair", "patient_id": "just-one"}, r"column 'patient_id'.*pseudo-pair"),
    ],
)
def test_read_manifest_raises_invalid_row(tmp_path, change, match):
    _images(tmp_path)
    second = {**GOOD_ROW, "case_id": "case-2", **change}
    path = _write_csv(tmp_path / "m.csv", [GOOD_ROW, second])

    with pytest.raises(ManifestError, match=match):
        read_manifest(path)


def test_read_manifest_raises_missing_column(tmp_path):
    columns = [column for column in MANIFEST_COLUMNS if column != "label"]
    path = _write_csv(tmp_path / "m.csv", [GOOD_ROW], columns)

    with pytest.raises(ManifestError, match=r"missing column\(s\) 'label'; the header must list case_id"):
        read_manifest(path)


def test_read_manifest_raises_missing_file_when_checked(tmp_path):
    (tmp_path / "mg.png").write_bytes(b"")
    path = _write_csv(tmp_path / "m.csv", [GOOD_ROW])

    assert len(read_manifest(path)) == 1
    with pytest.raises(ManifestError, match=r"row 1 \(line 2\), column 'ultrasound_path': file .*us.png.* not found"):
        read_manifest(path, check_files=True)
    with pytest.raises(ManifestError, match="column 'ultrasound_path'"):
        validate_manifest(path)


def test_read_manifest_raises_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not found; build one with 'mpmmu data build'"):
        read_manifest(tmp_path / "absent.csv")


def test_read_manifest_resolves_relative_paths(tmp_path, monkeypatch):
    folder = tmp_path / "manifests"
    (folder / "images").mkdir(parents=True)
    row = {**GOOD_ROW, "mammogram_path": "images/mg.png", "ultrasound_path": "../us.png"}
    path = _write_csv(folder / "m.csv", [row])
    monkeypatch.chdir(tmp_path)  # the working directory must not matter

    (case,) = read_manifest(path)

    assert case.mammogram_path == folder / "images" / "mg.png"
    assert case.ultrasound_path == tmp_path / "us.png"


def test_read_manifest_parses_fields(tmp_path):
    row = {**GOOD_ROW, "label": "", "ultrasound_path": "", "split": ""}
    path = _write_csv(tmp_path / "m.csv", [row])

    (case,) = read_manifest(path)

    assert case.label is None
    assert case.y is None
    assert case.ultrasound_path is None
    assert case.split is None
    assert case.mammogram_roi == (10, 20, 30, 40)
    assert case.ultrasound_roi is None
    assert not case.pseudo_pair


def test_manifest_round_trip_preserves_rows(tmp_path):
    rows = [
        CaseRow("a", "p1", tmp_path / "mg.png", None, "malignant", (1, 2, 3, 4), None, "mini-mias", "train"),
        CaseRow("b", "p2", None, tmp_path / "us.png", "benign", None, (5, 6, 7, 8), "bus-bra", "fold3"),
        CaseRow("c", "p3+p1", tmp_path / "mg.png", tmp_path / "us.png", None, None, None, "pseudo-pair", None),
    ]

    absolute = read_manifest(write_manifest(rows, tmp_path / "out" / "abs.csv"))
    relative_path = write_manifest(rows, tmp_path / "out" / "rel.csv", relative_paths=True)
    relative = read_manifest(relative_path)

    assert absolute == rows
    assert relative == rows
    assert "../mg.png" in relative_path.read_text()
    assert relative[2].pseudo_pair


def test_write_manifest_raises_duplicate_case(tmp_path):
    row = CaseRow("a", "p1", tmp_path / "mg.png", None, "benign")

    with pytest.raises(ManifestError, match=r"row 2 .*'a' repeats row 1"):
        write_manifest([row, row], tmp_path / "m.csv")


def test_validate_rows_raises_neither_path():
    with pytest.raises(ManifestError, match="neither a mammogram_path nor an ultrasound_path"):
        validate_rows([CaseRow("a", "p1", None, None, "benign")])


def test_parse_roi_accepts_spaces_and_empty():
    assert parse_roi(" 1, 2 ,3,4 ") == (1, 2, 3, 4)
    assert parse_roi("") is None


def test_manifest_sha256_changes_with_content(tmp_path):
    rows = [CaseRow("a", "p1", tmp_path / "mg.png", None, "benign")]
    path = write_manifest(rows, tmp_path / "m.csv")
    first = manifest_sha256(path)

    write_manifest([rows[0].with_split("test")], path)

    assert len(first) == 64
    assert manifest_sha256(path) != first
