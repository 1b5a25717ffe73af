"""Study set-up: the organiser signs in with the admin password, creates a reader study from a case
manifest (design, readers, seed), hands out the invitation codes and follows the readers' progress.
"""

from __future__ import annotations

import io
import csv
import logging
import os

import streamlit as st

from mpmmu.data.manifest import manifest_sha256, read_manifest
from mpmmu.errors import MpmmuError
from mpmmu.i18n import t
from mpmmu.study.design import BIRADS_CATEGORIES, DESIGNS
from ui.layout import page_frame
from ui.study import get_store, require_admin

logger = logging.getLogger(__name__)

#: Session key of the codes of the study just created, shown until the organiser leaves the page.
NEW_CODES = "study_new_codes"

lang = page_frame()
st.title(t("study.setup_title", lang))
st.caption(t("study.setup_intro", lang))
require_admin(lang)
store = get_store(lang)


def codes_csv(codes: dict[str, str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["reader", "code"])
    writer.writerows(codes.items())
    return buffer.getvalue()


def show_codes(study_name: str, codes: dict[str, str]) -> None:
    st.success(t("study.codes_issued", lang, study=study_name))
    st.caption(t("study.codes_once", lang))
    st.table([{t("study.reader", lang): reader, t("study.code", lang): code} for reader, code in codes.items()])
    st.download_button(
        t("study.download_codes", lang),
        codes_csv(codes),
        file_name=f"{study_name}-codes.csv",
        mime="text/csv",
        key="download_codes",
    )


# 1. A new study.
st.header(t("study.create_header", lang))
with st.form("create_study"):
    name = st.text_input(t("study.name", lang), key="study_name")
    manifest = st.text_input(
        t("study.manifest", lang),
        value=os.environ.get("MPMMU_STUDY_MANIFEST", ""),
        help=t("study.manifest_help", lang),
        key="study_manifest",
    )
    design = st.radio(
        t("study.design", lang),
        DESIGNS,
        format_func=lambda value: t(f"study.design_{value}", lang),
        key="study_design",
    )
    washout = st.number_input(t("study.washout_days", lang), min_value=0, max_value=365, value=0, step=1, key="study_washout")
    readers_text = st.text_input(t("study.readers", lang), value="3", help=t("study.readers_help", lang), key="study_readers")
    seed = st.number_input(t("study.seed", lang), min_value=0, max_value=2**31 - 1, value=0, step=1, key="study_seed")
    st.caption(t("study.rating_scales", lang, categories=", ".join(BIRADS_CATEGORIES)))
    create = st.form_submit_button(t("study.create", lang), type="primary")

if create:
    readers: int | list[str]
    readers = int(readers_text) if readers_text.strip().isdigit() else [part.strip() for part in readers_text.split(",") if part.strip()]
    try:
        rows = read_manifest(manifest.strip())
        info, codes = store.create_study(
            name.strip() or os.path.splitext(os.path.basename(manifest.strip()))[0],
            rows,
            design=design,
            readers=readers,
            seed=int(seed),
            washout_days=int(washout) if design == "crossover" else 0,
            manifest_path=os.path.abspath(manifest.strip()),
            manifest_sha256=manifest_sha256(manifest.strip()),
        )
    except (MpmmuError, OSError) as error:
        logger.exception("study could not be created from %s", manifest)
        st.error(t("study.create_failed", lang, reason=str(error)))
    else:
        st.session_state[NEW_CODES] = (info.name, codes)

if st.session_state.get(NEW_CODES):
    show_codes(*st.session_state[NEW_CODES])

# 2. Existing studies: progress, new codes, one more reader.
st.header(t("study.studies_header", lang))
studies = store.studies()
if not studies:
    st.info(t("study.no_studies", lang))
    st.stop()

study = st.selectbox(
    t("study.choose_study", lang),
    studies,
    format_func=lambda info: t("study.study_label", lang, id=info.id, name=info.name, design=t(f"study.design_{info.design}", lang), cases=info.n_cases, readers=info.n_readers),
    key="setup_study",
)
progress = store.progress(study.id)
st.dataframe(
    [
        {
            t("study.reader", lang): item.reader,
            t("study.reads_done", lang): f"{item.reads_done}/{item.reads_total}",
            t("study.state", lang): t("study.state_finished", lang)
            if item.finished
            else (
                t("study.state_waiting", lang, session=item.session, date=f"{item.next_session_opens:%Y-%m-%d %H:%M}")
                if item.next_session_opens is not None
                else t("study.state_reading", lang, session=item.session)
            ),
        }
        for item in progress
    ],
    hide_index=True,
)

columns = st.columns(2)
with columns[0]:
    if st.button(t("study.reissue_codes", lang), key="reissue_codes"):
        st.session_state[NEW_CODES] = (study.name, store.reissue_codes(study.id))
        st.rerun()
with columns[1]:
    with st.form("add_reader"):
        new_reader = st.text_input(t("study.new_reader", lang), key="new_reader_name")
        if st.form_submit_button(t("study.add_reader", lang)):
            try:
                reader, code = store.add_reader(study.id, new_reader)
            except MpmmuError as error:
                st.error(t("study.add_reader_failed", lang, reason=str(error)))
            else:
                st.session_state[NEW_CODES] = (study.name, {reader.name: code})
                st.rerun()
