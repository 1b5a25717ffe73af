"""Study store on SQLite and PostgreSQL: creation, seeded orders, codes, reading flow, lock rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mpmmu.data.manifest import CaseRow, read_manifest
from mpmmu.errors import StudyStoreError
from mpmmu.study.database import file_sha256
from mpmmu.study.records import Finished, Task, Waiting
from mpmmu.study.store import StudyStore


class Clock:
    """A settable clock, so a test can move past a crossover washout."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def make_rows(n: int = 8) -> list[CaseRow]:
    return [
        CaseRow(f"case-{k:02d}", f"patient-{k}", None, None, "malignant" if k % 2 else "benign", ultrasound_roi=(1, 2, 30, 40))
        for k in range(n)
    ]


def no_hashes(rows: list[CaseRow]) -> dict[str, tuple[None, None]]:
    return {row.case_id: (None, None) for row in rows}


def read_everything(store: StudyStore, reader_id: int, limit: int = 1000) -> list[Task]:
    tasks = []
    for _ in range(limit):
        task = store.next_task(reader_id)
        if not isinstance(task, Task):
            break
        tasks.append(task)
        store.record_read(reader_id, task.case.case_id, task.mode, "4B" if task.case.truth else "3", 70 if task.case.truth else 20)
    return tasks


def test_create_study_stores_cases_readers_and_order(store_url):
    rows = make_rows()
    with StudyStore(store_url) as store:
        info, codes = store.create_study("pilot", rows, readers=["Ann", "Ben"], seed=11, image_hashes=no_hashes(rows))
        assert info.n_cases == 8
        assert info.n_readers == 2
        assert sorted(codes) == ["Ann", "Ben"]
        cases = store.cases(info.id)
        assert [case.case_id for case in cases] == [row.case_id for row in rows]
        assert cases[0].ultrasound_roi == (1, 2, 30, 40)
        readers = store.readers(info.id)
        order = store.reading_order(readers[0].id)
        assert list(order) == [1]
        assert sorted(case_id for case_id, _ in order[1]) == sorted(row.case_id for row in rows)
        assert {condition for _, condition in order[1]} == {"sequential"}


def test_create_study_order_reproducible_from_seed(tmp_path):
    rows = make_rows(12)
    orders = []
    for run in range(2):
        with StudyStore(tmp_path / f"run{run}.sqlite3") as store:
            info, _ = store.create_study("s", rows, readers=3, seed=5, image_hashes=no_hashes(rows))
            orders.append([store.reading_order(reader.id) for reader in store.readers(info.id)])
    assert orders[0] == orders[1]
    assert orders[0][0] != orders[0][1], "two readers drew the same order"


def test_create_study_hashes_image_files(synthetic_manifest, tmp_path):
    rows = read_manifest(synthetic_manifest)[:4]
    with StudyStore(tmp_path / "s.sqlite3") as store:
        info, _ = store.create_study("hashes", rows, readers=1)
        cases = store.cases(info.id)
    assert cases[0].mammogram_sha256 == file_sha256(rows[0].mammogram_path)
    assert cases[0].ultrasound_sha256 == file_sha256(rows[0].ultrasound_path)


@pytest.mark.parametrize(
    "rows, kwargs, message",
    [
        (make_rows()[:1] * 2, {}, "case ids must be unique"),
        ([CaseRow("a", "p", None, None, None), *make_rows()], {}, "no reference label"),
        ([row for row in make_rows() if row.label == "benign"], {}, "all of one class"),
        (make_rows(), {"design": "parallel"}, "design 'parallel' is unknown"),
        (make_rows(), {"design": "sequential", "washout_days": 7}, "no washout"),
        (make_rows(), {"readers": ["R1", "R1"]}, "unique"),
        (make_rows(), {"readers": ["a,b"]}, "without commas"),
        (make_rows(), {"seed": 2**31}, "seed 2147483648 is invalid"),
        ([CaseRow("a,1", "p", None, None, "benign"), *make_rows()], {}, "contains a comma"),
    ],
)
def test_create_study_raises_invalid_input(tmp_path, rows, kwargs, message):
    with StudyStore(tmp_path / "s.sqlite3") as store:
        with pytest.raises(StudyStoreError, match=message):
            store.create_study("bad", rows, image_hashes=no_hashes(rows), **kwargs)


