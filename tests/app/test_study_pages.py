"""Reader-study and teaching pages with Streamlit's AppTest: set-up, reading, analysis and the quiz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import REPO_ROOT
from mpmmu.data import write_synthetic_dataset
from mpmmu.data.manifest import read_manifest
from mpmmu.study.design import BIRADS_CATEGORIES
from mpmmu.study.records import Task
from mpmmu.study.store import StudyStore

TIMEOUT = 240
PASSWORD = "organiser-secret-1"
PAGES = REPO_ROOT / "pages"


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(str(element.value) for element in getattr(at, kind))
    parts.extend(f"{metric.label} {metric.value}" for metric in at.metric)
    return "\n".join(parts)


def click(at: AppTest, label: str) -> AppTest:
    (button,) = [button for button in at.button if button.label == label]
    return button.click().run()


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def sign_in_admin(at: AppTest) -> AppTest:
    at.text_input(key="admin_password").input(PASSWORD)
    click(at, "Sign in")
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def study_cases(tmp_path_factory) -> Path:
    """A manifest of 20 synthetic paired cases at 96 pixels."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("study-cases"), n_per_class=10, seed=4, size=96)


@pytest.fixture()
def study_env(monkeypatch, tmp_path) -> str:
    """A fresh study database and the organiser password, with no model bundle."""
    url = f"sqlite:///{tmp_path / 'pages.sqlite3'}"
    monkeypatch.setenv("MPMMU_STUDY_DB", url)
    monkeypatch.setenv("MPMMU_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("MPMMU_BUNDLE", str(tmp_path / "no-bundle"))
    monkeypatch.setenv("MPMMU_CACHE", str(tmp_path / "cache"))
    return url


@pytest.fixture()
def model_env(study_env, monkeypatch, tiny_bundle) -> str:
    """The study environment of :func:`study_env` with the tiny model bundle."""
    monkeypatch.setenv("MPMMU_BUNDLE", str(tiny_bundle))
    return study_env


def simulated_reads(store: StudyStore, study_id: int, seed: int = 0) -> None:
    """Lock every outstanding read of every reader with ratings that track the truth."""
    rng = np.random.default_rng(seed)
    for reader in store.readers(study_id):
        while isinstance(task := store.next_task(reader.id), Task):
            toward_truth = 1 if task.case.truth else -1
            aid = 8 if task.mode == "aided" else 0
            probability = int(np.clip(50 + 20 * toward_truth + rng.normal(0, 20) + aid * toward_truth, 0, 100))
            birads = BIRADS_CATEGORIES[min(5, probability // 17)]
            store.record_read(reader.id, task.case.case_id, task.mode, birads, probability, reading_seconds=float(rng.uniform(5, 40)))


def test_study_setup_without_password_says_how_to_set_one(monkeypatch, tmp_path):
    monkeypatch.setenv("MPMMU_STUDY_DB", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    monkeypatch.delenv("MPMMU_ADMIN_PASSWORD", raising=False)
    at = page("study_setup")
    assert "Set the environment variable MPMMU_ADMIN_PASSWORD" in texts(at)
    assert not at.text_input


def test_study_setup_rejects_wrong_password(study_env):
    at = page("study_setup")
    at.text_input(key="admin_password").input("not it")
    click(at, "Sign in")
    assert "The password is wrong" in texts(at)
    assert "New study" not in texts(at)


def test_study_end_to_end_in_app(model_env, study_cases):
    study_env = model_env
    # 1. The organiser creates a 3-reader, 20-case study.
    at = sign_in_admin(page("study_setup"))
    at.text_input(key="study_name").input("app-study")
    at.text_input(key="study_manifest").input(str(study_cases))
    at.text_input(key="study_readers").input("3")
    at.number_input(key="study_seed").set_value(5)
    click(at, "Create study")
    assert not at.exception, at.exception
    assert "Invitation codes for app-study" in texts(at)
    (codes_table,) = at.table
    codes = dict(zip(codes_table.value["Reader"], codes_table.value["Invitation code"]))
    assert sorted(codes) == ["R1", "R2", "R3"]
    assert len(at.dataframe) == 1  # the progress table

    # 2. Reader R1 reads the first case unaided, then aided with the AI result and a heatmap.
    at = page("study_read")
    at.text_input(key="reader_code").input(codes["R1"])
    click(at, "Start reading")
    assert not at.exception, at.exception
    page_text = texts(at)
    assert "Case 1 of 20, session 1: unaided read" in page_text
    assert "AI probability" not in page_text
    with StudyStore(study_env) as store:
        info = store.study("app-study")
        reader = store.readers(info.id)[0]
        first_case = store.reading_order(reader.id)[1][0][0]
    at.radio(key=f"birads_{first_case}_unaided").set_value("4A")
    at.slider(key=f"probability_{first_case}_unaided").set_value(62)
    click(at, "Lock the unaided read")
    assert not at.exception, at.exception
    page_text = texts(at)
    assert "Case 1 of 20, session 1: aided read" in page_text
    assert "Your locked unaided read: BI-RADS 4A, probability of malignancy 62%" in page_text
    assert any(metric.label == "AI probability of malignancy" for metric in at.metric)
    click(at, "Show the heatmap: Ultrasound")
    assert not at.exception, at.exception
    at.radio(key=f"birads_{first_case}_aided").set_value("4B")
    at.slider(key=f"probability_{first_case}_aided").set_value(70)
    click(at, "Lock the aided read")
    assert "Case 2 of 20" in texts(at)
    # The reference diagnosis never reaches the reader's page.
    visible = texts(at).lower().replace("probability of malignancy", "")
    assert "benign" not in visible
    assert "malignant" not in visible

    # 3. A new session of the same reader resumes at case 2.
    at = page("study_read")
    at.text_input(key="reader_code").input(codes["R1"])
    click(at, "Start reading")
    assert "Case 2 of 20, session 1: unaided read" in texts(at)

    with StudyStore(study_env) as store:
        reads = store.reads(info.id)
        assert [(read.case_id, read.mode, read.birads, read.probability) for read in reads] == [
            (first_case, "unaided", "4A", 62),
            (first_case, "aided", "4B", 70),
        ]
        assert all(read.reading_seconds is not None for read in reads)
        assert reads[1].ai_p_malignant_shown is not None
        opened = store.events(info.id, kind="heatmap_opened")
        assert [(event["case_id"], event["detail"]["modality"]) for event in opened] == [(first_case, "ultrasound")]
        # The remaining reads come from the store, as if the readers had read them in the app.
        for case in store.cases(info.id):
            if case.ai_p_malignant is None:
                store.record_ai_result(info.id, case.case_id, 0.8 if case.truth else 0.3, "test")
        simulated_reads(store, info.id)

    # 4. The organiser analyses and exports the finished study.
    at = sign_in_admin(page("study_analysis"))
    assert not at.exception, at.exception
    page_text = texts(at)
    assert "MRMC test of the AUC difference (aided − unaided)" in page_text
    auc_table = at.dataframe[0].value
    assert list(auc_table["Reader"]) == ["R1", "R2", "R3", "Reader average"]
    mrmc_table = at.dataframe[1].value
    assert len(mrmc_table) == 9
    assert set(mrmc_table["Method"]) == {"OR, jackknife", "OR, DeLong", "DBM"}
    assert any(metric.label == "AI alone" for metric in at.metric)
    assert len(at.get("plotly_chart")) == 3
    # iMRMC, RJafroc, all reads, and the RJafroc case-number key (the synthetic ids are not numbers).
    assert len(at.get("download_button")) == 4


def test_study_analysis_unfinished_study_warns(study_env, study_cases):
    with StudyStore(study_env) as store:
        store.create_study("unfinished", read_manifest(study_cases), readers=2)
    at = sign_in_admin(page("study_analysis"))
    assert "is not fully read" in texts(at)


def test_study_read_rejects_unknown_code(study_env):
    at = page("study_read")
    at.text_input(key="reader_code").input("ZZZZ-ZZZZ-ZZZZ")
    click(at, "Start reading")
    assert "invitation code is not valid" in texts(at)


def test_teaching_quiz_reveal_and_score(model_env, study_cases, monkeypatch):
    monkeypatch.setenv("MPMMU_TEACHING_MANIFEST", str(study_cases))
    at = page("teaching")
    assert "Enter your name" in texts(at)
    at.text_input(key="teaching_trainee").input("Trainee T")
    at.run()
    assert not at.exception, at.exception
    assert "Case 1 of 20" in texts(at)
    assert "AI probability" not in texts(at)
    case_id = next(radio.key for radio in at.radio if radio.key and radio.key.startswith("quiz_birads_")).removeprefix("quiz_birads_")
    at.radio(key=f"quiz_birads_{case_id}").set_value("5")
    at.selectbox(key=f"quiz_ultrasound_margin_{case_id}").set_value("spiculated")
    click(at, "Submit and reveal")
    assert not at.exception, at.exception
    truth = next(row.label for row in read_manifest(study_cases) if row.case_id == case_id)
    page_text = texts(at)
    if truth == "malignant":
        assert "Correct call: this lesion is malignant. You chose BI-RADS 5." in page_text
    else:
        assert "Wrong call: this lesion is benign. You chose BI-RADS 5." in page_text
    assert any(metric.label == "AI probability of malignancy" for metric in at.metric)
    score = next(metric for metric in at.sidebar.metric if metric.label == "Running score")
    assert score.value == ("100%" if truth == "malignant" else "0%")
    click(at, "Next case")
    assert "Case 2 of 20" in texts(at)


def test_study_cli_ai_scores_cases_with_bundle(model_env, study_cases, tiny_bundle, capsys):
    study_env = model_env
    # The CLI path of the AI-alone result: Pipeline.predict on every case of the study's manifest.
    from mpmmu.cli import main

    with StudyStore(study_env) as store:
        info, _ = store.create_study("scored", read_manifest(study_cases)[:4], readers=1, manifest_path=study_cases)
    assert main(["study", "ai", "--study", "scored", "--bundle", str(tiny_bundle), "--db", study_env]) == 0
    assert "AI results stored for 4 of 4 cases" in capsys.readouterr().out
    with StudyStore(study_env) as store:
        cases = store.cases(info.id)
    assert all(0.0 <= case.ai_p_malignant <= 1.0 for case in cases)
    assert len({case.ai_model_version for case in cases}) == 1


def test_study_read_crossover_waits_for_washout(study_env, study_cases):
    with StudyStore(study_env) as store:
        info, codes = store.create_study("washout", read_manifest(study_cases)[:4], design="crossover", washout_days=14, readers=1)
        reader = store.sign_in(codes["R1"])
        for case_id, mode in store.reading_order(reader.id)[1]:
            store.record_read(reader.id, case_id, mode, "3", 20)
    at = page("study_read")
    at.text_input(key="reader_code").input(codes["R1"])
    click(at, "Start reading")
    assert not at.exception, at.exception
    assert "Session 2 opens on" in texts(at)
    assert not [button for button in at.button if button.label.startswith("Lock")]


def test_study_read_aided_without_model_or_ai_result_explains(study_env, study_cases):
    with StudyStore(study_env) as store:
        _, codes = store.create_study("no-model", read_manifest(study_cases)[:4], readers=1, manifest_path=study_cases)
        reader = store.sign_in(codes["R1"])
        first_case = store.reading_order(reader.id)[1][0][0]
        store.record_read(reader.id, first_case, "unaided", "3", 20)
    at = page("study_read")
    at.text_input(key="reader_code").input(codes["R1"])
    click(at, "Start reading")
    assert not at.exception, at.exception
    assert "This case has no AI result and no model bundle is installed" in texts(at)
    assert not [button for button in at.button if button.label.startswith("Lock")]
