"""Durability and concurrency of the study store, on SQLite and PostgreSQL.

A writer process killed with SIGKILL in the middle of a session loses no read it reported as
committed, and 20 readers writing at once each find exactly their own reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from mpmmu.data.manifest import CaseRow
from mpmmu.study.records import Task
from mpmmu.study.store import StudyStore

# The writer reads every case of its reader in order and prints each read after the commit
# returns. The parent kills it without warning once enough reads have been reported.
WRITER = """
import sys
from mpmmu.study.records import Task
from mpmmu.study.store import StudyStore

store = StudyStore(sys.argv[1])
reader = store.sign_in(sys.argv[2])
print("ready", flush=True)
while True:
    task = store.next_task(reader.id)
    if not isinstance(task, Task):
        break
    read = store.record_read(reader.id, task.case.case_id, task.mode, "4A", task.position)
    print("committed", read.case_id, read.mode, read.probability, flush=True)
print("finished", flush=True)
"""


def make_rows(n: int) -> list[CaseRow]:
    return [CaseRow(f"case-{k:03d}", f"p{k}", None, None, "malignant" if k % 2 else "benign") for k in range(n)]


def test_writer_killed_mid_session_loses_no_committed_read(store_url):
    rows = make_rows(60)
    with StudyStore(store_url) as store:
        info, codes = store.create_study("durable", rows, readers=1, image_hashes={row.case_id: (None, None) for row in rows})

    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_url, codes["R1"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reported = []
    try:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        while len(reported) < 25:
            line = process.stdout.readline()
            assert line, f"writer stopped early: {process.stderr.read()}"
            reported.append(tuple(line.split()[1:]))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # Reads committed between the last line read and the kill are in the pipe.
        reported += [tuple(line.split()[1:]) for line in process.stdout.read().splitlines() if line.startswith("committed")]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == -signal.SIGKILL
    with StudyStore(store_url) as store:
        stored = {(read.case_id, read.mode, str(read.probability)) for read in store.reads(info.id)}
        next_task = store.next_task(store.readers(info.id)[0].id)
    assert set(reported) <= stored
    assert len(stored) < 120, "the writer finished before it was killed"
    # The store is consistent after the crash: the reader resumes at the first missing read.
    assert isinstance(next_task, Task)
    assert len(stored) == next_task.reads_done


def test_twenty_concurrent_readers_no_read_lost_or_mixed(store_url):
    n_readers, rows = 20, make_rows(6)
    with StudyStore(store_url) as store:
        info, codes = store.create_study("busy", rows, readers=n_readers, image_hashes={row.case_id: (None, None) for row in rows})

    def expected(reader: str, case_id: str, mode: str) -> int:
        # A different probability for every reader, case and mode, so a mix-up shows.
        return (int(reader[1:]) * 7 + int(case_id[-3:]) * 3 + (mode == "aided")) % 101

    errors: list[BaseException] = []
    start = threading.Barrier(n_readers)

    def read_all(name: str) -> None:
        try:
            with StudyStore(store_url) as own_store:
                reader = own_store.sign_in(codes[name])
                start.wait(timeout=60)
                while isinstance(task := own_store.next_task(reader.id), Task):
                    own_store.record_read(reader.id, task.case.case_id, task.mode, "3", expected(name, task.case.case_id, task.mode))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=read_all, args=(name,)) for name in codes]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a reader thread hung"
    assert errors == []

    with StudyStore(store_url) as store:
        reads = store.reads(info.id)
    assert len(reads) == n_readers * len(rows) * 2, f"took {time.perf_counter() - began:.1f} s"
    for read in reads:
        assert read.probability == expected(read.reader, read.case_id, read.mode), read
    assert len({(read.reader, read.case_id, read.mode) for read in reads}) == len(reads)
