"""End to end with the command line: 3 readers x 20 cases created, read, analysed and exported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mpmmu.cli import main
from mpmmu.data.manifest import read_manifest
from mpmmu.metrics import dbm_analysis, or_analysis, read_imrmc, roc_auc
from mpmmu.study.design import BIRADS_CATEGORIES


def birads_for(probability: int) -> str:
    # Map a simulated probability onto the six categories the study offers.
    edges = (2, 10, 30, 50, 95)
    return BIRADS_CATEGORIES[int(np.searchsorted(edges, probability, side="right"))]


def simulate_reads(manifest: Path, readers: list[str], seed: int) -> tuple[list[dict], dict[str, float]]:
    """Reads whose probability tracks the truth, more closely when aided; plus AI probabilities."""
    rng = np.random.default_rng(seed)
    rows = read_manifest(manifest)
    ai = {row.case_id: float(np.clip(0.5 + (0.25 if row.y else -0.25) + rng.normal(0, 0.2), 0.01, 0.99)) for row in rows}
    reads = []
    for reader in readers:
        for row in rows:
            unaided = int(np.clip(50 + (15 if row.y else -15) + rng.normal(0, 25), 0, 100))
            aided = int(np.clip(0.5 * unaided + 50 * ai[row.case_id] + rng.normal(0, 5), 0, 100))
            for mode, probability in (("aided", aided), ("unaided", unaided)):
                reads.append(
                    {"reader": reader, "case_id": row.case_id, "mode": mode, "birads": birads_for(probability), "probability": probability, "reading_seconds": f"{rng.uniform(5, 60):.1f}"}
                )
    return reads, ai


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(capsys, *args: str) -> str:
    status = main([*args])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return captured.out


def test_cli_study_end_to_end(synthetic_manifest, tmp_path, capsys, store_url):
    db = store_url
    reads, ai = simulate_reads(synthetic_manifest, ["R1", "R2", "R3"], seed=1)
    predictions = write_csv(
        tmp_path / "predictions.csv",
        [{"case_id": case_id, "label": "", "p_malignant": f"{p:.6f}", "model_version": "test-model"} for case_id, p in ai.items()],
    )

    out = run(capsys, "study", "create", "--manifest", str(synthetic_manifest), "--name", "e2e", "--readers", "3", "--seed", "7", "--predictions", str(predictions), "--db", db)
    assert "20 cases, 3 readers" in out
    assert "AI results stored for 20 of 20 cases" in out
    codes = dict(line.split(",") for line in out.splitlines()[out.splitlines().index("reader,code") + 1 :])
    assert sorted(codes) == ["R1", "R2", "R3"]

    out = run(capsys, "study", "status", "--study", "e2e", "--db", db)
    assert "R1\t0/40 reads" in out

    out = run(capsys, "study", "import-reads", "--study", "e2e", "--csv", str(write_csv(tmp_path / "reads.csv", reads)), "--db", db)
    assert "120 reads locked" in out
    assert "R3\t40/40 reads\tfinished" in run(capsys, "study", "status", "--study", "e2e", "--db", db)

    summary = json.loads(run(capsys, "study", "analyse", "--study", "e2e", "--db", db, "--json"))
    assert summary["n_readers"] == 3
    assert summary["n_cases"] == 20
    truth = {row.case_id: row.y for row in read_manifest(synthetic_manifest)}
    for reader in ("R1", "R2", "R3"):
        for mode in ("unaided", "aided"):
            mine = [r for r in reads if r["reader"] == reader and r["mode"] == mode]
            expected = roc_auc([truth[r["case_id"]] for r in mine], [r["probability"] for r in mine])
            assert summary["reader_auc"][mode][reader] == pytest.approx(expected)
    assert summary["ai_alone"]["auc"] == pytest.approx(roc_auc([truth[c] for c in ai], list(ai.values())))
    assert {key.split(":")[0] for key in summary["analyses"]} == {"OR, jackknife", "OR, DeLong", "DBM"}
    assert len(summary["analyses"]) == 9
    assert len(summary["operating_points"]) == 6
    assert len(summary["changes_of_mind"]) == 3

    table = run(capsys, "study", "analyse", "--study", "e2e", "--db", db)
    assert "OR (jackknife): random readers, random cases" in table
    assert "AI alone: AUC" in table
    assert "Changes of mind" in table

    imrmc = tmp_path / "study.imrmc"
    run(capsys, "study", "export", "--study", "e2e", "--format", "imrmc", "--out", str(imrmc), "--db", db)
    data = read_imrmc(imrmc)
    assert data.readers == ("R1", "R2", "R3")
    assert set(data.modalities) == {"aided", "unaided"}
    assert len(data.case_ids) == 20
    # The exported file gives the same MRMC result as the study analysed in place.
    or_random = or_analysis(data).random
    key = "OR, jackknife: random_readers_random_cases"
    assert or_random.p_value == pytest.approx(summary["analyses"][key]["p_value"])
    assert dbm_analysis(data).random.p_value == pytest.approx(summary["analyses"]["DBM: random_readers_random_cases"]["p_value"])

    rjafroc = tmp_path / "rjafroc.csv"
    run(capsys, "study", "export", "--study", "e2e", "--format", "rjafroc", "--out", str(rjafroc), "--db", db)
    with rjafroc.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["reader", "treatment", "case", "truth", "rating"]
    assert len(rows) == 120
    key_file = tmp_path / "rjafroc-case-numbers.csv"
    assert key_file.exists()

    reads_csv = tmp_path / "reads-export.csv"
    run(capsys, "study", "export", "--study", "e2e", "--format", "reads", "--out", str(reads_csv), "--db", db)
    with reads_csv.open() as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == 120
    assert {row["ai_p_malignant_shown"] != "" for row in exported if row["mode"] == "aided"} == {True}


def test_cli_study_analyse_raises_incomplete_reads(synthetic_manifest, tmp_path, capsys):
    db = str(tmp_path / "study.sqlite3")
    run(capsys, "study", "create", "--manifest", str(synthetic_manifest), "--name", "partial", "--readers", "Ann,Ben", "--db", db)
    reads, _ = simulate_reads(synthetic_manifest, ["Ann"], seed=2)
    run(capsys, "study", "import-reads", "--study", "partial", "--csv", str(write_csv(tmp_path / "r.csv", reads)), "--db", db)
    assert main(["study", "analyse", "--study", "partial", "--db", db]) == 2
    assert "unfinished reader: Ben 0/40" in capsys.readouterr().err


def test_cli_study_codes_reissue(synthetic_manifest, tmp_path, capsys):
    db = str(tmp_path / "study.sqlite3")
    run(capsys, "study", "create", "--manifest", str(synthetic_manifest), "--name", "c", "--readers", "2", "--db", db)
    out = run(capsys, "study", "codes", "--study", "c", "--reader", "R2", "--db", db)
    assert out.splitlines()[0] == "reader,code"
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["R2"]