def test_create_study_raises_duplicate_name(store_url):
    rows = make_rows()
    with StudyStore(store_url) as store:
        store.create_study("twice", rows, readers=1, image_hashes=no_hashes(rows))
        with pytest.raises(StudyStoreError, match="already exists"):
            store.create_study("twice", rows, readers=1, image_hashes=no_hashes(rows))


def test_sign_in_accepts_code_in_any_case_and_rejects_others(store_url):
    rows = make_rows()
    with StudyStore(store_url) as store:
        _, codes = store.create_study("codes", rows, readers=2, image_hashes=no_hashes(rows))
        assert store.sign_in(codes["R2"].lower().replace("-", " ")).name == "R2"
        with pytest.raises(StudyStoreError, match="not valid"):
            store.sign_in("AAAA-BBBB-CCCC")


def test_reissue_codes_replaces_old_code(store_url):
    rows = make_rows()
    with StudyStore(store_url) as store:
        info, codes = store.create_study("reissue", rows, readers=2, image_hashes=no_hashes(rows))
        new = store.reissue_codes(info.id, ["R1"])
        assert store.sign_in(new["R1"]).name == "R1"
        with pytest.raises(StudyStoreError, match="not valid"):
            store.sign_in(codes["R1"])
        assert store.sign_in(codes["R2"]).name == "R2"


def test_sequential_flow_unaided_then_aided_and_resume(store_url):
    rows = make_rows(4)
    with StudyStore(store_url) as store:
        info, codes = store.create_study("flow", rows, readers=1, seed=2, image_hashes=no_hashes(rows))
        reader = store.sign_in(codes["R1"])
        order = [case_id for case_id, _ in store.reading_order(reader.id)[1]]

        first = store.next_task(reader.id)
        assert (first.case.case_id, first.mode, first.reads_done, first.reads_total) == (order[0], "unaided", 0, 8)
        with pytest.raises(StudyStoreError, match="lock the unaided read before"):
            store.record_read(reader.id, order[0], "aided", "4A", 50)
        store.record_read(reader.id, order[0], "unaided", "3", 10)

    # A new store object (a reload of the page) resumes at the aided read of the same case.
    with StudyStore(store_url) as store:
        second = store.next_task(reader.id)
        assert (second.case.case_id, second.mode, second.reads_done) == (order[0], "aided", 1)
        assert second.unaided_read is not None
        assert second.unaided_read.birads == "3"
        store.record_read(reader.id, order[0], "aided", "4A", 45)
        assert store.next_task(reader.id).case.case_id == order[1]
        read_everything(store, reader.id)
        final = store.next_task(reader.id)
    assert isinstance(final, Finished)
    assert final.reads_total == 8


def test_record_read_raises_when_locked_twice(store_url):
    rows = make_rows(4)
    with StudyStore(store_url) as store:
        _, codes = store.create_study("locked", rows, readers=1, image_hashes=no_hashes(rows))
        reader = store.sign_in(codes["R1"])
        store.record_read(reader.id, "case-00", "unaided", "2", 5)
        with pytest.raises(StudyStoreError, match="already locked"):
            store.record_read(reader.id, "case-00", "unaided", "5", 95)
        (read,) = store.reads(reader.study_id)
    assert (read.birads, read.probability) == ("2", 5)


@pytest.mark.parametrize(
    "case_id, mode, birads, probability, message",
    [
        ("case-00", "unaided", "4", 50, "BI-RADS category '4' is invalid"),
        ("case-00", "unaided", "1", 50, "is invalid"),
        ("case-00", "unaided", "3", 101, "whole percentage 0-100"),
        ("case-00", "unaided", "3", 12.5, "whole percentage 0-100"),
        ("case-00", "blind", "3", 10, "mode 'blind' is invalid"),
        ("case-99", "unaided", "3", 10, "has no case 'case-99'"),
    ],
)
def test_record_read_raises_invalid_read(tmp_path, case_id, mode, birads, probability, message):
    rows = make_rows(4)
    with StudyStore(tmp_path / "s.sqlite3") as store:
        _, codes = store.create_study("invalid", rows, readers=1, image_hashes=no_hashes(rows))
        reader = store.sign_in(codes["R1"])
        with pytest.raises(StudyStoreError, match=message):
            store.record_read(reader.id, case_id, mode, birads, probability)


