"""Read the results table and ROC curves out of a bundle's ``metadata.json`` for the model card.

Two layouts of ``metadata["metrics"]`` are read:

- the one ``mpmmu train`` writes: ``"test"`` maps an evaluation set (``"ultrasound_images"``,
  ``"pairs_ultrasound_seed0"``, ...) to models to metrics (``n``, ``auc``, ``delong_low``, ...),
  and ``"roc"`` maps the same evaluation sets and models to ``{"fpr": [...], "tpr": [...]}``;
- a flat one: model name to metrics, with an optional ``"roc"`` entry per model or
  ``metrics["roc"][model]``. Its evaluation set is the empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

#: Metric names shown in the results table, in this order, when present; others follow.
TABLE_METRICS = (
    "n",
    "n_positive",
    "auc",
    "delong_low",
    "delong_high",
    "auc_ci_low",
    "auc_ci_high",
    "bootstrap_low",
    "bootstrap_high",
    "threshold",
    "sensitivity",
    "specificity",
    "accuracy",
    "f1",
    "brier",
)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_curve(value: Any) -> bool:
    return isinstance(value, Mapping) and "fpr" in value and "tpr" in value


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one model's metrics: a CI such as ``{"auc_ci": [lo, hi]}`` becomes two columns."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or _is_scalar(value) or isinstance(value, str):
            flat[name] = value
        elif isinstance(value, (list, tuple)) and len(value) == 2 and name.endswith("_ci") and all(_is_scalar(v) for v in value):
            flat[f"{name}_low"], flat[f"{name}_high"] = value
        elif isinstance(value, Mapping) and name != "roc":
            for inner, inner_value in value.items():
                if inner_value is None or _is_scalar(inner_value) or isinstance(inner_value, str):
                    flat[f"{name}_{inner}"] = inner_value
    return flat


def _row(evaluation_set: str, model: str, values: Mapping[str, Any]) -> dict[str, Any]:
    flat = _flatten(values)
    row: dict[str, Any] = {"evaluation_set": evaluation_set, "model": model}
    row.update({name: flat.pop(name) for name in TABLE_METRICS if name in flat})
    row.update(flat)
    return row


def _nested_test(metrics: Mapping[str, Any]) -> Mapping[str, Any] | None:
    test = metrics.get("test")
    if isinstance(test, Mapping) and test and all(isinstance(models, Mapping) for models in test.values()):
        return test
    return None


def results_table(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return one row per evaluation set and model: ``{"evaluation_set", "model", <metric>: value}``.

    Known metrics come first in :data:`TABLE_METRICS` order, then any others the bundle stored.
    In the flat layout, a model whose entry is a bare number becomes a row with ``auc``.
    """
    metrics = metadata.get("metrics") or {}
    test = _nested_test(metrics)
    if test is not None:
        return [
            _row(evaluation_set, model, values)
            for evaluation_set, models in test.items()
            for model, values in models.items()
            if isinstance(values, Mapping)
        ]

    rows = []
    for model, values in metrics.items():
        if model == "roc":
            continue
        if _is_scalar(values):
            rows.append({"evaluation_set": "", "model": model, "auc": values})
        elif isinstance(values, Mapping):
            rows.append(_row("", model, values))
    return rows


def roc_curves(metadata: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Return ``{evaluation_set: {model: {"fpr", "tpr", "auc"}}}`` for every stored ROC curve.

    ``auc`` comes from the model's metrics when they have one, else from the curve entry, else None.
    """
    metrics = metadata.get("metrics") or {}
    stored_roc = metrics.get("roc") if isinstance(metrics.get("roc"), Mapping) else {}
    test = _nested_test(metrics) or {}

    curves: dict[str, dict[str, dict[str, Any]]] = {}
    for evaluation_set, models in stored_roc.items():
        if not isinstance(models, Mapping) or _is_curve(models):
            continue
        for model, curve in models.items():
            if _is_curve(curve):
                auc = (test.get(evaluation_set) or {}).get(model, {}).get("auc", curve.get("auc"))
                curves.setdefault(evaluation_set, {})[model] = {"fpr": list(curve["fpr"]), "tpr": list(curve["tpr"]), "auc": auc}
    if curves:
        return curves

    flat: dict[str, dict[str, Any]] = {}
    for model, values in metrics.items():
        if model != "roc" and isinstance(values, Mapping) and _is_curve(values.get("roc")):
            curve = values["roc"]
            flat[model] = {"fpr": list(curve["fpr"]), "tpr": list(curve["tpr"]), "auc": values.get("auc", curve.get("auc"))}
    for model, curve in stored_roc.items():
        if model not in flat and _is_curve(curve):
            auc = metrics.get(model, {}).get("auc") if isinstance(metrics.get(model), Mapping) else None
            flat[model] = {"fpr": list(curve["fpr"]), "tpr": list(curve["tpr"]), "auc": auc if auc is not None else curve.get("auc")}
    return {"": flat} if flat else {}


def fusion_reason_text(metadata: Mapping[str, Any], lang: str) -> str:
    """Render why the bundle chose its two-image fusion, from the validation AUCs, in ``lang``.

    Returns "—" when the metadata records no AUC for the chosen fusion or for any rival, because
    the English ``fusion["reason"]`` string is not shown in translation.
    """
    from mpmmu.i18n import t

    fusion = metadata.get("fusion", {})
    chosen = fusion.get("chosen", "")
    aucs = fusion.get("validation_auc", {})
    rivals = [name for name in aucs if name != chosen]
    if chosen not in aucs or not rivals:
        return "—"
    others = ", ".join(f"{t(f'common.fusion_{name}', lang)} {float(aucs[name]):.3f}" for name in rivals)
    return t(
        "model_card.fusion_reason",
        lang,
        chosen=t(f"common.fusion_{chosen}", lang),
        chosen_auc=f"{float(aucs[chosen]):.3f}",
        others=others,
    )


def single_modality_names(models: Mapping[str, str], lang: str) -> dict[str, str]:
    """Name, in ``lang``, the model that scores a one-image case of each modality.

    ``models`` maps each modality to a stage-2 model name, as :attr:`Bundle.single_modality_models`
    returns it. The result has the keys "single_mammography" and "single_ultrasound".
    """
    from mpmmu.i18n import t

    return {f"single_{modality}": t(f"common.fusion_{model}", lang) for modality, model in models.items()}


def training_data_text(metadata: Mapping[str, Any], lang: str) -> str | None:
    """Render the bundle's training-data summary in ``lang`` from its image counts and seed.

    Returns None when ``training_data`` lacks the train and validation counts of both modalities
    or the seed, or the pair count of a pseudo-paired bundle, so the caller can fall back to the
    bundle's own English description.
    """
    from mpmmu.i18n import t

    training = metadata.get("training_data", {})
    counts = training.get("images_per_split", {})
    pairs = training.get("stage2_pairs", {}).get("n_pairs")
    try:
        values = {
            f"{modality}_{split}": int(counts[modality][split])
            for modality in ("mammography", "ultrasound")
            for split in ("train", "val")
        }
    except (KeyError, TypeError, ValueError):
        return None
    if "seed" not in training:
        return None
    if not training.get("pseudo_paired", False):
        return t("model_card.bundle_training_paired", lang, seed=training["seed"], **values)
    if pairs is None:
        return None
    return t("model_card.bundle_training", lang, pairs=int(pairs), seed=training["seed"], **values)
