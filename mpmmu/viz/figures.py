"""Plotly figure builders for the app's result and model-card views.

Every builder takes plain numbers and already-translated labels and returns a
:class:`plotly.graph_objects.Figure`; none of them calls Streamlit, so the same figures serve the
app, notebooks and reports.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from mpmmu.explain.overlay import overlay

logger = logging.getLogger(__name__)

#: Colours shared by every figure: benign side, malignant side, threshold line, neutral.
BENIGN_COLOUR = "#2b8cbe"
MALIGNANT_COLOUR = "#d7301f"
THRESHOLD_COLOUR = "#444444"
NEUTRAL_COLOUR = "#969696"
CROP_COLOUR = "#ffd92f"
ROI_COLOUR = "#00e5ff"

#: Heatmap colour map of :func:`mpmmu.explain.overlay` and the plotly colour scale that matches
#: it in the colour bar (both are the classic jet map).
HEATMAP_COLORMAP = "jet"
HEATMAP_COLORSCALE = "Jet"

#: Maximum side, in pixels, of an image sent to the browser. The axes stay in original pixels.
DISPLAY_MAX_SIDE = 1024


def _side_colour(p: float, threshold: float) -> str:
    return MALIGNANT_COLOUR if p >= threshold else BENIGN_COLOUR


def _base_layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        showlegend=False,
        plot_bgcolor="white",
    )
    return fig


def probability_bars(
    probabilities: Sequence[tuple[str, float | None]],
    threshold: float,
    *,
    title: str = "",
    threshold_label: str = "threshold",
    missing_label: str = "not available",
) -> go.Figure:
    """Build horizontal bars of malignancy probabilities in percent with the operating threshold.

    Parameters
    ----------
    probabilities : sequence of (label, probability or None)
        One bar per entry, top to bottom; None draws an empty row marked ``missing_label``.
    threshold : float
        Operating threshold in [0, 1], drawn as a vertical line.
    title, threshold_label, missing_label : str
        Translated texts.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    labels = [label for label, _ in probabilities]
    values = [0.0 if p is None else 100.0 * p for _, p in probabilities]
    colours = [NEUTRAL_COLOUR if p is None else _side_colour(p, threshold) for _, p in probabilities]
    texts = [missing_label if p is None else f"{100.0 * p:.1f}%" for _, p in probabilities]

    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker_color=colours,
            text=texts,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    fig.add_vline(
        x=100.0 * threshold,
        line=dict(color=THRESHOLD_COLOUR, dash="dash", width=2),
        annotation_text=f"{threshold_label} {100.0 * threshold:.0f}%",
        annotation_position="top",
    )
    fig.update_xaxes(range=[0, 100], ticksuffix="%", gridcolor="#eeeeee")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title)
    return _base_layout(fig, height=80 + 50 * len(labels))


def probability_gauge(p_malignant: float, threshold: float, *, title: str = "") -> go.Figure:
    """Build a 0-100 % gauge of the malignancy probability with the threshold as a marker line.

    Parameters
    ----------
    p_malignant : float
        Probability in [0, 1].
    threshold : float
        Operating threshold in [0, 1].
    title : str
        Translated caption.
    """
    fig = go.Figure(
        go.Indicator(
            mode="gauge+number",
            value=100.0 * p_malignant,
            number=dict(suffix="%", valueformat=".1f"),
            title=dict(text=title),
            gauge=dict(
                axis=dict(range=[0, 100], ticksuffix="%"),
                bar=dict(color=_side_colour(p_malignant, threshold)),
                steps=[
                    dict(range=[0, 100.0 * threshold], color="#deebf7"),
                    dict(range=[100.0 * threshold, 100], color="#fee0d2"),
                ],
                threshold=dict(line=dict(color=THRESHOLD_COLOUR, width=4), value=100.0 * threshold),
            ),
        )
    )
    fig.update_layout(height=230, margin=dict(l=30, r=30, t=50, b=10))
    return fig


