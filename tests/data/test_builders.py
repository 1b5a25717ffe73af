"""BUS-BRA and mini-MIAS manifest builders, on the real data folders."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from mpmmu.data.bus_bra import build_bus_bra, bus_bra_author_kfold, load_bus_bra_folds
from mpmmu.data.manifest import read_manifest, write_manifest
from mpmmu.data.mini_mias import build_mini_mias, mias_laterality, mias_roi, mias_woman, parse_info
from mpmmu.errors import ManifestError

MISMATCHED_HEIGHT = {"bus_0856-l", "bus_0857-r", "bus_0912-l", "bus_0990-l"}


@pytest.fixture(scope="module")
def bus_bra(bus_bra_dir):
    return build_bus_bra(bus_bra_dir)


@pytest.fixture(scope="module")
def mini_mias(mini_mias_dir):
    return build_mini_mias(mini_mias_dir)


def test_build_bus_bra_counts(bus_bra):
    rows = bus_bra.rows
    labels = Counter(row.label for row in rows)

    assert len(rows) == 1875
    assert len({row.patient_id for row in rows}) == 1064
    assert labels == {"benign": 1268, "malignant": 607}
    assert {row.source for row in rows} == {"bus-bra"}


def test_build_bus_bra_fields(bus_bra):
    first = bus_bra.rows[0]

    assert first.case_id == "bus_0001-l"
    assert first.patient_id == "busbra-1"
    assert first.label == "malignant"
    assert first.ultrasound_roi == (91, 24, 103, 79)
    assert first.mammogram_path is None
    assert first.ultrasound_path.is_absolute()
    assert first.ultrasound_path.is_file()
    assert first.split is None


def test_build_bus_bra_flags_size_mismatch(bus_bra):
    flagged = {warning.split(":")[0] for warning in bus_bra.warnings}

    assert bus_bra.counts["size_mismatch"] == 4
    assert flagged == MISMATCHED_HEIGHT


def test_build_bus_bra_rois_fit_png(bus_bra):
    from PIL import Image

    for row in bus_bra.rows:
        if row.case_id in MISMATCHED_HEIGHT:
            width, height = Image.open(row.ultrasound_path).size
            x, y, box_width, box_height = row.ultrasound_roi
            assert x + box_width <= width
            assert y + box_height <= height


def test_build_bus_bra_raises_missing_folder(tmp_path):
    with pytest.raises(ManifestError, match=r"bus_data.csv' not found; point --data or MPMMU_DATA"):
        build_bus_bra(tmp_path)


def test_bus_bra_author_kfold_is_patient_wise(bus_bra, bus_bra_dir):
    folds = bus_bra_author_kfold(list(bus_bra.rows), bus_bra_dir, k=5)
    test_patients = [{row.patient_id for row in test} for _, test in folds]

    assert len(folds) == 5
    assert sum(len(test) for _, test in folds) == 1875
    for i, patients in enumerate(test_patients):
        for other in test_patients[i + 1 :]:
            assert not patients & other
    assert load_bus_bra_folds(bus_bra_dir)["bus_0001-l"] == 3
    assert all(row.split == "fold3" for row in folds[2][1])


def _located_findings_from_text(info_text: str) -> list[tuple[str, str]]:
    # An independent reading of Info.txt: severity followed by three integers.
    pattern = re.compile(r"^(mdb\d{3})\s+[FGD]\s+\w+\s+([BM])\s+(\d+)\s+(\d+)\s+(\d+)\s*$", re.MULTILINE)
    return [(match.group(1), match.group(2)) for match in pattern.finditer(info_text)]


def test_build_mini_mias_counts_match_info(mini_mias, mini_mias_dir):
    located = _located_findings_from_text((mini_mias_dir / "Info.txt").read_text(encoding="latin-1"))
    expected = Counter("malignant" if severity == "M" else "benign" for reference, severity in located
                       if reference not in ("mdb212", "mdb214"))

    assert len(located) == 119
    assert len(mini_mias.rows) == 117
    assert Counter(row.label for row in mini_mias.rows) == expected
    assert mini_mias.counts["unlocated_findings"] == 4
    assert mini_mias.counts["normal_images"] == 207
    assert mini_mias.counts["images"] == 322
    assert mini_mias.counts["off_breast"] == 2


def test_build_mini_mias_drops_off_breast(mini_mias, mini_mias_dir):
    kept = build_mini_mias(mini_mias_dir, off_breast="keep")
    dropped_ids = {row.case_id for row in kept.rows} - {row.case_id for row in mini_mias.rows}

    assert dropped_ids == {"mdb212-1", "mdb214-1"}
    assert len(kept.rows) == 119
    assert all("film background" in warning for warning in mini_mias.warnings)


def test_build_mini_mias_keeps_both_mdb144_findings(mini_mias):
    mdb144 = {row.case_id: row.label for row in mini_mias.rows if row.case_id.startswith("mdb144")}

    assert mdb144 == {"mdb144-1": "benign", "mdb144-2": "malignant"}


def test_build_mini_mias_skips_unlocated(mini_mias):
    references = {row.case_id.split("-")[0] for row in mini_mias.rows}

    assert not references & {"mdb059", "mdb216", "mdb233", "mdb245"}


def test_build_mini_mias_fields(mini_mias):
    rows = {row.case_id: row for row in mini_mias.rows}
    first = rows["mdb001-1"]

    # Info.txt: x 535, y 425 from the bottom, radius 197 -> side 591 centred on row 1024 - 425.
    assert first.mammogram_roi == (240, 304, 591, 591)
    assert first.patient_id == "mias-woman-1"
    assert first.label == "benign"
    assert first.ultrasound_path is None
    assert rows["mdb002-1"].patient_id == "mias-woman-1"
    # mdb144-1 sits 30 pixels from the top edge: the 128-pixel square shifts down into the image.
    assert rows["mdb144-1"].mammogram_roi == (169, 0, 128, 128)


def test_build_mini_mias_rois_inside_image(mini_mias):
    for row in mini_mias.rows:
        x, y, width, height = row.mammogram_roi
        assert width == height >= 128
        assert x >= 0
        assert y >= 0
        assert x + width <= 1024
        assert y + height <= 1024


def test_mini_mias_manifest_round_trip(mini_mias, tmp_path):
    path = write_manifest(list(mini_mias.rows), tmp_path / "mini_mias.csv")

    assert read_manifest(path, check_files=True) == list(mini_mias.rows)


def test_parse_info_reads_note_rows(mini_mias_dir):
    findings = {(f.reference, f.index): f for f in parse_info(mini_mias_dir / "Info.txt")}

    assert findings[("mdb216", 1)].severity == "M"
    assert not findings[("mdb216", 1)].located
    assert not findings[("mdb059", 1)].located
    assert findings[("mdb226", 3)].x == 531
    assert findings[("mdb003", 1)].severity is None


def test_parse_info_raises_missing_severity(tmp_path):
    info = tmp_path / "Info.txt"
    info.write_text("mdb001 G CIRC 535 425 197\n")

    with pytest.raises(ManifestError, match="line 1: abnormal finding .* lacks severity B/M"):
        parse_info(info)


@pytest.mark.parametrize(("number", "woman", "side"), [(1, 1, "L"), (2, 1, "R"), (321, 161, "L"), (322, 161, "R")])
def test_mias_woman_and_laterality(number, woman, side):
    assert mias_woman(number) == woman
    assert mias_laterality(number) == side


def test_mias_roi_shrinks_to_image():
    assert mias_roi(50, 50, 400, (1024, 1024)) == (0, 0, 1024, 1024)
    assert mias_roi(1000, 1000, 10, (1024, 1024)) == (896, 0, 128, 128)