def test_crossover_sessions_and_washout(store_url):
    rows = make_rows(6)
    clock = Clock()
    with StudyStore(store_url, clock=clock) as store:
        info, codes = store.create_study("cross", rows, design="crossover", washout_days=14, readers=1, seed=4, image_hashes=no_hashes(rows))
        reader = store.sign_in(codes["R1"])
        order = store.reading_order(reader.id)
        assert sorted(order) == [1, 2]
        session_modes = {number: dict(items) for number, items in order.items()}
        for case_id in session_modes[1]:
            assert {session_modes[1][case_id], session_modes[2][case_id]} == {"unaided", "aided"}
        assert sum(mode == "unaided" for mode in session_modes[1].values()) == 3

        session_one = read_everything(store, reader.id)
        assert len(session_one) == 6
        assert {task.session for task in session_one} == {1}
        waiting = store.next_task(reader.id)
        assert isinstance(waiting, Waiting)
        assert waiting.available_from == clock.now + timedelta(days=14)
        case_id, mode = order[2][0]
        with pytest.raises(StudyStoreError, match="not open yet"):
            store.record_read(reader.id, case_id, mode, "3", 10)

        clock.advance(days=14, minutes=1)
        session_two = read_everything(store, reader.id)
        assert [(task.case.case_id, task.mode) for task in session_two] == order[2]
        assert isinstance(store.next_task(reader.id), Finished)
        modes = {(read.case_id, read.mode): read.session for read in store.reads(info.id)}
    assert len(modes) == 12


def test_reading_seconds_from_case_opened_event(tmp_path):
    rows = make_rows(4)
    clock = Clock()
    with StudyStore(tmp_path / "s.sqlite3", clock=clock) as store:
        _, codes = store.create_study("timing", rows, readers=1, image_hashes=no_hashes(rows))
        reader = store.sign_in(codes["R1"])
        assert store.log_event(reader.id, "case_opened", case_id="case-01", mode="unaided", once=True)
        clock.advance(seconds=30)
        assert not store.log_event(reader.id, "case_opened", case_id="case-01", mode="unaided", once=True)
        clock.advance(seconds=12)
        read = store.record_read(reader.id, "case-01", "unaided", "4C", 80)
        explicit = store.record_read(reader.id, "case-02", "unaided", "3", 10, reading_seconds=7.5)
    assert read.reading_seconds == pytest.approx(42.0)
    assert explicit.reading_seconds == 7.5


def test_ai_result_first_one_kept_and_shown_on_aided_read(store_url):
    rows = make_rows(4)
    with StudyStore(store_url) as store:
        info, codes = store.create_study("ai", rows, readers=1, image_hashes=no_hashes(rows))
        store.record_ai_result(info.id, "case-01", 0.83, "model-a")
        kept = store.record_ai_result(info.id, "case-01", 0.10, "model-b")
        assert (kept.ai_p_malignant, kept.ai_model_version) == (0.83, "model-a")
        with pytest.raises(StudyStoreError, match=r"must lie in \[0, 1\]"):
            store.record_ai_result(info.id, "case-02", 1.5, "model-a")
        reader = store.sign_in(codes["R1"])
        store.record_read(reader.id, "case-01", "unaided", "3", 20)
        aided = store.record_read(reader.id, "case-01", "aided", "4B", 60)
    assert aided.ai_p_malignant_shown == 0.83


def test_progress_reports_each_reader(store_url):
    rows = make_rows(4)
    with StudyStore(store_url) as store:
        info, codes = store.create_study("progress", rows, readers=2, image_hashes=no_hashes(rows))
        reader = store.sign_in(codes["R1"])
        read_everything(store, reader.id)
        progress = {item.reader: item for item in store.progress(info.id)}
    assert progress["R1"].finished
    assert (progress["R2"].reads_done, progress["R2"].reads_total, progress["R2"].finished) == (0, 8, False)


def test_add_reader_gets_own_order(tmp_path):
    rows = make_rows(6)
    with StudyStore(tmp_path / "s.sqlite3") as store:
        info, _ = store.create_study("late", rows, readers=1, seed=9, image_hashes=no_hashes(rows))
        reader, code = store.add_reader(info.id, "Late Reader")
        assert store.sign_in(code).id == reader.id
        assert len(store.reading_order(reader.id)[1]) == 6
        with pytest.raises(StudyStoreError, match="already has a reader"):
            store.add_reader(info.id, "Late Reader")


def test_sqlite_store_uses_wal_and_full_sync(tmp_path):
    with StudyStore(tmp_path / "s.sqlite3") as store:
        with store.engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    assert journal == "wal"
    assert synchronous == 2  # FULL
