"""The radiologist's own read: entered and locked before the AI result, revisable after it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import streamlit as st

from mpmmu.i18n import t
from mpmmu.report import BIRADS_CATEGORIES
from ui import state


def _read_inputs(prefix: str, lang: str, initial: dict[str, Any] | None) -> tuple[str, int]:
    columns = st.columns([1, 2])
    birads = columns[0].selectbox(
        t("second_read.birads", lang),
        BIRADS_CATEGORIES,
        index=BIRADS_CATEGORIES.index(initial["birads"]) if initial else 2,
        key=f"{prefix}_birads",
    )
    probability = columns[1].slider(
        t("second_read.reader_probability", lang),
        0,
        100,
        value=int(initial["probability"]) if initial else 50,
        step=1,
        format="%d%%",
        key=f"{prefix}_probability",
    )
    return birads, probability


def _summary(read: dict[str, Any], lang: str) -> str:
    return t("second_read.read_summary", lang, birads=read["birads"], probability=read["probability"], time=read["locked_at"])


def reader_panel(case_images: tuple[str | None, str | None], result_shown: bool, lang: str) -> bool:
    """Draw the reader's read for this case and return whether the AI result must stay hidden.

    Parameters
    ----------
    case_images : tuple
        Hashes of the mammogram and the ultrasound; a new pair starts with a blank read.
    result_shown : bool
        Whether an AI result for this case exists, which is when revising becomes possible.
    lang : str
        Language code.
    """
    if st.session_state.get(state.READ_CASE) != case_images:
        st.session_state[state.READ_CASE] = case_images
        st.session_state[state.READ_INITIAL] = None
        st.session_state[state.READ_REVISED] = None

    initial = st.session_state.get(state.READ_INITIAL)
    revised = st.session_state.get(state.READ_REVISED)
    with st.container(border=True):
        st.markdown(f"**{t('second_read.your_read', lang)}**")
        blind = st.checkbox(t("second_read.blind_read", lang), key=state.BLIND_READ, help=t("second_read.blind_read_help", lang))

        if initial is None:
            birads, probability = _read_inputs("read", lang, None)
            if st.button(t("second_read.lock_read", lang), key="lock_read", icon=":material/lock:"):
                st.session_state[state.READ_INITIAL] = {
                    "birads": birads,
                    "probability": probability,
                    "locked_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                }
                st.rerun()
        else:
            st.success(t("second_read.read_locked", lang) + " " + _summary(initial, lang), icon=":material/lock:")
            if revised is not None:
                st.info(t("second_read.read_revised", lang) + " " + _summary(revised, lang))
            if result_shown:
                with st.expander(t("second_read.revise", lang)):
                    birads, probability = _read_inputs("revise", lang, revised or initial)
                    if st.button(t("second_read.save_revision", lang), key="save_revision"):
                        st.session_state[state.READ_REVISED] = {
                            "birads": birads,
                            "probability": probability,
                            "locked_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                        }
                        st.rerun()

    return bool(blind) and initial is None
