"""Image viewer for one modality: window/level, zoom, header facts, lesion box and preprocessing crop."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from mpmmu.errors import MpmmuError
from mpmmu.i18n import t
from mpmmu.io import apply_window, read_image
from mpmmu.pipeline import Pipeline
from mpmmu.records import ImageRecord
from mpmmu.viz import box_from_selection, display_image, encode_image, image_figure
from mpmmu.viz.figures import DISPLAY_MAX_SIDE
from ui import state

logger = logging.getLogger(__name__)

PLOTLY_CONFIG = {"scrollZoom": True, "displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "toImage"]}


def read_upload(slot: str, uploaded: Any, lang: str) -> ImageRecord | None:
    """Decode an uploaded file from ``getvalue()``, or show a plain-language error and return None.

    The decoded record is kept in this session's memo under the hash of the bytes, so a rerun with
    the same upload does not decode it again and a new upload replaces it.
    """
    if uploaded is None:
        return None
    data = uploaded.getvalue()
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    memo = state.memo()
    cached = memo.get(("upload", slot))
    if cached is not None and cached[0] == digest:
        return cached[1]

    memo.pop(("upload", slot), None)
    try:
        record = read_image(data)
    except MpmmuError as error:
        logger.warning("upload for %s rejected: %s", slot, error)
        st.error(t("second_read.bad_file", lang, name=uploaded.name, reason=str(error)))
        return None
    except Exception:
        # A decoder bug must not take the page down: log the traceback, tell the reader in words.
        logger.exception("unexpected failure decoding the %s upload", slot)
        st.error(t("second_read.bad_file_unexpected", lang, name=uploaded.name))
        return None

    memo[("upload", slot)] = (digest, record)
    return record


def display_record(record: ImageRecord) -> ImageRecord:
    """Return a copy of ``record`` shrunk to at most the display size, memoised by image hash.

    Windowing the shrunk copy gives the same picture as windowing the original and shrinking, at a
    fraction of the cost on a full-field mammogram.
    """
    memo = state.memo()
    key = ("display", record.sha256, record.frame_index)
    if key in memo:
        return memo[key]

    height, width = record.shape
    factor = min(1.0, DISPLAY_MAX_SIDE / max(height, width))
    if factor >= 1.0:
        small = record
    else:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        stored = np.asarray(Image.fromarray(record.stored.astype(np.float32)).resize(size, Image.Resampling.BOX))
        if record.is_color:
            pixels = np.asarray(Image.fromarray((record.pixels * 255.0 + 0.5).astype(np.uint8)).resize(size, Image.Resampling.BOX))
            pixels = pixels.astype(np.float32) / 255.0
        else:
            pixels = np.asarray(Image.fromarray(record.pixels.astype(np.float32)).resize(size, Image.Resampling.BOX))
        small = dataclasses.replace(record, pixels=pixels, stored=stored)

    _evict(memo, "display", keep=4)
    memo[key] = small
    return small


def _evict(memo: dict, kind: str, keep: int) -> None:
    """Drop the oldest memo entries of ``kind`` so that at most ``keep - 1`` remain before an insert."""
    keys = [key for key in memo if isinstance(key, tuple) and key[0] == kind]
    for key in keys[: max(0, len(keys) - keep + 1)]:
        del memo[key]


def _window_controls(slot: str, record: ImageRecord, small: ImageRecord, lang: str) -> np.ndarray:
    """Draw the window/level controls and return the windowed display image."""
    # apply_window windows colour images per channel in [0, 1] units, greyscale ones in stored units.
    values = small.pixels if record.is_color else small.stored
    low = float(np.min(values))
    high = float(np.max(values))
    span = max(high - low, 1e-6)
    center_key = state.slot_key(slot, f"center_{record.sha256}")
    width_key = state.slot_key(slot, f"width_{record.sha256}")
    preset_key = state.slot_key(slot, f"preset_{record.sha256}")

    if record.window_index is not None and record.windows and not record.is_color:
        default = record.windows[record.window_index]
        default_center, default_width = float(default.center), float(default.width)
    else:
        default_center, default_width = (low + high) / 2.0, span
    st.session_state.setdefault(center_key, float(np.clip(default_center, low, high)))
    st.session_state.setdefault(width_key, float(np.clip(default_width, span / 500.0, 2.0 * span)))

    options = list(range(len(record.windows))) + [-1]

    def preset_label(index: int) -> str:
        if index < 0:
            return t("second_read.window_full_range", lang)
        preset = record.windows[index]
        name = preset.explanation or t("second_read.window_preset", lang, number=index + 1)
        return f"{name} (C {preset.center:g} / W {preset.width:g})"

    def apply_preset() -> None:
        index = st.session_state[preset_key]
        if index < 0:
            center, width = (low + high) / 2.0, span
        else:
            center, width = record.windows[index].center, record.windows[index].width
        st.session_state[center_key] = float(np.clip(center, low, high))
        st.session_state[width_key] = float(np.clip(width, span / 500.0, 2.0 * span))

    with st.expander(t("second_read.window_level", lang), expanded=False):
        st.selectbox(
            t("second_read.window_presets", lang),
            options,
            format_func=preset_label,
            key=preset_key,
            on_change=apply_preset,
            index=record.window_index if record.window_index is not None and not record.is_color else len(options) - 1,
            disabled=record.is_color,
        )
        step = span / 500.0
        center = st.slider(t("second_read.window_center", lang), low, high, key=center_key, step=step)
        width = st.slider(t("second_read.window_width", lang), step, 2.0 * span, key=width_key, step=step)

    function = "LINEAR"
    index = st.session_state.get(preset_key)
    if isinstance(index, int) and 0 <= index < len(record.windows) and record.windows[index].function != "LUT":
        function = record.windows[index].function
    return apply_window(small, center, width, function=function)


def _roi_controls(slot: str, record: ImageRecord, chart_key: str, default_roi: tuple[int, int, int, int] | None, lang: str):
    """Draw the lesion-box controls and return (roi or None, draw mode on)."""
    height, width = record.shape
    prefix = f"{slot}_roi_{record.sha256}"
    keys = {name: f"{prefix}_{name}" for name in ("on", "x", "y", "w", "h", "draw", "applied")}

    if keys["on"] not in st.session_state:
        st.session_state[keys["on"]] = default_roi is not None
        x, y, w, h = default_roi or (width // 4, height // 4, width // 2, height // 2)
        st.session_state[keys["x"]], st.session_state[keys["y"]] = int(x), int(y)
        st.session_state[keys["w"]], st.session_state[keys["h"]] = int(w), int(h)

    # A box drawn on the image arrives as the chart's selection on the next rerun. It is copied into
    # the number inputs before they are drawn, and only once, so a value typed afterwards sticks.
    event = st.session_state.get(chart_key)
    drawn = box_from_selection(event.get("selection", {}), record.shape) if event else None
    if drawn is not None and drawn != st.session_state.get(keys["applied"]):
        st.session_state[keys["applied"]] = drawn
        st.session_state[keys["on"]] = True
        st.session_state[keys["x"]], st.session_state[keys["y"]], st.session_state[keys["w"]], st.session_state[keys["h"]] = drawn

    enabled = st.checkbox(t("second_read.roi_enable", lang), key=keys["on"], help=t("second_read.roi_help", lang))
    draw = st.toggle(t("second_read.roi_draw", lang), key=keys["draw"], disabled=not enabled)
    columns = st.columns(4)
    x = columns[0].number_input("x", min_value=0, max_value=width - 1, step=1, key=keys["x"], disabled=not enabled)
    y = columns[1].number_input("y", min_value=0, max_value=height - 1, step=1, key=keys["y"], disabled=not enabled)
    w = columns[2].number_input(t("second_read.roi_width", lang), min_value=1, max_value=width, step=1, key=keys["w"], disabled=not enabled)
    h = columns[3].number_input(t("second_read.roi_height", lang), min_value=1, max_value=height, step=1, key=keys["h"], disabled=not enabled)
    if not enabled:
        return None, False

    roi = (int(x), int(y), int(min(w, width - x)), int(min(h, height - y)))
    return roi, bool(draw)


def crop_box(record: ImageRecord, modality: str, roi, pipeline: Pipeline) -> tuple[int, int, int, int] | None:
    """Return the region the bundle's preprocessing feeds to the model (memoised).

    None when the bundle has no branch for ``modality`` or preprocessing rejects the image; the
    Analyse step then reports the reason.
    """
    if modality not in pipeline.modalities:
        return None
    memo = state.memo()
    key = ("crop", record.sha256, modality, roi)
    if key in memo:
        return memo[key]
    try:
        box = pipeline.preprocess(record, modality, roi=roi).transform.crop_box
    except MpmmuError as error:
        logger.info("no preprocessing crop for %s: %s", modality, error)
        box = None
    _evict(memo, "crop", keep=8)
    memo[key] = box
    return box


def _encoded(slot: str, record: ImageRecord, display: np.ndarray) -> str:
    """Return the PNG data URI of ``display``, re-encoded only when the windowed pixels change."""
    memo = state.memo()
    digest = hashlib.blake2b(np.ascontiguousarray(display).tobytes(), digest_size=16).hexdigest()
    key = ("encoded", slot)
    cached = memo.get(key)
    if cached is None or cached[0] != digest:
        cached = (digest, encode_image(display_image(display), "png"))
        memo[key] = cached
    return cached[1]


def describe(record: ImageRecord, lang: str) -> str:
    """Return one caption line with laterality, view, size, format and pixel spacing."""
    laterality = {"L": t("second_read.left", lang), "R": t("second_read.right", lang)}.get(
        record.laterality, t("second_read.unknown", lang)
    )
    spacing = (
        f"{record.pixel_spacing[0]:.3g} × {record.pixel_spacing[1]:.3g} mm"
        if record.pixel_spacing
        else t("second_read.unknown", lang)
    )
    return t(
        "second_read.image_facts",
        lang,
        laterality=laterality,
        view=record.view or t("second_read.unknown", lang),
        width=record.shape[1],
        height=record.shape[0],
        format=record.source_format.upper(),
        spacing=spacing,
    )


def image_panel(
    slot: str,
    record: ImageRecord,
    lang: str,
    pipeline: Pipeline,
    default_roi: tuple[int, int, int, int] | None = None,
) -> tuple[tuple[int, int, int, int] | None, np.ndarray]:
    """Show one image with its controls and return (lesion box or None, windowed display image)."""
    st.caption(describe(record, lang))
    for warning in record.warnings:
        st.warning(warning)

    small = display_record(record)
    chart_key = state.slot_key(slot, f"chart_{record.sha256}")
    image_area = st.container()
    display = _window_controls(slot, record, small, lang)
    roi, draw = _roi_controls(slot, record, chart_key, default_roi, lang)
    crop = crop_box(record, slot, roi, pipeline)

    figure = image_figure(
        display,
        original_shape=record.shape,
        roi=roi,
        crop_box=crop,
        selectable=draw,
        height=460,
        source=_encoded(slot, record, display),
    )
    with image_area:
        st.plotly_chart(
            figure,
            key=chart_key,
            on_select="rerun" if draw else "ignore",
            selection_mode="box",
            config=PLOTLY_CONFIG,
        )
        st.caption(t("second_read.viewer_legend", lang))
    return roi, display
