"""Model card: the radiologist reads what the model is for, what it was trained on, how well it did
on held-out data, and where it is known to fail, before relying on any of its outputs.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mpmmu.i18n import t
from mpmmu.viz import results_table, roc_curves, roc_figure
from ui.layout import page_frame
from ui.loaders import bundle_dir, get_pipeline
from ui.viewer import PLOTLY_CONFIG

lang = page_frame()
st.title(t("model_card.title", lang))
pipeline = get_pipeline(lang)
metadata = pipeline.metadata

st.header(t("model_card.intended_use", lang))
st.markdown(t("model_card.intended_use_text", lang))

st.header(t("model_card.model", lang))
fusion = metadata.get("fusion", {})
st.markdown(
    t(
        "model_card.model_text",
        lang,
        version=pipeline.model_version or "—",
        bundle=str(bundle_dir()),
        fusion=t(f"common.fusion_{fusion.get('chosen', 'stacking')}", lang),
        reason=fusion.get("reason", "—"),
        device=pipeline.device_name,
    )
)
thresholds = metadata.get("thresholds", {})
if thresholds:
    st.dataframe(
        pd.DataFrame(
            [{t("model_card.column_model", lang): name, t("model_card.column_threshold", lang): round(float(value), 3)} for name, value in thresholds.items()]
        ),
        hide_index=True,
    )

st.header(t("model_card.training_data", lang))
st.markdown(t("model_card.training_data_text", lang))
training = metadata.get("training_data", {})
if training.get("description"):
    st.caption(t("model_card.bundle_description", lang, description=training["description"]))

st.subheader(t("model_card.pseudo_pairing", lang))
st.warning(t("common.pseudo_pair_caveat", lang))
st.markdown(t("model_card.pseudo_pairing_text", lang))

st.header(t("model_card.results", lang))
rows = results_table(metadata)
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True)
else:
    st.info(t("model_card.no_results", lang))
curves = roc_curves(metadata)
if curves:
    labels = {name: t(f"common.fusion_{name}", lang) if name in ("stacking", "late_fusion", "mammography_only", "ultrasound_only") else name for name in curves}
    st.plotly_chart(
        roc_figure(
            curves,
            title=t("model_card.roc_title", lang),
            x_label=t("model_card.roc_x", lang),
            y_label=t("model_card.roc_y", lang),
            curve_labels=labels,
        ),
        config=PLOTLY_CONFIG,
        key="roc",
    )
else:
    st.info(t("model_card.no_roc", lang))

st.header(t("model_card.limitations", lang))
st.markdown(t("model_card.limitations_text", lang))