def votes_chart(
    votes: Mapping[str, float],
    threshold: float,
    *,
    learner_labels: Mapping[str, str] | None = None,
    meta_key: str = "meta_mlp",
    title: str = "",
    threshold_label: str = "threshold",
) -> go.Figure:
    """Build a bar chart of each base learner's probability and the meta-learner's output.

    Parameters
    ----------
    votes : mapping of str to float
        Learner key to probability in [0, 1], as in :attr:`mpmmu.records.Prediction.votes`.
    threshold : float
        Operating threshold in [0, 1].
    learner_labels : mapping of str to str, optional
        Translated names per learner key; unknown keys show the key itself.
    meta_key : str
        The key of the meta-learner, drawn last with a dark outline.
    title, threshold_label : str
        Translated texts.
    """
    learner_labels = dict(learner_labels or {})
    keys = [key for key in votes if key != meta_key]
    if meta_key in votes:
        keys.append(meta_key)

    values = [100.0 * float(votes[key]) for key in keys]
    fig = go.Figure(
        go.Bar(
            x=[learner_labels.get(key, key) for key in keys],
            y=values,
            marker=dict(
                color=[_side_colour(float(votes[key]), threshold) for key in keys],
                line=dict(color=["#000000" if key == meta_key else "rgba(0,0,0,0)" for key in keys], width=3),
            ),
            text=[f"{value:.0f}%" for value in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
        )
    )
    fig.add_hline(
        y=100.0 * threshold,
        line=dict(color=THRESHOLD_COLOUR, dash="dash", width=2),
        annotation_text=f"{threshold_label} {100.0 * threshold:.0f}%",
        annotation_position="top left",
    )
    fig.update_yaxes(range=[0, 110], ticksuffix="%", gridcolor="#eeeeee")
    fig.update_layout(title=title)
    return _base_layout(fig, height=320)


def channel_weight_chart(
    weights: np.ndarray,
    *,
    top_k: int = 12,
    title: str = "",
    x_label: str = "channel",
    y_label: str = "weight",
    x_axis_title: str = "channel (ranked by weight)",
) -> go.Figure:
    """Build a chart of ECA channel weights: all channels sorted, with the strongest ``top_k`` marked.

    ECA gates each feature channel of the ultrasound branch with a weight in [0, 1]. Sorted from
    strongest to weakest, the curve shows whether the branch leaned on a few channels (a steep
    start) or spread its attention evenly (a flat line).

    Parameters
    ----------
    weights : numpy.ndarray
        (C,) channel weights in [0, 1].
    top_k : int
        How many of the strongest channels to highlight and label with their index.
    title, x_label, y_label : str
        Translated texts; ``x_label`` names one channel in the hover text.
    x_axis_title : str
        Translated title of the x axis, which orders the channels by weight.
    """
    weights = np.asarray(weights, dtype=np.float64).ravel()
    order = np.argsort(weights)[::-1]
    ranked = weights[order]
    top_k = min(top_k, weights.size)

    ranks = np.arange(weights.size)
    # A filled line instead of one bar per channel: 1,280 bars cost about 60 ms to build.
    fig = go.Figure(
        go.Scatter(
            x=ranks,
            y=ranked,
            mode="lines",
            line=dict(color=NEUTRAL_COLOUR, width=1),
            fill="tozeroy",
            customdata=order,
            hovertemplate=f"{x_label} %{{customdata}}: %{{y:.3f}}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ranks[:top_k],
            y=ranked[:top_k],
            mode="markers",
            marker=dict(color=MALIGNANT_COLOUR, size=6),
            customdata=order[:top_k],
            hovertemplate=f"{x_label} %{{customdata}}: %{{y:.3f}}<extra></extra>",
        )
    )
    fig.add_hline(y=float(weights.mean()), line=dict(color=THRESHOLD_COLOUR, dash="dot", width=1))
    fig.update_xaxes(title=x_axis_title, showticklabels=False)
    fig.update_yaxes(title=y_label, range=[0, max(1.0, float(ranked.max()) if ranked.size else 1.0)], gridcolor="#eeeeee")
    fig.update_layout(title=title)
    return _base_layout(fig, height=260)


def roc_figure(
    curves: Mapping[str, Mapping[str, Any]],
    *,
    title: str = "",
    x_label: str = "1 - specificity",
    y_label: str = "sensitivity",
    curve_labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Build ROC curves with the chance diagonal.

    Parameters
    ----------
    curves : mapping of str to mapping
        Curve name to ``{"fpr": [...], "tpr": [...], "auc": float (optional)}``.
    title, x_label, y_label : str
        Translated texts.
    curve_labels : mapping of str to str, optional
        Translated names per curve key.
    """
    curve_labels = dict(curve_labels or {})
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color=NEUTRAL_COLOUR, dash="dash"), hoverinfo="skip", showlegend=False)
    )
    for name, curve in curves.items():
        label = curve_labels.get(name, name)
        auc = curve.get("auc")
        if auc is not None:
            label = f"{label} (AUC {float(auc):.3f})"
        fig.add_trace(go.Scatter(x=list(curve["fpr"]), y=list(curve["tpr"]), mode="lines", name=label))

    fig.update_xaxes(title=x_label, range=[0, 1], constrain="domain", gridcolor="#eeeeee")
    fig.update_yaxes(title=y_label, range=[0, 1], scaleanchor="x", scaleratio=1, gridcolor="#eeeeee")
    fig.update_layout(
        title=title,
        height=460,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(yanchor="bottom", y=0.02, xanchor="right", x=0.98),
        plot_bgcolor="white",
    )
    return fig


def _to_display_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image


def encode_image(rgb: np.ndarray, image_format: Literal["png", "jpeg"] = "png") -> str:
    """Encode a uint8 (H, W, 3) image as a data URI for :class:`plotly.graph_objects.Image`.

    PNG is lossless; JPEG at quality 92 encodes about 30 times faster and 7 times smaller
    (measured on a 933 x 613 mammogram view) and suits heatmap overlays, whose colours hide its
    artefacts.
    """
    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=92)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def display_image(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """Return ``image`` as uint8 RGB with its longest side shrunk to at most ``max_side``."""
    shown, _ = _shrink(_to_display_rgb(image), max_side, Image.Resampling.LANCZOS)
    return shown


def _shrink(array: np.ndarray, max_side: int, resample: Image.Resampling) -> tuple[np.ndarray, float]:
    """Shrink ``array`` so that its longest side is at most ``max_side``; return it and the factor."""
    height, width = array.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    if factor >= 1.0:
        return array, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if array.dtype == np.uint8:
        shrunk = np.asarray(Image.fromarray(array).resize(size, resample))
    else:
        shrunk = np.asarray(Image.fromarray(array.astype(np.float32)).resize(size, resample))
    return shrunk, factor


def _rectangle(box: Sequence[float], colour: str, dash: str) -> dict[str, Any]:
    x, y, width, height = (float(value) for value in box)
    return dict(
        type="rect",
        x0=x - 0.5,
        y0=y - 0.5,
        x1=x + width - 0.5,
        y1=y + height - 0.5,
        line=dict(color=colour, width=2, dash=dash),
        fillcolor="rgba(0,0,0,0)",
    )


def image_figure(
    image: np.ndarray,
    *,
    original_shape: tuple[int, int] | None = None,
    roi: Sequence[float] | None = None,
    crop_box: Sequence[float] | None = None,
    heatmap: np.ndarray | None = None,
    opacity: float = 0.45,
    colorbar_title: str = "",
    height: int = 520,
    selectable: bool = False,
    max_side: int = DISPLAY_MAX_SIDE,
    image_format: Literal["png", "jpeg"] = "png",
    source: str | None = None,
) -> go.Figure:
    """Build a zoomable view of one image in original pixel coordinates.

    The image is shrunk for display, but the axes stay in original pixels, so boxes drawn or read
    on the figure use the same coordinates as :func:`mpmmu.preprocess.preprocess`.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) or (H, W, 3), float in [0, 1] or uint8.
    original_shape : (height, width), optional
        Size of the original image when ``image`` is an already shrunk copy of it; the axes, boxes
        and heatmap use original pixels. Defaults to ``image``'s own size.
    roi : (x, y, width, height), optional
        The lesion box, drawn as a solid cyan rectangle.
    crop_box : (x, y, width, height), optional
        The region preprocessing fed to the model, drawn as a dashed yellow rectangle.
    heatmap : numpy.ndarray, optional
        float in [0, 1] covering the same field of view, in original pixels (``original_shape``)
        or at ``image``'s size; blended by :func:`mpmmu.explain.overlay`
        (stronger where the map is higher, so zero leaves the image unchanged), with a colour bar.
    opacity : float
        Opacity of the colour where the heatmap is 1, in [0, 1].
    colorbar_title : str
        Translated colour-bar caption.
    height : int
        Figure height in CSS pixels.
    selectable : bool
        Add an invisible grid of points and box-select mode, so that a box drawn by the user comes
        back as a selection (Streamlit's ``on_select``).
    max_side : int
        Longest side of the image sent to the browser.
    image_format : {"png", "jpeg"}
        Encoding of the picture sent to the browser (see :func:`encode_image`).
    source : str, optional
        A data URI from :func:`encode_image` of ``display_image(image, max_side)``, to skip
        encoding again when only the boxes changed; ignored when ``heatmap`` is given.

    Raises
    ------
    ValueError
        When ``heatmap`` has neither the original nor the given image's height and width.
    """
    rgb = _to_display_rgb(image)
    original_height, original_width = original_shape or rgb.shape[:2]
    shown = display_image(rgb, max_side)
    scale_y = original_height / shown.shape[0]
    scale_x = original_width / shown.shape[1]

    if heatmap is not None:
        heatmap = np.asarray(heatmap, dtype=np.float32)
        if heatmap.shape[:2] not in ((original_height, original_width), rgb.shape[:2]):
            raise ValueError(
                f"heatmap shape {heatmap.shape} matches neither the original image {(original_height, original_width)} "
                f"nor the displayed one {rgb.shape[:2]}; map it back to original pixels first"
            )
        # Blend at display size: the same result as blending at full size and shrinking, and it
        # keeps an opacity change on a 4000-pixel mammogram fast.
        if heatmap.shape[:2] != shown.shape[:2]:
            heatmap = np.asarray(
                Image.fromarray(heatmap).resize((shown.shape[1], shown.shape[0]), Image.Resampling.BILINEAR)
            )
        shown = overlay(shown, heatmap, alpha=float(opacity), colormap=HEATMAP_COLORMAP)
        source = None

    fig = go.Figure(
        go.Image(
            source=source or encode_image(shown, image_format),
            x0=(scale_x - 1.0) / 2.0,
            y0=(scale_y - 1.0) / 2.0,
            dx=scale_x,
            dy=scale_y,
            hoverinfo="skip",
        )
    )

    if heatmap is not None:
        # go.Image has no colour bar, so an invisible marker carries the heatmap's colour scale.
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker=dict(
                    colorscale=HEATMAP_COLORSCALE,
                    cmin=0.0,
                    cmax=1.0,
                    color=[0.0],
                    showscale=True,
                    colorbar=dict(title=dict(text=colorbar_title, side="right"), thickness=14, len=0.85),
                ),
                hoverinfo="skip",
                showlegend=False,
            )
        )

    if selectable:
        # Box selection reports only the points it encloses, so a sparse invisible grid makes a
        # drawn box come back with its corners (to within one grid step).
        step = max(1.0, max(original_height, original_width) / 96.0)
        grid_x, grid_y = np.meshgrid(np.arange(0, original_width, step), np.arange(0, original_height, step))
        fig.add_trace(
            go.Scatter(
                x=grid_x.ravel(),
                y=grid_y.ravel(),
                mode="markers",
                marker=dict(size=4, opacity=0.0),
                hoverinfo="skip",
                showlegend=False,
            )
        )

    shapes = []
    if crop_box is not None:
        shapes.append(_rectangle(crop_box, CROP_COLOUR, "dash"))
    if roi is not None:
        shapes.append(_rectangle(roi, ROI_COLOUR, "solid"))

    fig.update_layout(
        shapes=shapes,
        height=height,
        margin=dict(l=0, r=0, t=0, b=0),
        dragmode="select" if selectable else "zoom",
        plot_bgcolor="black",
        showlegend=False,
    )
    fig.update_xaxes(range=[-0.5, original_width - 0.5], showgrid=False, zeroline=False, showticklabels=False, constrain="domain")
    fig.update_yaxes(
        range=[original_height - 0.5, -0.5],
        showgrid=False,
        zeroline=False,
        showticklabels=False,
        scaleanchor="x",
        scaleratio=1,
        constrain="domain",
    )
    return fig


def box_from_selection(selection: Mapping[str, Any], image_shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Turn a Streamlit plotly box selection into an (x, y, width, height) box clipped to the image.

    Parameters
    ----------
    selection : mapping
        The ``selection`` part of ``st.plotly_chart``'s return value.
    image_shape : (height, width)

    Returns
    -------
    tuple of int or None
        None when the selection contains no box.
    """
    boxes = selection.get("box") or []
    if not boxes:
        return None
    box = boxes[-1]
    xs = [float(value) for value in box.get("x", [])]
    ys = [float(value) for value in box.get("y", [])]
    if len(xs) < 2 or len(ys) < 2:
        return None

    height, width = image_shape
    x0 = int(np.clip(round(min(xs)), 0, width - 1))
    y0 = int(np.clip(round(min(ys)), 0, height - 1))
    x1 = int(np.clip(round(max(xs)), x0 + 1, width))
    y1 = int(np.clip(round(max(ys)), y0 + 1, height))
    return x0, y0, x1 - x0, y1 - y0
