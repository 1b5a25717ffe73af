"""Teaching: a trainee reads library cases with known ground truth. For each case they pick a BI-RADS
category and the lexicon descriptors before the reveal, then see the truth, the AI probability and
the heatmaps, and a running score.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import streamlit as st

from mpmmu.config import cache_root
from mpmmu.data import write_synthetic_dataset
from mpmmu.errors import MpmmuError
from mpmmu.i18n import t
from mpmmu.study.design import BIRADS_CATEGORIES
from mpmmu.study.teaching import LEXICONS, TeachingLibrary, load_library, record_answer, trainee_scores
from ui.layout import page_frame
from ui.study import case_images, get_store, pipeline_available, predict_case, show_images

logger = logging.getLogger(__name__)

#: Environment variables naming the library's manifest and its optional annotations CSV.
MANIFEST_ENV = "MPMMU_TEACHING_MANIFEST"
ANNOTATIONS_ENV = "MPMMU_TEACHING_ANNOTATIONS"
REVEAL = "teaching_reveal"
NOT_GIVEN = ""

lang = page_frame()
st.title(t("teaching.title", lang))
st.caption(t("teaching.intro", lang))
store = get_store(lang)


@st.cache_resource(show_spinner=False)
def _library(manifest: str, annotations: str | None) -> TeachingLibrary:
    return load_library(manifest, annotations)


def synthetic_manifest() -> Path:
    folder = cache_root() / "teaching-synthetic"
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        write_synthetic_dataset(folder, n_per_class=5, seed=0, size=256)
    return manifest


# 1. The trainee and the library.
trainee = st.text_input(t("teaching.trainee", lang), key="teaching_trainee").strip()
manifest = os.environ.get(MANIFEST_ENV, "").strip()
annotations = os.environ.get(ANNOTATIONS_ENV, "").strip() or None
if not manifest:
    st.caption(t("teaching.synthetic_library", lang, variable=MANIFEST_ENV))
    manifest = str(synthetic_manifest())
try:
    library = _library(manifest, annotations)
except (MpmmuError, OSError) as error:
    logger.exception("teaching library %s could not be loaded", manifest)
    st.error(t("teaching.library_failed", lang, reason=str(error)))
    st.stop()
if not trainee:
    st.info(t("teaching.enter_name", lang))
    st.stop()

scores = trainee_scores(store, trainee, library.library_id)
st.sidebar.metric(t("teaching.score", lang), f"{100 * scores['mean_score']:.0f}%", help=t("teaching.score_help", lang))
st.sidebar.caption(t("teaching.score_detail", lang, attempts=scores["attempts"], calls=scores["calls_correct"]))

# 2. The case: the one being revealed, else the next the trainee has not answered, in a
# trainee-specific order.
answered = {attempt["case_id"] for attempt in scores["history"]}
reveal = st.session_state.get(REVEAL)
if reveal is not None and reveal[0] == trainee:
    case = library.case(reveal[1])
else:
    seed = int.from_bytes(hashlib.sha256(trainee.encode()).digest()[:4], "big")
    order = np.random.default_rng(seed).permutation(len(library.cases))
    remaining = [library.cases[k] for k in order if library.cases[k].row.case_id not in answered]
    if not remaining:
        st.success(t("teaching.library_done", lang, attempts=scores["attempts"]))
        st.stop()
    case = remaining[0]

st.subheader(t("teaching.case_heading", lang, number=len(answered) + (reveal is None or reveal[0] != trainee), total=len(library.cases)))
try:
    records = case_images(case.row)
except (MpmmuError, OSError) as error:
    logger.exception("images of teaching case %s could not be loaded", case.row.case_id)
    st.error(t("teaching.images_failed", lang, reason=str(error)))
    st.stop()

# 3. Before the reveal: the trainee's answer.
if reveal is None or reveal[0] != trainee:
    show_images(records, lang)
    with st.form(f"quiz_{case.row.case_id}"):
        birads = st.radio(t("study.birads", lang), BIRADS_CATEGORIES, index=None, horizontal=True, key=f"quiz_birads_{case.row.case_id}")
        descriptors = {}
        for modality in case.modalities:
            st.markdown(f"**{t(f'common.{modality}', lang)}**")
            columns = st.columns(len(LEXICONS[modality]))
            for column, (name, terms) in zip(columns, LEXICONS[modality].items()):
                descriptors[f"{modality}_{name}"] = column.selectbox(
                    t(f"teaching.descriptor_{name}", lang),
                    [NOT_GIVEN, *terms],
                    format_func=lambda term: t("teaching.not_given", lang) if term == NOT_GIVEN else term,
                    key=f"quiz_{modality}_{name}_{case.row.case_id}",
                )
        submitted = st.form_submit_button(t("teaching.reveal", lang), type="primary")
    if submitted:
        if birads is None:
            st.error(t("study.birads_missing", lang))
        else:
            given = {key: value for key, value in descriptors.items() if value != NOT_GIVEN}
            grade = record_answer(store, trainee, library, case.row.case_id, birads, given)
            st.session_state[REVEAL] = (trainee, case.row.case_id, birads, given, grade)
            st.rerun()
    st.stop()

# 4. The reveal: truth, the trainee's grade, the AI result and heatmaps.
_, _, birads, given, grade = reveal
label = t(f"common.label_{case.row.label}", lang)
if grade.call_correct:
    st.success(t("teaching.truth_correct", lang, label=label, birads=birads))
else:
    st.error(t("teaching.truth_wrong", lang, label=label, birads=birads))
if case.reference_birads is not None:
    st.markdown(t("teaching.reference_birads", lang, birads=case.reference_birads))
if grade.descriptors_graded:
    st.markdown(t("teaching.descriptors_score", lang, matched=grade.descriptors_matched, graded=grade.descriptors_graded))
    st.table(
        [
            {t("teaching.descriptor", lang): key, t("teaching.reference", lang): value, t("teaching.your_answer", lang): given.get(key, "–")}
            for key, value in case.reference_descriptors.items()
        ]
    )

heatmaps = {}
if pipeline_available():
    try:
        prediction = predict_case(case.row, records, lang, explain=True)
    except MpmmuError as error:
        logger.exception("AI result for teaching case %s failed", case.row.case_id)
        st.warning(t("teaching.ai_failed", lang, reason=str(error)))
    else:
        st.metric(t("study.ai_probability", lang), f"{100 * prediction.p_malignant:.0f}%")
        heatmaps = dict(prediction.heatmaps)
else:
    st.info(t("teaching.ai_unavailable", lang))
show_images(records, lang, heatmaps)

if st.button(t("teaching.next_case", lang), type="primary", key="teaching_next"):
    del st.session_state[REVEAL]
    st.rerun()
