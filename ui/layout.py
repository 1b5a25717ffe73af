"""The frame every page draws first: the sidebar language switch and the research-use statement.

Each page calls :func:`page_frame` at its top. Drawing the frame from the page, not from
``app.py``, keeps it visible to Streamlit's AppTest, which drops elements drawn by the entry
script before ``st.navigation`` on reruns (Streamlit 1.67).
"""

from __future__ import annotations

import streamlit as st

from mpmmu.i18n import SUPPORTED_LANGUAGES, t
from ui import state

#: Key of the radio widget. Keyed widget state does not survive a page switch, so the choice is
#: copied into ``state.LANG``, which does.
LANG_WIDGET = "lang_widget"


def _store_language() -> None:
    st.session_state[state.LANG] = st.session_state[LANG_WIDGET]


def language_switch() -> str:
    """Draw the sidebar language switch and return the chosen language code."""
    codes = list(SUPPORTED_LANGUAGES)
    st.sidebar.radio(
        "Language / 语言",
        codes,
        index=codes.index(state.lang()),
        format_func=SUPPORTED_LANGUAGES.__getitem__,
        key=LANG_WIDGET,
        on_change=_store_language,
        horizontal=True,
    )
    return state.lang()


def research_use_banner() -> None:
    """Show the research-use statement in both languages at the top of the page and in the sidebar."""
    both = " · ".join(t("common.research_use", code) for code in SUPPORTED_LANGUAGES)
    st.warning(both, icon=":material/science:")
    st.sidebar.caption(both)


def page_frame() -> str:
    """Draw the language switch and the research-use statement; return the language code."""
    state.init_state()
    lang = language_switch()
    research_use_banner()
    return lang
