"""Tests of ``mpmmu study analyse`` on a ratings CSV converted from the Van Dyke study."""

from __future__ import annotations

import csv
import json
import re

import pytest

from mpmmu.cli import main


@pytest.fixture()
def vandyke_ratings(mrmc_dir, tmp_path):
    """The Van Dyke study rewritten with mpmmu's column names."""
    path = tmp_path / "ratings.csv"
    with (
        (mrmc_dir / "vandyke" / "RJafroc_RocData.csv").open(newline="") as source,
        path.open("w", newline="") as target,
    ):
        writer = csv.writer(target)
        writer.writerow(["reader_id", "modality", "case_id", "truth", "rating"])
        for row in csv.DictReader(source):
            modality = "cine-MRI" if row["treatment"] == "1" else "spin-echo"
            writer.writerow(
                [f"reader-{row['reader']}", modality, row["case"], row["truth"], row["rating"]]
            )
    return path


def test_study_analyse_json_reports_published_numbers(vandyke_ratings, capsys):
    assert main(["study", "analyse", "--ratings", str(vandyke_ratings), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["modality_auc"]["spin-echo"] == pytest.approx(0.89703704, abs=5e-9)
    assert summary["modality_auc"]["cine-MRI"] == pytest.approx(0.94083736, abs=5e-9)
    random = summary["analyses"]["or_random_readers_random_cases"]
    assert random["statistic"] == pytest.approx(4.456319, abs=5e-7)
    assert random["ddf"] == pytest.approx(15.25967, abs=5e-6)
    assert random["p_value"] == pytest.approx(0.05166569, abs=5e-9)
    comparison = random["comparisons"][0]
    assert (comparison["modality_a"], comparison["modality_b"]) == ("spin-echo", "cine-MRI")
    assert comparison["difference"] == pytest.approx(-0.04380032, abs=5e-9)
    assert comparison["ci_low"] == pytest.approx(-0.0879594986, abs=5e-11)
    assert comparison["ci_high"] == pytest.approx(0.0003588544, abs=5e-11)
    assert summary["analyses"]["or_fixed_readers"]["ddf"] is None
    assert summary["analyses"]["or_fixed_cases"]["ddf"] == 4
    assert summary["analyses"]["dbm_fixed_readers"]["p_value"] == pytest.approx(
        0.021034969, abs=5e-10
    )
    assert set(summary["analyses"]) == {
        "or_random_readers_random_cases",
        "or_fixed_readers",
        "or_fixed_cases",
        "dbm_random_readers_random_cases",
        "dbm_fixed_readers",
        "dbm_fixed_cases",
    }


def test_study_analyse_delong_covariance(vandyke_ratings, capsys):
    assert (
        main(
            [
                "study",
                "analyse",
                "--ratings",
                str(vandyke_ratings),
                "--json",
                "--covariance",
                "delong",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    random = summary["analyses"]["or_random_readers_random_cases"]
    assert random["covariance"] == "delong"
    assert random["statistic"] == pytest.approx(4.484854, abs=5e-7)
    assert summary["analyses"]["dbm_random_readers_random_cases"]["covariance"] == "jackknife"


def test_study_analyse_table(vandyke_ratings, capsys):
    assert main(["study", "analyse", "--ratings", str(vandyke_ratings)]) == 0
    output = capsys.readouterr().out
    assert "reader-4" in output
    assert re.search(r"reader average\s+0\.8970\s+0\.9408", output)
    assert "F(1, 15.26) = 4.4563, p = 0.05167" in output
    assert "spin-echo - cine-MRI" in output
    assert "(-0.08796, 0.00036)" in output


def test_study_analyse_bad_rating_is_one_line_error(tmp_path, capsys):
    path = tmp_path / "ratings.csv"
    path.write_text("reader_id,modality,case_id,truth,rating\n1,A,1,0,3\n1,A,2,1,high\n")
    assert main(["study", "analyse", "--ratings", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "mpmmu study: error: rating must be a number, got 'high' on ratings.csv line 3"


def test_study_analyse_missing_column_is_one_line_error(tmp_path, capsys):
    path = tmp_path / "ratings.csv"
    path.write_text("reader,modality,case_id,rating\n1,A,1,3\n")
    assert main(["study", "analyse", "--ratings", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "column 'truth' is missing" in error
    assert len(error.splitlines()) == 1


def test_study_without_subcommand_prints_help(capsys):
    assert main(["study"]) == 2
    assert "analyse" in capsys.readouterr().out
