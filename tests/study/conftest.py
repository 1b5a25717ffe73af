"""Fixtures of the study tests: a synthetic case manifest and store URLs for SQLite and PostgreSQL.

The PostgreSQL server is a throwaway cluster that ``initdb`` and ``pg_ctl`` (Debian's
``postgresql`` package, which ``.ci/run`` installs) start on 127.0.0.1 at a free port, once per
test session. Tests that need it skip with the reason when no server can be started.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpmmu.data import write_synthetic_dataset

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"


@pytest.fixture(scope="session")
def synthetic_manifest(tmp_path_factory) -> Path:
    """A manifest of 20 synthetic paired cases (10 benign, 10 malignant), 64-pixel PNGs."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), n_per_class=10, seed=3, size=64)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A running throwaway cluster; :meth:`new_database` hands each test an empty database."""

    def __init__(self, bin_dir: Path, data_dir: Path, port: int, run_as: list[str]) -> None:
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.port = port
        self.run_as = run_as
        self._counter = itertools.count(1)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"mpmmu_test_{next(self._counter)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )


def _start_postgres() -> tuple[PostgresServer | None, str]:
    candidates = sorted(glob.glob(POSTGRES_BIN_GLOB))
    if not candidates:
        return None, f"no PostgreSQL server binaries under {POSTGRES_BIN_GLOB}; install Debian's postgresql package"
    bin_dir = Path(candidates[-1])
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed; install the dev extra"

    data_dir = Path(tempfile.mkdtemp(prefix="mpmmu-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root, so the cluster belongs to the postgres system user.
        if shutil.which("runuser") is None:
            return None, "running as root without runuser, so initdb cannot run as another user"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root and there is no postgres system user to own the cluster"
        shutil.chown(data_dir, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]

    port = _free_port()
    initdb = subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data_dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
        capture_output=True,
        text=True,
        check=False,
    )
    if initdb.returncode != 0:
        return None, f"initdb failed: {initdb.stderr.strip()[-300:]}"
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data_dir} -c fsync=on"
    start = subprocess.run(
        [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data_dir / "data"), "-o", options, "-l", str(data_dir / "server.log"), "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    if start.returncode != 0:
        log = (data_dir / "server.log").read_text(errors="replace")[-300:] if (data_dir / "server.log").exists() else ""
        return None, f"pg_ctl start failed: {start.stderr.strip()[-300:]} {log}"
    return PostgresServer(bin_dir, data_dir / "data", port, run_as), ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster on 127.0.0.1 for this test session (skips with the reason when none starts)."""
    server, reason = _start_postgres()
    if server is None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """An empty study database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    return server.new_database()
