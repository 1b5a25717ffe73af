"""Second read: the radiologist loads a mammogram and an ultrasound of one lesion, marks the lesion,
may lock their own BI-RADS read, runs the model, and compares the two reads with heatmaps at hand.
"""

from __future__ import annotations

import logging
import time

import streamlit as st

from mpmmu.errors import MpmmuError
from mpmmu.i18n import t
from mpmmu.pipeline import Pipeline
from mpmmu.records import ImageRecord
from ui import state
from ui.examples import available_examples, load_example
from ui.layout import page_frame
from ui.loaders import get_pipeline
from ui.reader import reader_panel
from ui.result import render_result
from ui.viewer import image_panel, read_upload

logger = logging.getLogger(__name__)

MODALITIES = ("mammography", "ultrasound")


def choose_case(lang: str) -> tuple[dict[str, ImageRecord | None], dict[str, tuple | None]]:
    """Draw the case source (two uploads or an example) and return the records and default boxes."""
    source = st.radio(
        t("second_read.source", lang),
        ["upload", "example"],
        format_func=lambda value: t(f"second_read.source_{value}", lang),
        horizontal=True,
        key=state.CASE_SOURCE,
    )
    records: dict[str, ImageRecord | None] = {modality: None for modality in MODALITIES}
    default_rois: dict[str, tuple | None] = {modality: None for modality in MODALITIES}

    if source == "upload":
        columns = st.columns(2)
        for column, modality in zip(columns, MODALITIES):
            with column:
                uploaded = st.file_uploader(
                    t(f"second_read.upload_{modality}", lang),
                    type=None,
                    key=f"upload_{modality}",
                    help=t("second_read.upload_help", lang),
                )
                records[modality] = read_upload(modality, uploaded, lang)
        return records, default_rois

    examples = available_examples()
    example = st.selectbox(
        t("second_read.example", lang),
        examples,
        format_func=lambda case: t(
            f"second_read.example_{case.kind}",
            lang,
            label=t(f"common.label_{case.label}", lang),
            description=case.description,
        ),
        key=state.EXAMPLE,
    )
    if not any(case.kind == "real" for case in examples):
        st.caption(t("second_read.no_real_examples", lang))
    try:
        mammogram, ultrasound, mammogram_roi, ultrasound_roi = load_example(example)
    except (MpmmuError, OSError) as error:
        logger.exception("example case %s could not be loaded", example.key)
        st.error(t("second_read.example_failed", lang, reason=str(error)))
        return records, default_rois

    if example.kind == "real":
        st.caption(t("second_read.real_example_caveat", lang))
    records = {"mammography": mammogram, "ultrasound": ultrasound}
    default_rois = {"mammography": mammogram_roi, "ultrasound": ultrasound_roi}
    return records, default_rois


def analyse(pipeline: Pipeline, records: dict, rois: dict, case_key: tuple, lang: str) -> bool:
    """Run the model on the case, store the result in the session, and return whether it succeeded."""
    # Drop the previous result first, so its full-size heatmaps are freed before new ones exist.
    slot = state.result_slot()
    slot.clear()
    started = time.perf_counter()
    try:
        with st.spinner(t("second_read.analysing", lang)):
            prediction = pipeline.predict(
                records["mammography"],
                records["ultrasound"],
                mammogram_roi=rois["mammography"],
                ultrasound_roi=rois["ultrasound"],
                explain=True,
            )
    except MpmmuError as error:
        logger.exception("analysis failed")
        st.error(t("second_read.analysis_failed", lang, reason=str(error)))
        return False

    elapsed = time.perf_counter() - started
    slot.update(case_key=case_key, prediction=prediction, elapsed=elapsed)
    logger.info("analysis done on %s in %.2f s", prediction.device, elapsed)
    return True


def render() -> None:
    """Draw the page.

    Everything lives in functions: names bound at a page script's top level stay alive with its
    namespace until Python's cycle collector runs, which would keep old results in memory.
    """
    lang = page_frame()
    st.title(t("second_read.title", lang))
    st.caption(t("second_read.intro", lang))
    pipeline = get_pipeline(lang)

    # 1. The case: two uploads or an example.
    records, default_rois = choose_case(lang)

    # 2. The images, each with window/level, lesion box and the crop the model will see.
    rois: dict[str, tuple | None] = {modality: None for modality in MODALITIES}
    displays = {}
    columns = st.columns(2)
    for column, modality in zip(columns, MODALITIES):
        with column:
            st.subheader(t(f"common.{modality}", lang))
            record = records[modality]
            if record is None:
                st.info(t("second_read.no_image", lang))
                continue
            rois[modality], displays[modality] = image_panel(modality, record, lang, pipeline, default_rois[modality])

    # 3. The reader's own read, then the model.
    images = tuple(None if records[modality] is None else records[modality].sha256 for modality in MODALITIES)
    case_key = (images, rois["mammography"], rois["ultrasound"])
    slot = state.result_slot()
    result_current = bool(slot) and slot["case_key"] == case_key
    hide_result = reader_panel(images, result_current, lang)

    clicked = st.button(
        t("second_read.analyse", lang),
        type="primary",
        disabled=all(record is None for record in records.values()),
        key="analyse",
        icon=":material/play_arrow:",
    )
    if clicked:
        result_current = analyse(pipeline, records, rois, case_key, lang)

    if slot and not result_current:
        st.info(t("second_read.result_stale", lang))
    elif result_current and hide_result:
        st.info(t("second_read.result_hidden", lang), icon=":material/lock:")
    elif result_current:
        render_result(slot, records, displays, rois, lang)


render()
