"""Result panel of the second-read page: probabilities, votes, agreement, heatmaps, attention, report."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from mpmmu.i18n import t
from mpmmu.records import ImageRecord, Prediction
from mpmmu.report import CaseReport, is_no_call, probability_band, report_json, report_pdf, report_png
from mpmmu.viz import channel_weight_chart, image_figure, probability_bars, probability_gauge, votes_chart
from ui import state
from ui.viewer import PLOTLY_CONFIG

logger = logging.getLogger(__name__)

LEARNERS = ("logistic_regression", "svm", "random_forest", "extra_trees", "meta_mlp")


def _display_map(prediction_id: int, name: str, array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Return ``array`` resized to ``shape`` (the displayed image), memoised per prediction."""
    memo = state.memo()
    key = ("map", prediction_id, name, shape)
    if key not in memo:
        for old in [k for k in memo if isinstance(k, tuple) and k[0] == "map" and k[1] != prediction_id]:
            del memo[old]
        array = np.asarray(array, dtype=np.float32)
        # The maps are upsampled from the last feature map (7 x 7 for a 224-pixel input), so striding
        # down to about twice the display size first loses no detail and saves most of the time.
        stride = max(1, min(array.shape[0] // (2 * shape[0]), array.shape[1] // (2 * shape[1])))
        coarse = np.ascontiguousarray(array[::stride, ::stride])
        resized = Image.fromarray(coarse).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
        memo[key] = np.asarray(resized)
    return memo[key]


def _normalise(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    low, high = float(np.min(array)), float(np.max(array))
    if high - low < 1e-12:
        return np.zeros_like(array)
    return (array - low) / (high - low)


def _headline(prediction: Prediction, lang: str) -> None:
    band = probability_band(prediction.p_malignant, prediction.threshold)
    columns = st.columns([2, 3])
    with columns[0]:
        st.plotly_chart(
            probability_gauge(prediction.p_malignant, prediction.threshold, title=t("second_read.p_malignant", lang)),
            config=PLOTLY_CONFIG,
            key="gauge",
        )
    with columns[1]:
        st.metric(
            t("second_read.p_malignant", lang),
            f"{100 * prediction.p_malignant:.1f}%",
            help=t("second_read.p_malignant_help", lang),
        )
        st.markdown(
            t(
                "second_read.band_line",
                lang,
                band=t(f"common.band_{band}", lang),
                threshold=f"{100 * prediction.threshold:.0f}",
            )
        )
        st.caption(t("second_read.threshold_source", lang, model=t(f"common.fusion_{prediction.fusion}", lang)))
        if is_no_call(prediction):
            st.error(t("common.no_call", lang), icon=":material/balance:")
        else:
            st.success(agreement_text(prediction, lang), icon=":material/check_circle:")


def votes_are_comparison(prediction: Prediction) -> bool:
    """Return whether the votes come from another model than the one that produced ``p_malignant`` (late fusion)."""
    return bool(prediction.votes_model) and prediction.votes_model != prediction.fusion


def _votes_threshold(prediction: Prediction) -> float:
    return prediction.threshold if prediction.votes_threshold is None else prediction.votes_threshold


def agreement_text(prediction: Prediction, lang: str) -> str:
    """Return the agreement sentence, naming the stacking threshold when its learners only compare."""
    percent = f"{100 * prediction.agreement:.0f}"
    if votes_are_comparison(prediction):
        return t(
            "second_read.learners_agree_comparison",
            lang,
            percent=percent,
            model=t(f"common.fusion_{prediction.votes_model}", lang),
            threshold=f"{100 * _votes_threshold(prediction):.0f}",
        )
    return t("second_read.learners_agree", lang, percent=percent)


def votes_caption(prediction: Prediction, lang: str) -> str:
    """Return the vote chart caption, which marks the votes as a comparison when late fusion produced the answer."""
    if votes_are_comparison(prediction):
        return t(
            "second_read.votes_caption_comparison",
            lang,
            votes_model=t(f"common.fusion_{prediction.votes_model}", lang),
            fusion=t(f"common.fusion_{prediction.fusion}", lang),
        )
    return t("second_read.votes_caption", lang, fusion=t(f"common.fusion_{prediction.fusion}", lang))


def device_text(device: str, lang: str) -> str:
    """Translate the pipeline's device name "cpu (N threads)"; other names (a GPU model) stay as they are."""
    match = re.fullmatch(r"cpu \((\d+) threads?\)", device)
    if match is None:
        return device
    return t("common.device_cpu", lang, threads=match.group(1))


def _modalities(prediction: Prediction, lang: str) -> None:
    if prediction.p_mammography is None or prediction.p_ultrasound is None:
        present = "ultrasound" if prediction.p_mammography is None else "mammography"
        st.info(t(f"second_read.single_modality_{present}", lang), icon=":material/info:")

    fused_available = prediction.p_mammography is not None and prediction.p_ultrasound is not None
    rows = [
        (t("second_read.mammography_only", lang), prediction.p_mammography),
        (t("second_read.ultrasound_only", lang), prediction.p_ultrasound),
        (t("second_read.fused", lang), prediction.p_malignant if fused_available else None),
    ]
    columns = st.columns(3)
    for column, (label, value) in zip(columns, rows):
        column.metric(label, "—" if value is None else f"{100 * value:.1f}%")
    st.plotly_chart(
        probability_bars(
            rows,
            prediction.threshold,
            title=t("second_read.by_modality", lang),
            threshold_label=t("second_read.threshold", lang),
            missing_label=t("second_read.not_given", lang),
        ),
        config=PLOTLY_CONFIG,
        key="modality_bars",
    )


def _votes(prediction: Prediction, lang: str) -> None:
    labels = {name: t(f"common.learner_{name}", lang) for name in LEARNERS}
    st.plotly_chart(
        votes_chart(
            prediction.votes,
            _votes_threshold(prediction),
            learner_labels=labels,
            title=t("second_read.votes_title", lang),
            threshold_label=t("second_read.threshold", lang),
        ),
        config=PLOTLY_CONFIG,
        key="votes",
    )
    st.caption(votes_caption(prediction, lang))


def _heatmaps(
    prediction: Prediction,
    records: Mapping[str, ImageRecord | None],
    displays: Mapping[str, np.ndarray],
    rois: Mapping[str, tuple | None],
    lang: str,
) -> None:
    st.subheader(t("second_read.heatmaps", lang))
    opacity = st.slider(t("second_read.opacity", lang), 0.0, 1.0, step=0.05, key=state.OPACITY)
    present = [modality for modality in ("mammography", "ultrasound") if records.get(modality) is not None]
    columns = st.columns(len(present))
    prediction_id = id(prediction)
    for column, modality in zip(columns, present):
        record = records[modality]
        display = displays[modality]
        with column:
            st.markdown(f"**{t(f'common.{modality}', lang)}**")
            heatmap = prediction.heatmaps.get(modality)
            if heatmap is None:
                st.info(t("second_read.no_heatmap", lang))
            else:
                shown = _display_map(prediction_id, f"cam-{modality}", heatmap, display.shape[:2])
                figure = image_figure(
                    display,
                    original_shape=record.shape,
                    heatmap=shown,
                    opacity=opacity,
                    roi=rois.get(modality),
                    colorbar_title=t("second_read.colorbar", lang),
                    height=420,
                    image_format="jpeg",
                )
                st.plotly_chart(figure, config=PLOTLY_CONFIG, key=f"cam_{modality}")
                if not prediction.roi_used.get(modality, False):
                    st.caption(t("second_read.whole_image", lang))

    _attention(prediction, records, displays, opacity, lang)


def _attention_map_chart(
    prediction: Prediction,
    records: dict,
    displays: dict,
    modality: str,
    attention_map: np.ndarray,
    opacity: float,
    lang: str,
    key: str,
) -> None:
    """Draw one attention map over the displayed image of ``modality``."""
    display = displays[modality]
    shown = _display_map(id(prediction), key, _normalise(attention_map), display.shape[:2])
    st.plotly_chart(
        image_figure(
            display,
            original_shape=records[modality].shape,
            heatmap=shown,
            opacity=opacity,
            colorbar_title=t("second_read.attention_colorbar", lang),
            height=380,
            image_format="jpeg",
        ),
        config=PLOTLY_CONFIG,
        key=key,
    )


def _attention(
    prediction: Prediction,
    records: Mapping[str, ImageRecord | None],
    displays: Mapping[str, np.ndarray],
    opacity: float,
    lang: str,
) -> None:
    spatial = prediction.attention.get("mammography_spatial")
    channels = prediction.attention.get("ultrasound_channels")
    if spatial is None and channels is None:
        return
    st.subheader(t("second_read.attention", lang))
    columns = st.columns(2)
    if spatial is not None and records.get("mammography") is not None:
        with columns[0]:
            st.markdown(f"**{t('second_read.cbam_title', lang)}**")
            _attention_map_chart(prediction, records, displays, "mammography", spatial, opacity, lang, key="cbam")
            st.caption(t("second_read.cbam_caption", lang))
    if channels is not None:
        weights = np.asarray(channels, dtype=np.float64).ravel()
        with columns[1]:
            st.markdown(f"**{t('second_read.eca_title', lang)}**")
            channel_map = prediction.attention.get("ultrasound_channel_map")
            if channel_map is not None and records.get("ultrasound") is not None:
                _attention_map_chart(
                    prediction, records, displays, "ultrasound", channel_map, opacity, lang, key="eca_map"
                )
                st.caption(t("second_read.eca_map_caption", lang))
            st.plotly_chart(
                channel_weight_chart(
                    weights,
                    title="",
                    x_label=t("second_read.eca_channel", lang),
                    x_axis_title=t("second_read.eca_channel_rank", lang),
                    y_label=t("second_read.eca_weight", lang),
                ),
                config=PLOTLY_CONFIG,
                key="eca",
            )
            top = max(1, weights.size // 10)
            share = float(np.sort(weights)[::-1][:top].sum() / max(weights.sum(), 1e-12))
            st.caption(
                t(
                    "second_read.eca_caption",
                    lang,
                    channels=weights.size,
                    top=top,
                    share=f"{100 * share:.0f}",
                    mean=f"{weights.mean():.2f}",
                )
            )


def _run_details(prediction: Prediction, elapsed: float, lang: str) -> None:
    with st.expander(t("second_read.run_details", lang, device=device_text(prediction.device, lang), seconds=f"{elapsed:.2f}")):
        rows = [{t("second_read.step", lang): name, "ms": round(1000 * float(value), 1)} for name, value in prediction.timings.items()]
        rows.append({t("second_read.step", lang): t("second_read.step_total", lang), "ms": round(1000 * elapsed, 1)})
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        st.caption(t("second_read.model_version", lang, version=prediction.model_version, fusion=t(f"common.fusion_{prediction.fusion}", lang)))


def _report_file(slot: dict, kind: str, lang: str) -> bytes | str:
    """Build one report file from the session's current result, when the reader clicks."""
    report = slot.get("report")
    if report is None:
        # The result was replaced between drawing the button and the click.
        return b""
    if kind == "pdf":
        return report_pdf(report, lang)
    if kind == "png":
        return report_png(report, lang)
    return report_json(report)


def _report(slot: dict, lang: str) -> None:
    st.subheader(t("second_read.report", lang))
    st.caption(t("second_read.report_caption", lang))
    stem = f"mpmmu-report-{slot['report'].created_at:%Y%m%d-%H%M%S}"
    columns = st.columns(3)
    # Callables build the files only on a click. They read the report from the slot rather than
    # holding it, so a stored callable never keeps an old result's heatmaps in memory.
    files = (("pdf", "application/pdf"), ("png", "image/png"), ("json", "application/json"))
    for column, (kind, mime) in zip(columns, files):
        column.download_button(
            t(f"second_read.download_{kind}", lang),
            functools.partial(_report_file, slot, kind, lang),
            file_name=f"{stem}.{kind}",
            mime=mime,
            key=f"report_{kind}",
        )


def render_result(
    slot: dict,
    records: Mapping[str, ImageRecord | None],
    displays: Mapping[str, np.ndarray],
    rois: Mapping[str, tuple | None],
    lang: str,
) -> None:
    """Show one analysis: headline, per-modality probabilities, votes, heatmaps, details, report.

    ``slot`` is the session's result dict (:func:`ui.state.result_slot`); the report drawn from
    it is stored back under ``"report"`` for the download buttons.
    """
    prediction: Prediction = slot["prediction"]
    elapsed: float = slot["elapsed"]
    st.header(t("second_read.result", lang))
    _headline(prediction, lang)
    if prediction.warnings:
        # The pipeline's notes are English sentences from the library, shown as they are.
        with st.expander(t("second_read.pipeline_notes", lang, count=len(prediction.warnings))):
            for warning in prediction.warnings:
                st.markdown(f"- {warning}")
    _modalities(prediction, lang)
    _votes(prediction, lang)
    _heatmaps(prediction, records, displays, rois, lang)
    if prediction.pseudo_paired_training:
        st.caption(t("common.pseudo_pair_caveat", lang))
    _run_details(prediction, elapsed, lang)
    slot["report"] = CaseReport(
        prediction=prediction,
        mammogram=records.get("mammography"),
        ultrasound=records.get("ultrasound"),
        mammogram_roi=rois.get("mammography"),
        ultrasound_roi=rois.get("ultrasound"),
        initial_read=st.session_state.get(state.READ_INITIAL),
        revised_read=st.session_state.get(state.READ_REVISED),
    )
    _report(slot, lang)
