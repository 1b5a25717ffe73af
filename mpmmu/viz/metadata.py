"""Read the results table and ROC curves out of a bundle's ``metadata.json`` for the model card.

The bundle stores evaluation results under ``metadata["metrics"]`` as a mapping of model name
(``"stacking"``, ``"late_fusion"``, ``"mammography_only"``, ``"ultrasound_only"``, ...) to a
mapping of metric name to value. A model's ROC curve, when stored, is ``{"fpr": [...], "tpr":
[...]}`` under the key ``"roc"`` of that model (or under ``metadata["metrics"]["roc"][model]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

#: Metric names shown in the results table, in this order, when present.
TABLE_METRICS = (
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "sensitivity",
    "specificity",
    "accuracy",
    "f1",
    "brier",
    "n",
    "n_cases",
)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one model's metrics: nested CIs like ``{"auc_ci": [lo, hi]}`` become two columns."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if _is_scalar(value) or isinstance(value, str):
            flat[name] = value
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_scalar(v) for v in value) and name.endswith("_ci"):
            flat[f"{name}_low"], flat[f"{name}_high"] = value
        elif isinstance(value, Mapping) and name != "roc":
            for inner, inner_value in value.items():
                if _is_scalar(inner_value) or isinstance(inner_value, str):
                    flat[f"{name}_{inner}"] = inner_value
    return flat


def results_table(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return one row per evaluated model: ``{"model": name, <metric>: value, ...}``.

    Known metrics come first in :data:`TABLE_METRICS` order, then any others the bundle stored.
    Models whose entry is not a mapping (for example a bare number) become a row with ``auc``.
    """
    metrics = metadata.get("metrics") or {}
    rows = []
    for model, values in metrics.items():
        if model == "roc":
            continue
        if _is_scalar(values):
            rows.append({"model": model, "auc": values})
            continue
        if not isinstance(values, Mapping):
            continue
        flat = _flatten(values)
        ordered = {"model": model}
        ordered.update({name: flat.pop(name) for name in TABLE_METRICS if name in flat})
        ordered.update(flat)
        rows.append(ordered)
    return rows


def roc_curves(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return ``{model: {"fpr", "tpr", "auc"}}`` for every model with a stored ROC curve."""
    metrics = metadata.get("metrics") or {}
    curves: dict[str, dict[str, Any]] = {}
    shared = metrics.get("roc") if isinstance(metrics.get("roc"), Mapping) else {}
    for model, values in metrics.items():
        if model == "roc" or not isinstance(values, Mapping):
            continue
        curve = values.get("roc") or shared.get(model)
        if isinstance(curve, Mapping) and "fpr" in curve and "tpr" in curve:
            curves[model] = {"fpr": list(curve["fpr"]), "tpr": list(curve["tpr"]), "auc": values.get("auc", curve.get("auc"))}
    for model, curve in shared.items():
        if model not in curves and isinstance(curve, Mapping) and "fpr" in curve and "tpr" in curve:
            curves[model] = {"fpr": list(curve["fpr"]), "tpr": list(curve["tpr"]), "auc": curve.get("auc")}
    return curves
