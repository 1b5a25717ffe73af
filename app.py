"""mpmmu app: builds the page navigation; each page draws the language switch and research-use statement.

Run with ``streamlit run app.py``. Pages live in ``pages/``; the model bundle comes from
``MPMMU_BUNDLE`` or the bundle shipped in ``assets/models/mpmmu-default``.

Every page starts with ``lang = ui.layout.page_frame()``: it draws the sidebar language switch
and the research-use statement, which each page must show.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import streamlit as st

# The ui helpers live beside this file; AppTest does not put the script's folder on sys.path.
APP_DIR = str(Path(__file__).resolve().parent)
if APP_DIR not in sys.path:
    sys.path.insert(0, APP_DIR)

from mpmmu.i18n import t  # noqa: E402
from ui import state  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="mpmmu", page_icon=":material/stethoscope:", layout="wide")
state.init_state()
# Page titles follow the language chosen on the last run; every page draws the switch itself.
lang = state.lang()

pages = [
    st.Page("pages/second_read.py", title=t("common.page_second_read", lang), icon=":material/stethoscope:", url_path="second_read", default=True),
    st.Page("pages/model_card.py", title=t("common.page_model_card", lang), icon=":material/description:", url_path="model_card"),
    st.Page("pages/study_read.py", title=t("study.page_read", lang), icon=":material/visibility:", url_path="study_read"),
    st.Page("pages/teaching.py", title=t("teaching.page_title", lang), icon=":material/school:", url_path="teaching"),
    st.Page("pages/study_setup.py", title=t("study.page_setup", lang), icon=":material/folder_managed:", url_path="study_setup"),
    st.Page("pages/study_analysis.py", title=t("study.page_analysis", lang), icon=":material/monitoring:", url_path="study_analysis"),
]
st.navigation(pages).run()
