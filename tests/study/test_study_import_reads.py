"""Import of reads from a CSV: all-or-nothing checks, re-imports, and the messages of small or unfinished studies."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from mpmmu.cli import main
from mpmmu.data import write_synthetic_dataset
from mpmmu.errors import StudyStoreError
from mpmmu.study.export import import_reads_csv
from mpmmu.study.store import StudyStore

COLUMNS = ["reader", "case_id", "mode", "birads", "probability"]


def small_manifest(folder: Path, drop_malignant: int = 0) -> Path:
    """A manifest of 2 benign and 2 malignant synthetic cases, less ``drop_malignant`` malignant ones."""
    manifest = write_synthetic_dataset(folder, n_per_class=2, seed=5, size=64)
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    malignant = [row for row in rows if row["label"] == "malignant"]
    remaining = [row for row in rows if row not in malignant[:drop_malignant]]
    path = folder / "small.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(remaining)
    return path


def write_reads(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def create_study(manifest: Path, db: str, name: str = "s") -> list[str]:
    assert main(["study", "create", "--manifest", str(manifest), "--name", name, "--readers", "alice,bob", "--db", db]) == 0
    with StudyStore(db) as store:
        return [case.case_id for case in store.cases(store.study(name).id)]


def full_reads(case_ids: list[str], readers: tuple[str, ...] = ("alice", "bob")) -> list[list[object]]:
    rows: list[list[object]] = []
    for reader in readers:
        for index, case_id in enumerate(case_ids):
            rows.append([reader, case_id, "unaided", "3", 20 + index])
            rows.append([reader, case_id, "aided", "4A", 30 + index])
    return rows


@pytest.fixture
def study_db(tmp_path) -> tuple[str, list[str]]:
    db = str(tmp_path / "study.sqlite3")
    return db, create_study(small_manifest(tmp_path / "data"), db)


def locked_reads(db: str) -> list:
    with StudyStore(db) as store:
        return store.reads(store.study("s").id)


def test_import_reads_invalid_row_writes_nothing(study_db, tmp_path, capsys):
    db, cases = study_db
    rows = [["alice", cases[0], "unaided", "3", 10], ["alice", cases[0], "aided", "3", 15], ["alice", cases[1], "unaided", "4", 60]]
    path = write_reads(tmp_path / "reads.csv", rows)

    assert main(["study", "import-reads", "--study", "s", "--csv", str(path), "--db", db]) == 2
    error = capsys.readouterr().err
    assert "line 4" in error
    assert "BI-RADS category '4' is invalid" in error
    assert "no read was imported" in error
    assert locked_reads(db) == []

    rows[2][3] = "4A"
    write_reads(path, rows)
    assert main(["study", "import-reads", "--study", "s", "--csv", str(path), "--db", db]) == 0
    assert "3 reads locked, 0 rows skipped" in capsys.readouterr().out
    assert len(locked_reads(db)) == 3


def test_import_reads_lists_every_invalid_row(study_db, tmp_path):
    db, cases = study_db
    rows = [
        ["carol", cases[0], "unaided", "3", 10],
        ["alice", "no-such-case", "unaided", "3", 10],
        ["alice", cases[0], "sideways", "3", 10],
        ["alice", cases[0], "unaided", "3", 101],
        ["alice", cases[1], "aided", "3", 10],
        ["bob", cases[0], "unaided", "3", 10],
        ["bob", cases[0], "unaided", "2", 10],
    ]
    path = write_reads(tmp_path / "reads.csv", rows)
    with StudyStore(db) as store, pytest.raises(StudyStoreError, match="6 invalid rows") as caught:
        import_reads_csv(store, "s", path)
    message = str(caught.value)
    assert "line 2: reader 'carol' not found in the study" in message
    assert "line 3: case 'no-such-case' not found in the study" in message
    assert "line 4: read mode 'sideways' is invalid" in message
    assert "line 5: probability of malignancy '101' is invalid" in message
    assert f"line 6: reader 'alice' has an aided read of case {cases[1]!r} but no unaided read" in message
    assert "line 8: reader 'bob' has a second unaided read" in message
    assert "(first on line 7)" in message
    assert locked_reads(db) == []


def test_import_reads_reimport_skips_locked(study_db, tmp_path, capsys):
    db, cases = study_db
    path = write_reads(tmp_path / "reads.csv", full_reads(cases, ("alice",)))
    assert main(["study", "import-reads", "--study", "s", "--csv", str(path), "--db", db]) == 0
    assert f"{2 * len(cases)} reads locked, 0 rows skipped" in capsys.readouterr().out

    assert main(["study", "import-reads", "--study", "s", "--csv", str(path), "--db", db]) == 0
    assert f"0 reads locked, {2 * len(cases)} rows skipped as already locked" in capsys.readouterr().out
    assert len(locked_reads(db)) == 2 * len(cases)


def test_import_reads_aided_after_locked_unaided(study_db, tmp_path):
    db, cases = study_db
    with StudyStore(db) as store:
        import_reads_csv(store, "s", write_reads(tmp_path / "first.csv", [["alice", cases[0], "unaided", "3", 10]]))
        result = import_reads_csv(store, "s", write_reads(tmp_path / "second.csv", [["alice", cases[0], "aided", "3", 12]]))
    assert result.added == 1
    assert result.skipped == 0


def test_import_reads_raises_changed_locked_read(study_db, tmp_path):
    db, cases = study_db
    with StudyStore(db) as store:
        import_reads_csv(store, "s", write_reads(tmp_path / "first.csv", [["alice", cases[0], "unaided", "3", 10]]))
        changed = write_reads(tmp_path / "changed.csv", [["alice", cases[0], "unaided", "4B", 70], ["alice", cases[1], "unaided", "3", 5]])
        with pytest.raises(StudyStoreError, match=r"line 2: reader 'alice' already locked the unaided read .* as BI-RADS 3, probability 10"):
            import_reads_csv(store, "s", changed)
    assert len(locked_reads(db)) == 1


def test_record_read_raises_locked_naming_reader(study_db):
    db, cases = study_db
    with StudyStore(db) as store:
        alice = next(reader for reader in store.readers(store.study("s").id) if reader.name == "alice")
        store.record_read(alice.id, cases[0], "unaided", "3", 10, enforce_schedule=False)
        with pytest.raises(StudyStoreError, match="reader 'alice' has already locked the unaided read"):
            store.record_read(alice.id, cases[0], "unaided", "3", 10, enforce_schedule=False)


def test_import_reads_help_lists_columns(capsys):
    with pytest.raises(SystemExit):
        main(["study", "import-reads", "--help"])
    help_text = capsys.readouterr().out
    for column in (*COLUMNS, "reading_seconds"):
        assert f"\n  {column} " in help_text
    assert "4A" in help_text


def test_create_warns_too_few_cases(tmp_path, caplog):
    manifest = small_manifest(tmp_path / "data", drop_malignant=1)
    with caplog.at_level(logging.WARNING, logger="mpmmu.cli.study_store"):
        create_study(manifest, str(tmp_path / "study.sqlite3"))
    assert "1 malignant and 2 benign cases" in caplog.text
    assert "cannot get an MRMC analysis" in caplog.text


def test_create_no_warning_enough_cases(study_db, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mpmmu.cli.study_store"):
        create_study(small_manifest(tmp_path / "other"), str(tmp_path / "other.sqlite3"))
    assert "MRMC analysis" not in caplog.text


def test_analyse_raises_too_few_cases(tmp_path, capsys):
    db = str(tmp_path / "study.sqlite3")
    cases = create_study(small_manifest(tmp_path / "data", drop_malignant=1), db)
    path = write_reads(tmp_path / "reads.csv", full_reads(cases))
    assert main(["study", "import-reads", "--study", "s", "--csv", str(path), "--db", db]) == 0
    capsys.readouterr()

    assert main(["study", "analyse", "--study", "s", "--db", db]) == 2
    error = capsys.readouterr().err
    assert "DeLong's variance needs" not in error
    assert "needs at least 2 malignant and 2 benign cases, got 1 malignant and 2 benign" in error
    assert "create a new study from a manifest with more cases" in error


def test_export_warns_missing_reads(study_db, tmp_path, capsys, caplog):
    db, cases = study_db
    path = write_reads(tmp_path / "reads.csv", full_reads(cases[:1], ("alice",)))
    assert main(["study", "import-reads", "--study", "s", "--csv", str(path), "--db", db]) == 0
    out = tmp_path / "s.imrmc"
    with caplog.at_level(logging.WARNING, logger="mpmmu.study.export"):
        assert main(["study", "export", "--study", "s", "--format", "imrmc", "--out", str(out), "--db", db]) == 0
    expected = 2 * len(cases) * 2
    assert f"{expected - 2} of {expected} reads are missing" in caplog.text
    assert f"covers only 1 of 2 readers and 1 of {len(cases)} cases" in caplog.text
    assert out.exists()


def test_export_complete_study_no_warning(study_db, tmp_path, caplog):
    db, cases = study_db
    path = write_reads(tmp_path / "reads.csv", full_reads(cases))
    assert main(["study", "import-reads", "--study", "s", "--csv", str(path), "--db", db]) == 0
    with caplog.at_level(logging.WARNING, logger="mpmmu.study.export"):
        assert main(["study", "export", "--study", "s", "--format", "imrmc", "--out", str(tmp_path / "s.imrmc"), "--db", db]) == 0
    assert "reads are missing" not in caplog.text


def test_import_reads_errors_sorted_by_line(study_db, tmp_path):
    db, cases = study_db
    rows = [["alice", cases[1], "aided", "3", 10], ["carol", cases[0], "unaided", "3", 10]]
    with StudyStore(db) as store, pytest.raises(StudyStoreError) as caught:
        import_reads_csv(store, "s", write_reads(tmp_path / "reads.csv", rows))
    message = str(caught.value)
    assert message.index("line 2:") < message.index("line 3:")
