"""Plotly figure builders; they return figures and never call Streamlit."""

from __future__ import annotations

from mpmmu.viz.metadata import (
    fusion_reason_text,
    results_table,
    roc_curves,
    single_modality_names,
    training_data_text,
)
from mpmmu.viz.figures import (
    box_from_selection,
    channel_weight_chart,
    display_image,
    encode_image,
    image_figure,
    probability_bars,
    probability_gauge,
    roc_figure,
    votes_chart,
)

__all__ = [
    "box_from_selection",
    "channel_weight_chart",
    "display_image",
    "encode_image",
    "fusion_reason_text",
    "image_figure",
    "probability_bars",
    "probability_gauge",
    "results_table",
    "roc_curves",
    "roc_figure",
    "single_modality_names",
    "training_data_text",
    "votes_chart",
]
