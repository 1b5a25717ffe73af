"""Study analysis: the organiser picks a finished study and compares the readers without and with
the AI. The page shows per-reader and reader-averaged AUCs beside the AI alone, the MRMC tests
(Obuchowski-Rockette with jackknife and DeLong covariances, Dorfman-Berbaum-Metz), sensitivity
and specificity at BI-RADS 4A, changes of mind, reading time and ROC curves. The organiser
downloads the iMRMC and RJafroc exports here.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import streamlit as st

from mpmmu.errors import MpmmuError
from mpmmu.i18n import t
from mpmmu.study.analysis import analyse_study, roc_figures
from mpmmu.study.export import export_study
from ui.layout import page_frame
from ui.study import get_store, require_admin

logger = logging.getLogger(__name__)

lang = page_frame()
st.title(t("study.analysis_title", lang))
st.caption(t("study.analysis_intro", lang))
require_admin(lang)
store = get_store(lang)

studies = store.studies()
if not studies:
    st.info(t("study.no_studies", lang))
    st.stop()
study = st.selectbox(
    t("study.choose_study", lang),
    studies,
    format_func=lambda info: t("study.study_label", lang, id=info.id, name=info.name, design=t(f"study.design_{info.design}", lang), cases=info.n_cases, readers=info.n_readers),
    key="analysis_study",
)
rating = st.radio(
    t("study.rating", lang),
    ["probability", "birads"],
    format_func=lambda value: t(f"study.rating_{value}", lang),
    horizontal=True,
    key="analysis_rating",
)

try:
    analysis = analyse_study(store, study.id, rating=rating)
except MpmmuError as error:
    logger.warning("study %d cannot be analysed yet: %s", study.id, error)
    st.warning(t("study.analysis_failed", lang, reason=str(error)))
    st.stop()


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# 1. AUCs.
st.header(t("study.auc_header", lang))
reader_auc = analysis.reader_auc()
mean_auc = analysis.mean_auc()
table = [
    {t("study.reader", lang): reader, t("study.mode_unaided", lang): number(reader_auc["unaided"][reader]), t("study.mode_aided", lang): number(reader_auc["aided"][reader])}
    for reader in analysis.data.readers
]
table.append({t("study.reader", lang): t("study.reader_average", lang), t("study.mode_unaided", lang): number(mean_auc["unaided"]), t("study.mode_aided", lang): number(mean_auc["aided"])})
st.dataframe(table, hide_index=True)
if analysis.ai is None:
    st.caption(t("study.ai_alone_missing", lang, cases=analysis.ai_cases, total=len(analysis.data.case_ids)))
else:
    st.metric(t("study.ai_alone", lang), number(analysis.ai.auc), help=t("study.ai_alone_ci", lang, low=number(analysis.ai.ci_low), high=number(analysis.ai.ci_high)))

# 2. MRMC tests of aided minus unaided.
st.header(t("study.mrmc_header", lang))
st.caption(t("study.mrmc_caption", lang))
rows = []
for method, test in analysis.tests():
    (comparison,) = test.comparisons
    rows.append(
        {
            t("study.method", lang): method,
            t("study.analysis_kind", lang): t(f"study.analysis_{test.analysis}", lang),
            t("study.statistic", lang): f"{test.distribution} = {test.statistic:.3f}",
            "ddf": "∞" if not math.isfinite(test.ddf) else f"{test.ddf:.1f}",
            "p": f"{test.p_value:.4f}",
            t("study.difference", lang): number(comparison.difference, 4),
            t("study.ci", lang): f"{number(comparison.ci_low, 4)} – {number(comparison.ci_high, 4)}",
        }
    )
st.dataframe(rows, hide_index=True)

# 3. Operating points, changes of mind, reading time.
st.header(t("study.operating_header", lang))
st.dataframe(
    [
        {
            t("study.reader", lang): point.reader,
            t("study.mode", lang): t(f"study.mode_{point.mode}", lang),
            t("study.sensitivity", lang): number(point.sensitivity),
            t("study.specificity", lang): number(point.specificity),
        }
        for point in sorted(analysis.operating_points, key=lambda p: (p.reader, p.mode))
    ],
    hide_index=True,
)
st.header(t("study.changes_header", lang))
st.dataframe(
    [
        {
            t("study.reader", lang): change.reader,
            t("study.birads_changed", lang): change.birads_changed,
            t("study.helpful", lang): change.helpful,
            t("study.harmful", lang): change.harmful,
            t("study.probability_shift", lang): number(change.mean_probability_change_toward_truth, 1),
            t("study.heatmaps_opened", lang): analysis.heatmaps_opened.get(change.reader, 0),
        }
        for change in analysis.changes
    ],
    hide_index=True,
)
st.header(t("study.time_header", lang))
st.dataframe(
    [
        {
            t("study.reader", lang): item.reader,
            t("study.mode", lang): t(f"study.mode_{item.mode}", lang),
            t("study.median_seconds", lang): number(item.median_seconds, 1),
            t("study.mean_seconds", lang): number(item.mean_seconds, 1),
        }
        for item in sorted(analysis.reading_times, key=lambda i: (i.reader, i.mode))
    ],
    hide_index=True,
)

# 4. ROC curves per reader.
st.header(t("study.roc_header", lang))
labels = {"unaided": t("study.mode_unaided", lang), "aided": t("study.mode_aided", lang), "ai": t("study.ai_alone", lang)}
figures = roc_figures(analysis, labels, title=t("study.roc_title", lang, reader="{reader}"))
columns = st.columns(min(3, len(figures)))
for index, (reader, figure) in enumerate(figures.items()):
    columns[index % len(columns)].plotly_chart(figure, key=f"roc_{reader}")

# 5. Exports.
st.header(t("study.export_header", lang))
columns = st.columns(3)
for column, (export_format, suffix, mime) in zip(
    columns, (("imrmc", "imrmc", "text/plain"), ("rjafroc", "csv", "text/csv"), ("reads", "csv", "text/csv"))
):
    with tempfile.TemporaryDirectory() as folder:
        path = export_study(store, study.id, Path(folder) / f"export.{suffix}", export_format, rating=rating)
        data = path.read_bytes()
        # RJafroc needs numeric cases; export_study writes the case_id -> number key beside it.
        key_path = path.with_name(path.stem + "-case-numbers.csv")
        case_key = key_path.read_bytes() if key_path.exists() else None
    column.download_button(
        t(f"study.export_{export_format}", lang),
        data,
        file_name=f"{study.name}-{export_format}-{rating}.{suffix}",
        mime=mime,
        key=f"export_{export_format}",
    )
    if case_key is not None:
        column.download_button(
            t("study.export_case_numbers", lang),
            case_key,
            file_name=f"{study.name}-{export_format}-case-numbers.csv",
            mime="text/csv",
            key=f"export_{export_format}_case_numbers",
        )
