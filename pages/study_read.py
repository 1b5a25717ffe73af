"""Reader study: the reader signs in with their invitation code and reads the cases in their own
order, resuming where they stopped. Each unaided read is locked before the AI result appears; the
aided read follows with the AI probability and heatmaps on request. The reference diagnosis is
never shown here.
"""

from __future__ import annotations

import logging

import streamlit as st

from mpmmu.errors import MpmmuError
from mpmmu.i18n import t
from mpmmu.study.design import BIRADS_CATEGORIES
from mpmmu.study.records import Finished, Task, Waiting
from ui.layout import page_frame
from ui.study import case_images, get_store, manifest_row, pipeline_available, predict_case, show_images

logger = logging.getLogger(__name__)

READER = "study_reader"
SHOWN_HEATMAPS = "study_shown_heatmaps"

lang = page_frame()
st.title(t("study.read_title", lang))
store = get_store(lang)

# 1. Sign in with the invitation code.
reader = st.session_state.get(READER)
if reader is None:
    st.caption(t("study.read_intro", lang))
    with st.form("reader_sign_in"):
        code = st.text_input(t("study.code", lang), key="reader_code")
        submitted = st.form_submit_button(t("study.sign_in", lang), type="primary")
    if submitted:
        try:
            st.session_state[READER] = store.sign_in(code)
        except MpmmuError as error:
            st.error(t("study.sign_in_failed", lang, reason=str(error)))
        else:
            st.rerun()
    st.stop()

st.sidebar.caption(t("study.signed_in_as", lang, reader=reader.name))
if st.sidebar.button(t("study.sign_out", lang), key="reader_sign_out"):
    del st.session_state[READER]
    st.rerun()

# 2. The reader's next read, a washout wait, or the end of the study.
task = store.next_task(reader.id)
if isinstance(task, Finished):
    st.progress(1.0, text=t("study.progress", lang, done=task.reads_total, total=task.reads_total))
    st.success(t("study.finished", lang))
    st.stop()
if isinstance(task, Waiting):
    st.progress(task.reads_done / task.reads_total, text=t("study.progress", lang, done=task.reads_done, total=task.reads_total))
    st.info(t("study.washout_wait", lang, session=task.session, date=f"{task.available_from:%Y-%m-%d %H:%M}"))
    st.stop()

assert isinstance(task, Task)
study = store.study(reader.study_id)
st.progress(task.reads_done / task.reads_total, text=t("study.progress", lang, done=task.reads_done, total=task.reads_total))
st.subheader(
    t(
        "study.case_heading",
        lang,
        position=task.position,
        length=task.session_length,
        session=task.session,
        mode=t(f"study.mode_{task.mode}", lang),
    )
)
store.log_event(reader.id, "case_opened", case_id=task.case.case_id, mode=task.mode, once=True)

try:
    row = manifest_row(study.manifest_path, task.case.case_id)
    records = case_images(row, {"mammography": task.case.mammogram_sha256, "ultrasound": task.case.ultrasound_sha256})
except (MpmmuError, OSError) as error:
    logger.exception("images of case %s could not be loaded", task.case.case_id)
    st.error(t("study.images_failed", lang, reason=str(error)))
    st.stop()

# 3. The AI result, only for an aided read.
heatmaps = {}
p_malignant = task.case.ai_p_malignant
if task.mode == "aided":
    if p_malignant is None:
        if not pipeline_available():
            st.error(t("study.ai_unavailable", lang))
            st.stop()
        try:
            prediction = predict_case(row, records, lang, explain=True)
        except MpmmuError as error:
            logger.exception("AI result for case %s failed", task.case.case_id)
            st.error(t("study.ai_failed", lang, reason=str(error)))
            st.stop()
        p_malignant = store.record_ai_result(study.id, task.case.case_id, prediction.p_malignant, prediction.model_version).ai_p_malignant
    store.log_event(reader.id, "ai_shown", case_id=task.case.case_id, mode="aided", once=True)

    if task.unaided_read is not None:
        st.info(t("study.your_unaided_read", lang, birads=task.unaided_read.birads, probability=task.unaided_read.probability), icon="🔒")
    st.metric(t("study.ai_probability", lang), f"{100 * p_malignant:.0f}%")

    shown = st.session_state.setdefault(SHOWN_HEATMAPS, set())
    columns = st.columns(len(records))
    for column, modality in zip(columns, records):
        if column.button(t("study.show_heatmap", lang, modality=t(f"common.{modality}", lang)), key=f"heatmap_{modality}"):
            if (task.case.case_id, modality) not in shown and pipeline_available():
                store.log_event(reader.id, "heatmap_opened", case_id=task.case.case_id, mode="aided", detail={"modality": modality})
            shown.add((task.case.case_id, modality))
    wanted = [modality for modality in records if (task.case.case_id, modality) in shown]
    if wanted:
        if pipeline_available():
            try:
                prediction = predict_case(row, records, lang, explain=True)
            except MpmmuError as error:
                logger.exception("heatmap for case %s failed", task.case.case_id)
                st.error(t("study.ai_failed", lang, reason=str(error)))
            else:
                heatmaps = {modality: prediction.heatmaps[modality] for modality in wanted if modality in prediction.heatmaps}
                if task.case.ai_model_version is not None and prediction.model_version != task.case.ai_model_version:
                    st.caption(t("study.heatmap_other_model", lang, model=prediction.model_version, stored=task.case.ai_model_version))
        else:
            st.warning(t("study.heatmap_unavailable", lang))

show_images(records, lang, heatmaps)

# 4. The read, locked on submit.
with st.form(f"read_{task.case.case_id}_{task.mode}"):
    birads = st.radio(t("study.birads", lang), BIRADS_CATEGORIES, index=None, horizontal=True, key=f"birads_{task.case.case_id}_{task.mode}")
    probability = st.slider(t("study.probability", lang), 0, 100, value=50, step=1, format="%d%%", key=f"probability_{task.case.case_id}_{task.mode}")
    lock = st.form_submit_button(t(f"study.lock_{task.mode}", lang), type="primary")
if lock:
    if birads is None:
        st.error(t("study.birads_missing", lang))
    else:
        try:
            store.record_read(reader.id, task.case.case_id, task.mode, birads, probability)
        except MpmmuError as error:
            logger.exception("read of case %s could not be locked", task.case.case_id)
            st.error(t("study.lock_failed", lang, reason=str(error)))
        else:
            st.rerun()
