"""Schema versions: a version-1 database upgrades to the current schema and keeps its data."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect, text

from mpmmu.errors import StudyStoreError
from mpmmu.study import migrations
from mpmmu.study.database import build_engine
from mpmmu.study.models import Base
from mpmmu.study.store import StudyStore


def _insert_version_1_study(engine) -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO studies (id, name, design, washout_days, seed, manifest_path, manifest_sha256, created_at) "
                "VALUES (1, 'old', 'sequential', 0, 3, '', '', :now)"
            ),
            {"now": now},
        )
        for k, label in enumerate(("benign", "malignant")):
            connection.execute(
                text(
                    "INSERT INTO cases (id, study_id, position, case_id, label, mammogram_roi, ultrasound_roi) "
                    "VALUES (:id, 1, :position, :case_id, :label, '', '')"
                ),
                {"id": k + 1, "position": k, "case_id": f"old-{k}", "label": label},
            )


def test_upgrade_version_1_to_current_keeps_data(store_url):
    engine = build_engine(store_url)
    try:
        assert migrations.upgrade(engine, target=1) == 1
        assert migrations.current_version(engine) == 1
        assert "quiz_attempts" not in inspect(engine).get_table_names()
        _insert_version_1_study(engine)
    finally:
        engine.dispose()

    with StudyStore(store_url) as store:
        assert store.schema_version == migrations.CURRENT_VERSION
        cases = store.cases(1)
        assert [case.case_id for case in cases] == ["old-0", "old-1"]
        assert cases[0].ai_p_malignant is None
        updated = store.record_ai_result(1, "old-1", 0.7, "model-x")
        assert updated.ai_p_malignant == 0.7


def test_migrated_schema_matches_models(store_url):
    with StudyStore(store_url) as store:
        inspector = inspect(store.engine)
        for table in Base.metadata.sorted_tables:
            columns = {column["name"] for column in inspector.get_columns(table.name)}
            assert columns == set(table.columns.keys()), table.name


def test_upgrade_twice_applies_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    StudyStore(url).close()
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
        assert rows == [1, 2]
        assert migrations.upgrade(engine) == migrations.CURRENT_VERSION
    finally:
        engine.dispose()


def test_store_raises_newer_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    StudyStore(url).close()
    engine = build_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO schema_version (version, description, applied_at) VALUES (99, 'future', :now)"),
            {"now": datetime.now(timezone.utc)},
        )
    engine.dispose()
    with pytest.raises(StudyStoreError, match="newer than this mpmmu"):
        StudyStore(url)


def test_upgrade_raises_unknown_target(tmp_path):
    engine = build_engine(f"sqlite:///{tmp_path / 's.sqlite3'}")
    try:
        with pytest.raises(StudyStoreError, match="schema version 7 is unknown"):
            migrations.upgrade(engine, target=7)
    finally:
        engine.dispose()


def test_store_raises_unreachable_server():
    # A port this test binds without listening on it, so every connection is refused.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with pytest.raises(StudyStoreError, match="could not be opened"):
            StudyStore(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none?connect_timeout=2")
