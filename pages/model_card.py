"""Model card: the radiologist reads what the model is for, what it was trained on, how well it did
on held-out data, and where it is known to fail, before relying on any of its outputs.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mpmmu.i18n import catalogue, t
from mpmmu.viz import (
    fusion_reason_text,
    results_table,
    roc_curves,
    roc_figure,
    single_modality_names,
    training_data_text,
)
from ui.layout import page_frame
from ui.loaders import bundle_dir, get_pipeline
from ui.result import device_text
from ui.viewer import PLOTLY_CONFIG


def name_of(kind: str, name: str, lang: str) -> str:
    """Return the translated name of an evaluation set or model, or ``name`` when none is catalogued."""
    key = f"model_card.{kind}_{name}"
    return t(key, lang) if key in catalogue() else name


def render() -> None:
    """Draw the page."""
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
            reason=fusion_reason_text(metadata, lang),
            device=device_text(pipeline.device_name, lang),
            **single_modality_names(pipeline.bundle.single_modality_models, lang),
        )
    )
    thresholds = metadata.get("thresholds", {})
    if thresholds:
        st.dataframe(
            pd.DataFrame(
                [
                    {t("model_card.column_model", lang): name_of("model", name, lang), t("model_card.column_threshold", lang): round(float(value), 3)}
                    for name, value in thresholds.items()
                ]
            ),
            hide_index=True,
        )

    st.header(t("model_card.training_data", lang))
    st.markdown(t("model_card.training_data_text", lang))
    training = metadata.get("training_data", {})
    training_text = training_data_text(metadata, lang)
    if training_text is not None:
        st.caption(training_text)
    elif training.get("description"):
        # NOTE: an older bundle without image counts only has this English description.
        st.caption(t("model_card.bundle_description", lang, description=training["description"]))

    st.subheader(t("model_card.pseudo_pairing", lang))
    st.warning(t("common.pseudo_pair_caveat", lang))
    st.markdown(t("model_card.pseudo_pairing_text", lang))

    st.header(t("model_card.results", lang))
    st.caption(t("model_card.results_caption", lang))
    rows = results_table(metadata)
    if rows:
        table = pd.DataFrame(rows)
        table["evaluation_set"] = table["evaluation_set"].map(lambda name: name_of("set", name, lang))
        table["model"] = table["model"].map(lambda name: name_of("model", name, lang))
        table = table.rename(columns={"evaluation_set": t("model_card.column_set", lang), "model": t("model_card.column_model", lang)})
        st.dataframe(table, hide_index=True)
    else:
        st.info(t("model_card.no_results", lang))

    curves = roc_curves(metadata)
    if curves:
        tabs = st.tabs([name_of("set", name, lang) or t("model_card.roc_title", lang) for name in curves])
        for tab, (evaluation_set, models) in zip(tabs, curves.items()):
            with tab:
                st.plotly_chart(
                    roc_figure(
                        models,
                        title=t("model_card.roc_title", lang),
                        x_label=t("model_card.roc_x", lang),
                        y_label=t("model_card.roc_y", lang),
                        curve_labels={name: name_of("model", name, lang) for name in models},
                    ),
                    config=PLOTLY_CONFIG,
                    key=f"roc_{evaluation_set}",
                )
    else:
        st.info(t("model_card.no_roc", lang))

    st.header(t("model_card.limitations", lang))
    st.markdown(t("model_card.limitations_text", lang))


render()
