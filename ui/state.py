"""Session-state keys of the app, initialised once per session by :func:`init_state`."""

from __future__ import annotations

from typing import Any

import streamlit as st

from mpmmu.i18n import DEFAULT_LANGUAGE

LANG = "lang"
CASE_SOURCE = "case_source"
EXAMPLE = "example_case"
#: The last analysis: a dict with "case_key", "prediction", "elapsed" (seconds) and "report",
#: emptied and refilled in place (see :func:`result_slot`).
RESULT = "result"
#: The radiologist's own read: {"birads", "probability", "locked_at"}; one before, one after revising.
READ_INITIAL = "reader_initial"
READ_REVISED = "reader_revised"
#: Images the reads above belong to, so a new case starts with a blank read.
READ_CASE = "reader_case"
BLIND_READ = "blind_read"
OPACITY = "heatmap_opacity"
#: Per-session memo of decoded uploads and display copies, keyed by content hash.
MEMO = "memo"

_DEFAULTS: dict[str, Any] = {
    LANG: DEFAULT_LANGUAGE,
    READ_INITIAL: None,
    READ_REVISED: None,
    READ_CASE: None,
    OPACITY: 0.5,
}


def init_state() -> None:
    """Set every session key that has no value yet."""
    for key, value in _DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault(MEMO, {})
    st.session_state.setdefault(RESULT, {})


def lang() -> str:
    """Return the language code chosen in the sidebar."""
    return st.session_state.get(LANG, DEFAULT_LANGUAGE)


def slot_key(slot: str, name: str) -> str:
    """Return the session key of widget ``name`` for image slot ``slot`` ("mammography" or "ultrasound")."""
    return f"{slot}_{name}"


def memo() -> dict[str, Any]:
    """Return this session's memo dict for derived data (decoded uploads, display copies)."""
    return st.session_state.setdefault(MEMO, {})


def result_slot() -> dict[str, Any]:
    """Return this session's result dict.

    The dict is changed in place, never replaced: Streamlit's reference cycles (old script-run
    contexts holding old session-state snapshots) then point at the same, emptied dict instead of
    keeping every earlier result's full-size heatmaps alive until the next cycle collection.
    """
    return st.session_state.setdefault(RESULT, {})
