"""Page flows of the app with Streamlit's AppTest: upload, analyse, result, errors, language."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP, PATIENT_ID, PATIENT_NAME

TIMEOUT = 240


def _texts(at: AppTest) -> str:
    """Join the visible texts of the page, for checks that something is (not) shown anywhere."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(str(element.value) for element in getattr(at, kind))
    parts.extend(f"{metric.label} {metric.value}" for metric in at.metric)
    return "\n".join(parts)


def _plotly_count(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def _upload(at: AppTest, files: dict[str, bytes], names: dict[str, str]) -> AppTest:
    for modality, data in files.items():
        if modality not in names:
            continue
        at.file_uploader(key=f"upload_{modality}").upload(names[modality], data)
    return at.run()


@pytest.fixture()
def app(app_env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def test_second_read_upload_analyse_shows_result(app, case_files):
    names = {"mammography": "IM000001", "ultrasound": "us.png"}
    _upload(app, case_files, names)
    assert not app.exception
    side = "left" if case_files["laterality"] == b"L" else "right"
    assert f"Side: {side} · view: CC" in _texts(app)

    app.button(key="analyse").click().run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Probability of malignancy"].endswith("%")
    assert metrics["Mammography only"].endswith("%")
    assert metrics["Ultrasound only"].endswith("%")
    assert metrics["Fused"].endswith("%")
    texts = _texts(app)
    assert "Where the model looked (Grad-CAM)" in texts
    # Two viewers, gauge, modality bars, votes, two heatmaps and the attention views.
    assert _plotly_count(app) >= 8
    assert any(expander.label.startswith("Run details: CPU (") for expander in app.expander)
    assert "Each model has its own threshold, chosen on validation data by Youden's J" in texts


def test_second_read_never_shows_patient_name(app, case_files):
    _upload(app, case_files, {"mammography": "IM000001", "ultrasound": "us.png"})
    app.button(key="analyse").click().run()
    texts = _texts(app)
    assert "Secretname" not in texts
    assert PATIENT_NAME not in texts
    assert PATIENT_ID not in texts


def test_second_read_missing_modality_uses_single_model(app, case_files):
    _upload(app, {"ultrasound": case_files["ultrasound"]}, {"ultrasound": "us.png"})
    app.button(key="analyse").click().run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Mammography only"] == "—"
    assert metrics["Fused"] == "—"
    assert metrics["Ultrasound only"].endswith("%")
    assert any("No mammogram was given, so the ultrasound-only model answered" in info.value for info in app.info)


def test_second_read_bad_file_shows_plain_message(app, case_files):
    _upload(app, {"mammography": b"this is not an image at all"}, {"mammography": "scan.dcm"})
    assert not app.exception
    errors = [error.value for error in app.error]
    assert len(errors) == 1
    assert errors[0].startswith("The file “scan.dcm” could not be used:")
    assert "Traceback" not in errors[0]
    assert app.button(key="analyse").disabled

    # The app keeps running: a good ultrasound next to the bad file still gets analysed.
    _upload(app, {"ultrasound": case_files["ultrasound"]}, {"ultrasound": "us.png"})
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(metric.label == "Probability of malignancy" for metric in app.metric)


def test_second_read_example_case_analyses(app):
    app.radio(key="case_source").set_value("example").run()
    assert not app.exception
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(metric.label == "Probability of malignancy" for metric in app.metric)


def test_second_read_blind_read_hides_result_until_locked(app, case_files):
    _upload(app, case_files, {"mammography": "IM000001", "ultrasound": "us.png"})
    app.checkbox(key="blind_read").check().run()
    app.button(key="analyse").click().run()
    assert any("Lock your read above to reveal it" in info.value for info in app.info)
    assert not any(metric.label == "Probability of malignancy" for metric in app.metric)

    app.selectbox(key="read_birads").set_value("4B")
    app.slider(key="read_probability").set_value(35)
    app.button(key="lock_read").click().run()
    assert not app.exception
    assert any("BI-RADS 4B, 35%" in success.value for success in app.success)
    assert any(metric.label == "Probability of malignancy" for metric in app.metric)

    app.selectbox(key="revise_birads").set_value("4C")
    app.slider(key="revise_probability").set_value(60)
    app.button(key="save_revision").click().run()
    assert any("BI-RADS 4C, 60%" in info.value for info in app.info)


def test_second_read_roi_change_marks_result_stale(app, case_files):
    _upload(app, case_files, {"mammography": "IM000001", "ultrasound": "us.png"})
    app.button(key="analyse").click().run()
    roi_checkbox = next(box for box in app.checkbox if box.key and box.key.startswith("ultrasound_roi_") and box.key.endswith("_on"))
    roi_checkbox.check().run()
    assert any("Press Analyse to update the result" in info.value for info in app.info)
    assert not any(metric.label == "Probability of malignancy" for metric in app.metric)


def test_app_language_switch_to_chinese(app, case_files):
    app.radio(key="lang_widget").set_value("zh-CN").run()
    assert not app.exception
    assert app.title[0].value == "第二阅片"
    assert any("仅供科研使用" in warning.value for warning in app.warning)
    _upload(app, case_files, {"mammography": "IM000001", "ultrasound": "us.png"})
    app.button(key="analyse").click().run()
    assert not app.exception
    assert any(metric.label == "恶性概率" for metric in app.metric)
    assert any(expander.label.startswith("运行详情：CPU（") for expander in app.expander)
    assert not any("threads" in expander.label for expander in app.expander)
    texts = _texts(app)
    assert "约登指数" in texts
    assert "Youden" not in texts


def test_model_card_chinese_fusion_reason(app):
    app.radio(key="lang_widget").set_value("zh-CN").run()
    app.switch_page("pages/model_card.py").run()
    assert not app.exception
    texts = _texts(app)
    assert "验证集 AUC 最高" in texts
    assert "highest validation AUC" not in texts
    assert "threads" not in texts


def test_app_every_page_states_research_use(app):
    for page in ("pages/second_read.py", "pages/model_card.py"):
        app.switch_page(page).run()
        assert not app.exception
        assert any("Research use only, not for clinical diagnosis." in warning.value for warning in app.warning)
        assert any("仅供科研使用，不可用于临床诊断。" in warning.value for warning in app.warning)


def test_model_card_shows_results_and_caveat(app):
    app.switch_page("pages/model_card.py").run()
    assert not app.exception
    headers = [header.value for header in app.header]
    assert "Intended use" in headers
    assert "Results on held-out data" in headers
    assert "Known limitations" in headers
    assert any("pseudo-pairs" in warning.value for warning in app.warning)
    assert len(app.dataframe) >= 1


def test_app_missing_bundle_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("MPMMU_BUNDLE", str(tmp_path / "no-bundle"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert "No model bundle was found" in at.error[0].value
    assert "MPMMU_BUNDLE" in at.error[0].value


def test_app_broken_bundle_says_what_to_do(monkeypatch, tmp_path):
    broken = tmp_path / "broken-bundle"
    broken.mkdir()
    (broken / "metadata.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("MPMMU_BUNDLE", str(broken))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert "could not be loaded" in at.error[0].value


def _roi_key(app: AppTest, modality: str, name: str) -> str:
    return next(
        widget.key
        for widget in (*app.checkbox, *app.number_input)
        if widget.key and widget.key.startswith(f"{modality}_roi_") and widget.key.endswith(f"_{name}")
    )


def test_second_read_entered_roi_reaches_model(app, case_files):
    _upload(app, case_files, {"mammography": "IM000001", "ultrasound": "us.png"})
    app.checkbox(key=_roi_key(app, "ultrasound", "on")).check().run()
    app.number_input(key=_roi_key(app, "ultrasound", "x")).set_value(60)
    app.number_input(key=_roi_key(app, "ultrasound", "y")).set_value(70)
    app.number_input(key=_roi_key(app, "ultrasound", "w")).set_value(100)
    app.number_input(key=_roi_key(app, "ultrasound", "h")).set_value(80).run()
    assert not app.exception

    app.button(key="analyse").click().run()
    assert not app.exception
    result = app.session_state["result"]
    prediction = result["prediction"]
    assert result["case_key"][2] == (60, 70, 100, 80)
    assert prediction.roi_used["ultrasound"] is True
    assert prediction.roi_used["mammography"] is False


def test_second_read_window_sliders_and_presets(app, case_files):
    _upload(app, case_files, {"mammography": "IM000001", "ultrasound": "us.png"})
    center = next(slider for slider in app.slider if slider.key and slider.key.startswith("mammography_center_"))
    width = next(slider for slider in app.slider if slider.key and slider.key.startswith("mammography_width_"))
    assert center.value == pytest.approx(2048.0, abs=1.0)
    assert width.value == pytest.approx(4096.0, abs=10.0)

    center.set_value(1000.0).run()
    assert not app.exception
    preset = next(box for box in app.selectbox if box.key and box.key.startswith("mammography_preset_"))
    preset.set_value(-1).run()
    assert not app.exception
    center = next(slider for slider in app.slider if slider.key and slider.key.startswith("mammography_center_"))
    assert center.value != pytest.approx(1000.0)


def test_second_read_real_example_when_data_present(app_env, bus_bra_dir, mini_mias_dir, monkeypatch):
    monkeypatch.setenv("MPMMU_DATA", str(bus_bra_dir.parent))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.radio(key="case_source").set_value("example").run()
    options = at.selectbox(key="example_case").options
    real = [index for index, option in enumerate(options) if option.startswith("Real pseudo-pair")]
    assert len(real) == 4
    at.selectbox(key="example_case").select_index(real[-1]).run()
    assert not at.exception
    assert any("two different women" in caption.value for caption in at.caption)
    at.button(key="analyse").click().run()
    assert not at.exception
    assert any(metric.label == "Probability of malignancy" for metric in at.metric)


def _prediction(**overrides):
    from mpmmu.records import Prediction

    fields = dict(
        p_malignant=0.369,
        p_mammography=0.3,
        p_ultrasound=0.5,
        votes={"logistic_regression": 0.1, "svm": 0.3, "random_forest": 0.2, "extra_trees": 0.4, "meta_mlp": 0.212},
        threshold=0.343,
        fusion="late_fusion",
        agreement=0.5,
        model_version="mpmmu-000000000000",
        device="cpu (2 threads)",
        timings={},
        votes_model="stacking",
        votes_threshold=0.248,
    )
    fields.update(overrides)
    return Prediction(**fields)


def test_votes_caption_late_fusion_says_comparison():
    from ui.result import votes_caption

    caption = votes_caption(_prediction(), "en")

    assert "Votes of the learners of the stacking ensemble of fused features, shown for comparison" in caption
    assert "the answer comes from late fusion of both branches, which had the higher validation AUC" in caption


def test_votes_caption_stacking_unchanged():
    from ui.result import votes_caption

    caption = votes_caption(_prediction(fusion="stacking", threshold=0.248), "en")

    assert "shown for comparison" not in caption
    assert "Final model: stacking ensemble of fused features." in caption


def test_agreement_text_late_fusion_names_stacking_threshold():
    from ui.result import agreement_text

    text = agreement_text(_prediction(), "en")

    assert text.startswith("50% of the base learners of the stacking ensemble of fused features give the same class")
    assert "own threshold (25%)" in text
    assert "They did not produce the answer." in text


@pytest.mark.parametrize(
    "device, lang, expected",
    [
        ("cpu (2 threads)", "en", "CPU (2 threads)"),
        ("cpu (2 threads)", "zh-CN", "CPU（2 个线程）"),
        ("cuda:0 (NVIDIA H200)", "zh-CN", "cuda:0 (NVIDIA H200)"),
    ],
)
def test_device_text_translates_cpu(device, lang, expected):
    from ui.result import device_text

    assert device_text(device, lang) == expected
