"""Cached loaders: the model bundle once per process, the example-case lists once per data folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

from mpmmu.config import DEFAULT_BUNDLE_DIR
from mpmmu.errors import MpmmuError
from mpmmu.i18n import t
from mpmmu.pipeline import Pipeline

logger = logging.getLogger(__name__)


def bundle_dir() -> Path:
    """Return the bundle folder: ``MPMMU_BUNDLE`` when set, else the bundle shipped with the repository."""
    configured = os.environ.get("MPMMU_BUNDLE")
    return Path(configured).expanduser() if configured else DEFAULT_BUNDLE_DIR


@st.cache_resource(show_spinner=False)
def _load_pipeline(path: str) -> Pipeline:
    # Shared by every session of this process, so callers must treat it as read-only.
    logger.info("loading model bundle %s", path)
    return Pipeline.load(path)


def get_pipeline(lang: str) -> Pipeline:
    """Return the cached pipeline, or explain on the page why there is none and stop the script.

    ``st.cache_resource`` keeps nothing when loading raises, so a bundle put in place later is
    picked up on the next rerun.
    """
    path = bundle_dir()
    if not path.is_dir():
        st.error(t("common.bundle_missing", lang, path=str(path)))
        st.stop()
    try:
        with st.spinner(t("common.bundle_loading", lang)):
            return _load_pipeline(str(path))
    except MpmmuError as error:
        logger.exception("model bundle %s could not be loaded", path)
        st.error(t("common.bundle_invalid", lang, path=str(path), reason=str(error)))
        st.stop()
    raise AssertionError("unreachable: st.stop() ends the script run")
