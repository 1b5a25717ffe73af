"""Streamlit helpers of the reader-study and teaching pages: the store, the organiser's password,
case images and the AI result with its heatmaps.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from mpmmu.data.manifest import CaseRow, read_manifest
from mpmmu.errors import MpmmuError, StudyStoreError
from mpmmu.explain.overlay import overlay
from mpmmu.i18n import t
from mpmmu.io import read_image
from mpmmu.records import ImageRecord, Prediction
from mpmmu.study.store import StudyStore, default_url

logger = logging.getLogger(__name__)

#: Environment variable with the organiser's password; there is no default password.
ADMIN_PASSWORD_ENV = "MPMMU_ADMIN_PASSWORD"
ADMIN_SIGNED_IN = "study_admin_signed_in"
MODALITIES = ("mammography", "ultrasound")


@st.cache_resource(show_spinner=False)
def _open_store(url: str) -> StudyStore:
    # Shared by every session: the store holds only an engine and a session factory.
    return StudyStore(url)


def get_store(lang: str) -> StudyStore:
    """Return the study store of ``MPMMU_STUDY_DB`` (or the default file), or explain and stop."""
    url = default_url()
    try:
        return _open_store(url)
    except MpmmuError as error:
        logger.exception("study store could not be opened")
        st.error(t("study.store_failed", lang, reason=str(error)))
        st.stop()
    raise AssertionError("unreachable: st.stop() ends the script run")


def require_admin(lang: str) -> None:
    """Ask for the organiser's password once per session and stop the page until it is given."""
    expected = os.environ.get(ADMIN_PASSWORD_ENV, "")
    if not expected:
        st.error(t("study.admin_not_configured", lang, variable=ADMIN_PASSWORD_ENV))
        st.stop()
    if st.session_state.get(ADMIN_SIGNED_IN):
        return
    with st.form("admin_sign_in"):
        password = st.text_input(t("study.admin_password", lang), type="password", key="admin_password")
        submitted = st.form_submit_button(t("study.admin_sign_in", lang))
    if submitted:
        if hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8")):
            st.session_state[ADMIN_SIGNED_IN] = True
            st.rerun()
        logger.warning("organiser sign-in failed: wrong password")
        st.error(t("study.admin_wrong_password", lang))
    st.stop()


@st.cache_data(show_spinner=False, max_entries=8)
def _manifest_rows(path: str, modified: float) -> dict[str, CaseRow]:
    return {row.case_id: row for row in read_manifest(path)}


def manifest_row(manifest_path: str, case_id: str) -> CaseRow:
    """Return one manifest row, re-reading the manifest when the file changes.

    Raises
    ------
    StudyStoreError
        When the manifest is missing or lacks the case.
    """
    path = Path(manifest_path)
    if not manifest_path or not path.is_file():
        raise StudyStoreError(f"the study's case manifest {manifest_path!r} was not found; restore it at that path")
    rows = _manifest_rows(str(path), path.stat().st_mtime)
    if case_id not in rows:
        raise StudyStoreError(f"case {case_id!r} is missing from the manifest {manifest_path}")
    return rows[case_id]


def case_images(row: CaseRow, expected_hashes: dict[str, str | None] | None = None) -> dict[str, ImageRecord]:
    """Read a case's images, memoised per session, checking them against the hashes in the store.

    Raises
    ------
    StudyStoreError
        When an image file no longer matches the hash recorded when the study was created.
    """
    memo = st.session_state.setdefault("study_image_memo", {})
    records: dict[str, ImageRecord] = {}
    for modality, path in (("mammography", row.mammogram_path), ("ultrasound", row.ultrasound_path)):
        if path is None:
            continue
        key = (str(path), path.stat().st_mtime)
        if key not in memo:
            if len(memo) > 8:
                memo.clear()
            memo[key] = read_image(path)
        record = memo[key]
        expected = (expected_hashes or {}).get(modality)
        if expected is not None and record.sha256 != expected:
            raise StudyStoreError(
                f"the {modality} image of case {row.case_id!r} changed since the study was created "
                f"(SHA-256 {record.sha256[:12]}…, expected {expected[:12]}…); restore the original file"
            )
        records[modality] = record
    return records


def show_images(records: dict[str, ImageRecord], lang: str, heatmaps: dict[str, np.ndarray] | None = None) -> None:
    """Show the case's images side by side, with a heatmap blended in where one is given."""
    present = [modality for modality in MODALITIES if modality in records]
    if not present:
        st.info(t("study.no_images", lang))
        return
    for column, modality in zip(st.columns(len(present)), present):
        record = records[modality]
        image = record.pixels
        if heatmaps and modality in heatmaps:
            image = overlay(image, heatmaps[modality], alpha=0.5)
        column.image(np.clip(image, 0.0, 1.0) if image.dtype != np.uint8 else image, caption=t(f"common.{modality}", lang), width="stretch")


def pipeline_available() -> bool:
    """Return whether a model bundle folder exists where the app looks for one."""
    # ui.loaders imports torch through mpmmu.pipeline, so pages without a model skip it.
    from ui.loaders import bundle_dir

    return bundle_dir().is_dir()


def predict_case(row: CaseRow, records: dict[str, ImageRecord], lang: str, *, explain: bool) -> Prediction:
    """Run :meth:`Pipeline.predict` on a case, memoised per session (with heatmaps when ``explain``)."""
    memo = st.session_state.setdefault("study_prediction_memo", {})
    key = (row.case_id, tuple(record.sha256 for record in records.values()))
    cached: Any = memo.get(key)
    if cached is not None and (cached.heatmaps or not explain):
        return cached
    from ui.loaders import get_pipeline

    pipeline = get_pipeline(lang)
    with st.spinner(t("study.ai_running", lang)):
        prediction = pipeline.predict(
            records.get("mammography"),
            records.get("ultrasound"),
            mammogram_roi=row.mammogram_roi,
            ultrasound_roi=row.ultrasound_roi,
            explain=explain,
        )
    if len(memo) > 8:
        memo.clear()
    memo[key] = prediction
    return prediction
