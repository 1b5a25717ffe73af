"""Tests of the reader-study file formats: long CSV, LRC, iMRMC and RJafroc CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mpmmu.errors import MrmcDataError
from mpmmu.metrics.mrmc import MrmcData, reader_aucs
from mpmmu.metrics.mrmc_io import (
    read_imrmc,
    read_long_csv,
    read_lrc,
    write_imrmc,
    write_long_csv,
    write_rjafroc_csv,
)


def _assert_same_study(left: MrmcData, right: MrmcData) -> None:
    assert left.readers == right.readers
    assert left.modalities == right.modalities
    np.testing.assert_array_equal(left.truth, right.truth)
    np.testing.assert_array_equal(left.ratings, right.ratings)


def _small_study() -> MrmcData:
    return MrmcData(
        readers=("anna", "ben"),
        modalities=("mammography", "fusion"),
        case_ids=("case-a", "case-b", "case-c", "case-d"),
        truth=np.array([0, 1, 0, 1], dtype=np.int8),
        ratings=np.array(
            [[[1, 4, 2, 3], [2, 5, 1, 5]], [[1, 5, 1, 4], [3, 4, 2, 5.5]]], dtype=float
        ),
    )


@pytest.mark.parametrize(
    "study, lrc_name", [("vandyke", "RJafroc_RocData.lrc"), ("fedroc", "RJafroc_MRMCRuns_FED.lrc")]
)
def test_read_lrc_matches_long_csv_aucs(mrmc_dir, study, lrc_name):
    csv_name = "RJafroc_RocData.csv" if study == "vandyke" else "FedRoc_long.csv"
    from_csv = read_long_csv(mrmc_dir / study / csv_name)
    from_lrc = read_lrc(mrmc_dir / study / lrc_name)
    assert from_lrc.readers == from_csv.readers
    assert from_lrc.modalities == from_csv.modalities
    assert (from_lrc.n_normal, from_lrc.n_abnormal) == (from_csv.n_normal, from_csv.n_abnormal)
    np.testing.assert_allclose(reader_aucs(from_lrc), reader_aucs(from_csv), atol=1e-12)


def test_read_imrmc_matches_long_csv(mrmc_dir):
    from_csv = read_long_csv(mrmc_dir / "vandyke" / "RJafroc_RocData.csv")
    from_imrmc = read_imrmc(mrmc_dir / "vandyke" / "RJafroc_RocData.imrmc")
    _assert_same_study(from_imrmc, from_csv)
    assert from_imrmc.case_ids == from_csv.case_ids
    np.testing.assert_allclose(reader_aucs(from_imrmc), reader_aucs(from_csv), atol=1e-12)


def test_write_imrmc_round_trip(tmp_path):
    study = _small_study()
    path = write_imrmc(study, tmp_path / "study.imrmc")
    restored = read_imrmc(path)
    _assert_same_study(restored, study)
    assert restored.case_ids == study.case_ids
    assert "N0:2" in path.read_text()


def test_write_long_csv_round_trip(tmp_path):
    study = _small_study()
    restored = read_long_csv(write_long_csv(study, tmp_path / "study.csv"))
    _assert_same_study(restored, study)
    assert restored.case_ids == study.case_ids


def test_write_rjafroc_csv_renumbers_cases(tmp_path):
    study = _small_study()
    path = tmp_path / "rjafroc.csv"
    numbers = write_rjafroc_csv(study, path)
    assert numbers == {"case-a": 1, "case-b": 2, "case-c": 3, "case-d": 4}
    assert path.read_text().splitlines()[0] == "reader,treatment,case,truth,rating"
    restored = read_long_csv(path)
    _assert_same_study(restored, study)
    assert restored.case_ids == ("1", "2", "3", "4")


def test_write_rjafroc_csv_keeps_integer_cases(mrmc_dir, tmp_path):
    study = read_long_csv(mrmc_dir / "vandyke" / "RJafroc_RocData.csv")
    numbers = write_rjafroc_csv(study, tmp_path / "vandyke.csv")
    assert numbers["114"] == 114
    _assert_same_study(read_long_csv(tmp_path / "vandyke.csv"), study)


def test_read_lrc_small_direction_letters(tmp_path):
    path = tmp_path / "small.lrc"
    path.write_text(
        'small study\nR1\n "A" "B"\n L S\n'
        " 1 5 n1\n 2 4 n2\n*\n 3 1 a1\n 4 2 a2\n*\n"
        "R2\n 1 4 n1\n 3 5 n2\n*\n 4 2 a1\n 2 3 a2\n*\n#\n"
    )
    study = read_lrc(path)
    assert study.readers == ("R1", "R2")
    assert study.case_ids == ("n1", "n2", "a1", "a2")
    # Modality B is "S": smaller ratings are more suspicious, so ratings are negated.
    np.testing.assert_array_equal(study.ratings[1, 0], [-5, -4, -1, -2])
    assert reader_aucs(study)[1, 0] == 1.0


def test_read_lrc_raises_missing_end_marker(tmp_path):
    path = tmp_path / "cut.lrc"
    path.write_text('cut\nR1\n "A" "B"\n L L\n 1 5\n 2 4\n*\n 3 1\n 4 2\n*\n')
    with pytest.raises(MrmcDataError, match="without '#'"):
        read_lrc(path)


def test_read_lrc_raises_non_numeric_rating(tmp_path):
    path = tmp_path / "text.lrc"
    path.write_text('bad\nR1\n "A" "B"\n L L\n 1 high\n*\n 3 1\n*\n#\n')
    with pytest.raises(MrmcDataError, match="line 5: ratings must be numbers"):
        read_lrc(path)


def test_read_long_csv_raises_missing_column(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("reader_id,modality,case_id,rating\n1,A,1,3\n")
    with pytest.raises(MrmcDataError, match="column 'truth' is missing"):
        read_long_csv(path)


def test_read_long_csv_raises_empty_cell_with_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("reader_id,modality,case_id,truth,rating\n1,A,1,0,3\n1,A,2,,4\n")
    with pytest.raises(MrmcDataError, match="line 3: column 'truth' is empty"):
        read_long_csv(path)


def test_read_long_csv_raises_missing_file(tmp_path):
    with pytest.raises(MrmcDataError, match="cannot read ratings file"):
        read_long_csv(tmp_path / "absent.csv")


def test_read_imrmc_raises_header_count_mismatch(tmp_path):
    path = tmp_path / "study.imrmc"
    write_imrmc(_small_study(), path)
    path.write_text(path.read_text().replace("N0:2", "N0:3"))
    with pytest.raises(MrmcDataError, match="declares N0:3 but the data has 2"):
        read_imrmc(path)


def test_write_imrmc_raises_comma_in_label(tmp_path):
    study = _small_study()
    renamed = MrmcData(("a,b", "c"), study.modalities, study.case_ids, study.truth, study.ratings)
    with pytest.raises(MrmcDataError, match="contains a comma"):
        write_imrmc(renamed, tmp_path / "x.imrmc")


def test_read_imrmc_raises_case_without_truth(tmp_path):
    path = tmp_path / "study.imrmc"
    write_imrmc(_small_study(), path)
    lines = [line for line in path.read_text().splitlines() if line != "-1,case-b,truth,1"]
    Path(path).write_text("\n".join(lines) + "\n")
    with pytest.raises(MrmcDataError, match="case 'case-b' .* has no truth row"):
        read_imrmc(path)
