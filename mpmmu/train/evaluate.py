"""Evaluation of a training run: metrics with confidence intervals and the RESULTS.md report.

Everything here reads the prediction CSV files that :mod:`mpmmu.train.run` writes under
``<work>/predictions``: test images per modality, test pseudo-pairs per design and pairing seed,
cross-fitted validation pairs, and the out-of-fold mammography CV. So the report is recomputed
from stored scores, never from a model in memory.

Per row: AUC with a 95% DeLong interval and a 95% percentile bootstrap interval that resamples
patients (the ultrasound patient for pairs, so a reused mammogram does not shrink the interval);
sensitivity, specificity, accuracy and F1 at the threshold chosen on validation data; Brier score.
"""

from __future__ import annotations

import csv
import datetime as _datetime
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mpmmu.errors import MetricInputError

logger = logging.getLogger(__name__)

PAPER_AUC = {"fused (MPM-MU)": 0.879, "mammography only": 0.745, "ultrasound only": 0.723}
PAPER_SOURCE = "Yan et al., J Appl Clin Med Phys 2026, doi 10.1002/acm2.70464, 663 truly paired patients"
TARGETS = {"ultrasound_branch": 0.92, "mammography_branch": 0.78}
#: Frozen-feature floors: pretrained Lite0 pooled features + logistic regression, no fine-tuning,
#: measured by the team on 2026-12-04 on this data (mean over 5 patient-wise folds).
FROZEN_FEATURE_FLOORS = (
    ("BUS-BRA, lesion box x1.25, 224 px, author 5-fold", "0.878 ± 0.037"),
    ("BUS-BRA, whole image, 224 px, author 5-fold", "0.813 ± 0.025"),
    ("mini-MIAS, lesion square, 224 px, woman-wise 5-fold", "0.66-0.69"),
    ("mini-MIAS, whole image", "0.40-0.50"),
    ("pseudo-pairs (ultrasound-driven), stacking on frozen features", "0.645 ± 0.088"),
    ("pseudo-pairs (ultrasound-driven), late fusion of frozen-feature LR", "0.853-0.860"),
)
MODEL_LABELS = {
    "stacking": "fused, stacking (MPM-MU)",
    "late_fusion": "fused, late fusion (sum of log-odds)",
    "fused_mlp_head": "fused, single MLP head",
    "mammography_branch": "mammography branch (CBAM) alone",
    "ultrasound_branch": "ultrasound branch (ECA) alone",
    "mammography_only": "mammography-only stacking ensemble",
    "ultrasound_only": "ultrasound-only stacking ensemble",
}
ROC_MAX_POINTS = 101


def model_label(model: str, label_suffix: str = "") -> str:
    """Return the report label of a model; a suffix naming no attention drops the attention module's name."""
    label = MODEL_LABELS[model]
    if "no attention" in label_suffix:
        label = label.replace(" (CBAM)", "").replace(" (ECA)", "")
    return label + label_suffix


@dataclass(frozen=True)
class RowMetrics:
    """Metrics of one model on one set of cases.

    Attributes
    ----------
    n, n_positive : int
        Cases and malignant cases.
    auc, delong_low, delong_high : float
        AUC and its 95% DeLong interval (logit-transformed where the statistics module uses it).
    bootstrap_low, bootstrap_high : float
        95% percentile bootstrap interval over patients; NaN when it could not be computed.
    threshold : float
        Operating threshold, chosen on validation data.
    sensitivity, specificity, accuracy, f1, brier : float
    """

    n: int
    n_positive: int
    auc: float
    delong_low: float
    delong_high: float
    bootstrap_low: float
    bootstrap_high: float
    threshold: float
    sensitivity: float
    specificity: float
    accuracy: float
    f1: float
    brier: float

    def to_dict(self) -> dict[str, float]:
        """Return the fields as JSON-ready numbers (NaN becomes None)."""
        return {name: _json_number(getattr(self, name)) for name in self.__dataclass_fields__}


def _json_number(value: float | int) -> float | int | None:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def metric_row(
    y: np.ndarray,
    score: np.ndarray,
    threshold: float,
    groups: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> RowMetrics:
    """Compute one row's metrics.

    Raises
    ------
    MetricInputError
        If the cases do not hold both classes or the scores are invalid.
    """
    from mpmmu.metrics import bootstrap_auc_ci, brier_score, delong_ci, threshold_metrics

    y = np.asarray(y, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    delong = delong_ci(y, score)
    try:
        bootstrap = bootstrap_auc_ci(y, score, groups, n_boot=n_boot, seed=seed)
        bootstrap_low, bootstrap_high = bootstrap.ci_low, bootstrap.ci_high
    except MetricInputError as error:
        logger.warning("bootstrap interval not computed for %d cases: %s", len(y), error)
        bootstrap_low = bootstrap_high = float("nan")
    at = threshold_metrics(y, score, threshold)
    return RowMetrics(
        n=int(len(y)),
        n_positive=int(y.sum()),
        auc=float(delong.auc),
        delong_low=float(delong.ci_low),
        delong_high=float(delong.ci_high),
        bootstrap_low=float(bootstrap_low),
        bootstrap_high=float(bootstrap_high),
        threshold=float(threshold),
        sensitivity=float(at.sensitivity),
        specificity=float(at.specificity),
        accuracy=float(at.accuracy),
        f1=float(at.f1),
        brier=float(brier_score(y, np.clip(score, 0.0, 1.0))),
    )


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    """Read a prediction CSV into columns; numeric columns become float arrays."""
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    if not records:
        raise MetricInputError(f"prediction file {path} has no rows; rerun mpmmu train")
    columns: dict[str, np.ndarray] = {}
    for name in records[0]:
        values = [record[name] for record in records]
        try:
            columns[name] = np.array([float(value) if value not in ("", "nan") else np.nan for value in values])
        except ValueError:
            columns[name] = np.array(values)
    return columns


def roc_points(y: np.ndarray, score: np.ndarray, max_points: int = ROC_MAX_POINTS) -> dict[str, list[float]]:
    """Return the empirical ROC vertices, thinned evenly to at most ``max_points``, for plotting."""
    from mpmmu.metrics import roc_curve_points

    points = roc_curve_points(y, score)
    keep = np.unique(np.linspace(0, len(points.fpr) - 1, min(max_points, len(points.fpr))).round().astype(int))
    return {"fpr": points.fpr[keep].round(4).tolist(), "tpr": points.tpr[keep].round(4).tolist()}


def bundle_test_metrics(work_dir: Path, thresholds: dict[str, float]) -> dict[str, Any]:
    """Summarise the test predictions of a run for the bundle's model card.

    Returns
    -------
    dict
        "summary": per evaluation set ("ultrasound_images", "mammography_images",
        "pairs_ultrasound_seed0") and model, the :class:`RowMetrics` as a dict; "roc": the ROC
        points of the same rows.
    """
    predictions = Path(work_dir) / "predictions"
    summary: dict[str, dict[str, Any]] = {}
    roc: dict[str, dict[str, Any]] = {}
    for modality in ("ultrasound", "mammography"):
        data = read_predictions(predictions / f"test_{modality}.csv")
        key = f"{modality}_images"
        summary[key], roc[key] = {}, {}
        for column, model in (("branch", f"{modality}_branch"), ("only", f"{modality}_only")):
            try:
                row = metric_row(data["y"], data[column], thresholds[model], data["patient_id"])
            except MetricInputError as error:
                logger.warning("test metrics of %s on %s not computed: %s", model, key, error)
                continue
            summary[key][model] = row.to_dict()
            roc[key][model] = roc_points(data["y"], data[column])
    data = read_predictions(predictions / "test_pairs_ultrasound_seed0.csv")
    summary["pairs_ultrasound_seed0"], roc["pairs_ultrasound_seed0"] = {}, {}
    for model in ("stacking", "late_fusion", "fused_mlp_head", "mammography_branch", "ultrasound_branch"):
        try:
            row = metric_row(data["y"], data[model], thresholds[model], data["us_patient"])
        except MetricInputError as error:
            logger.warning("test metrics of %s on pairs not computed: %s", model, error)
            continue
        summary["pairs_ultrasound_seed0"][model] = row.to_dict()
        roc["pairs_ultrasound_seed0"][model] = roc_points(data["y"], data[model])
    return {"summary": summary, "roc": roc}


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ReportRow:
    """One line of a results table."""

    model: str
    data: str
    metrics: RowMetrics | None
    command: str
    note: str = ""


def _format_ci(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    return f"{low:.3f}-{high:.3f}"


def _format_rate(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def format_table(rows: Sequence[ReportRow]) -> list[str]:
    """Render rows as a Markdown table with n, AUC, both intervals and the threshold metrics."""
    lines = [
        "| model | data | n (malignant) | AUC | 95% CI DeLong | 95% CI bootstrap (patients) | threshold | sensitivity | specificity | accuracy | F1 | Brier | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row.metrics
        data = f"{row.data}{' (' + row.note + ')' if row.note else ''}"
        if m is None:
            lines.append(f"| {row.model} | {data} | n/a | not computed | | | | | | | | | `{row.command}` |")
            continue
        lines.append(
            f"| {row.model} | {data} | {m.n} ({m.n_positive}) | {m.auc:.3f} | {_format_ci(m.delong_low, m.delong_high)} | "
            f"{_format_ci(m.bootstrap_low, m.bootstrap_high)} | {m.threshold:.3f} | {_format_rate(m.sensitivity)} | "
            f"{_format_rate(m.specificity)} | {_format_rate(m.accuracy)} | {_format_rate(m.f1)} | {m.brier:.3f} | `{row.command}` |"
        )
    return lines


def _safe_row(y, score, threshold, groups, label: str) -> RowMetrics | None:
    try:
        return metric_row(y, score, threshold, groups)
    except MetricInputError as error:
        logger.warning("%s: metrics not computed: %s", label, error)
        return None


@dataclass(frozen=True)
class RunData:
    """The stored outputs of one training run."""

    work_dir: Path
    summary: dict[str, Any]
    thresholds: dict[str, float]
    command: str

    @classmethod
    def load(cls, work_dir: Path) -> RunData:
        """Read ``run.json`` of a finished run.

        Raises
        ------
        MetricInputError
            If the run has not finished stage 2.
        """
        path = Path(work_dir) / "run.json"
        if not path.is_file():
            raise MetricInputError(f"{path} not found; run mpmmu train with --work {work_dir} first")
        summary = json.loads(path.read_text())
        if "stage2" not in summary:
            raise MetricInputError(f"the run in {work_dir} stopped before stage 2 (trained with --only?); finish it first")
        return cls(Path(work_dir), summary, summary["stage2"]["thresholds"], train_command(summary["config"]))

    def predictions(self, name: str) -> dict[str, np.ndarray]:
        """Read ``predictions/<name>.csv``."""
        return read_predictions(self.work_dir / "predictions" / f"{name}.csv")


def train_command(config: dict[str, Any]) -> str:
    """Rebuild the ``mpmmu train`` command line of a run from its stored settings.

    Settings equal to the CLI's defaults are left out. The mammography branch's settings are
    always written out, with the shared value where the run stored none, because their
    defaults have changed since early runs.
    """
    parts = ["mpmmu train"]
    if config.get("synthetic"):
        parts.append(f"--synthetic {config['synthetic']}")
    parts.append(f"--epochs {config['epochs']} --mammography-epochs {config['mammography_epochs']}")
    for key, flag, default in (
        ("patience", "--patience", 4), ("freeze_stages", "--freeze-stages", 0), ("image_size", "--image-size", 224),
        ("attention", "--attention", "default"), ("seed", "--seed", 0), ("stage2_folds", "--stage2-folds", 3),
        ("n_estimators", "--trees", 100), ("pairing_seeds", "--pairing-seeds", 5), ("lr", "--lr", 3e-4),
        ("backbone", "--backbone", "efficientnet_lite0"), ("batch_size", "--batch-size", 16),
        ("stage2_pca", "--stage2-pca", 0.95),
        ("stop_ultrasound_after", "--stop-ultrasound-after", None), ("stage1_minutes", "--stage1-minutes", None),
    ):
        if config.get(key, default) != default:
            parts.append(f"{flag} {config[key]}")
    if not config.get("pretrained", True):
        parts.append("--no-pretrained")
    for key, flag, shared in (
        ("mammography_lr", "--mammography-lr", "lr"),
        ("mammography_patience", "--mammography-patience", "patience"),
        ("mammography_freeze_stages", "--mammography-freeze-stages", "freeze_stages"),
    ):
        value = config.get(key)
        parts.append(f"{flag} {config.get(shared) if value is None else value}")
    stages = [str(stage) for stage in config.get("attention_stages", ["head"])]
    if stages != ["head"] and config.get("attention", "default") != "none":
        parts.append(f"--attention-stages {','.join(stages)}")
    return " ".join(parts)


def image_rows(run: RunData, label_suffix: str = "") -> list[ReportRow]:
    """Rows of the single-modality test images: branch on ROI, ensemble, branch on whole image."""
    rows = []
    sets = {
        "ultrasound": "BUS-BRA lesion box, patient-wise held-out test",
        "mammography": "mini-MIAS lesion square, woman-wise held-out test",
    }
    for modality, data_label in sets.items():
        data = run.predictions(f"test_{modality}")
        groups = data["patient_id"]
        branch = f"{modality}_branch"
        rows.append(ReportRow(model_label(branch, label_suffix), data_label,
                              _safe_row(data["y"], data["branch"], run.thresholds[branch], groups, branch), run.command))
        only = f"{modality}_only"
        rows.append(ReportRow(model_label(only, label_suffix), data_label,
                              _safe_row(data["y"], data["only"], run.thresholds[only], groups, only), run.command))
        whole = data["branch_whole_image"]
        if not np.all(np.isnan(whole)):
            whole_label = data_label.replace("lesion box", "whole image").replace("lesion square", "whole image")
            rows.append(ReportRow(model_label(branch, label_suffix), whole_label,
                                  _safe_row(data["y"], whole, run.thresholds[branch], groups, branch + " whole"),
                                  run.command, "ROI-trained branch fed the whole image"))
    return rows


def pair_rows(run: RunData, design: str = "ultrasound", seed: int = 0, label_suffix: str = "") -> list[ReportRow]:
    """Rows of one test pseudo-pair set, every model."""
    data = run.predictions(f"test_pairs_{design}_seed{seed}")
    groups = data["us_patient"] if design == "ultrasound" else data["mg_patient"]
    data_label = f"test pseudo-pairs, {design}-driven, pairing seed {seed}"
    return [
        ReportRow(model_label(model, label_suffix), data_label,
                  _safe_row(data["y"], data[model], run.thresholds[model], groups, model), run.command,
                  "class-matched pseudo-pairs, an upper bound for true pairs")
        for model in ("stacking", "late_fusion", "fused_mlp_head", "mammography_branch", "ultrasound_branch", "mammography_only", "ultrasound_only")
    ]


def seed_summary(run: RunData, design: str) -> dict[str, Any]:
    """AUC per model over the pairing seeds of one design, and the DeLong tests per seed."""
    from mpmmu.metrics import delong_test, roc_auc

    seeds = sorted(
        int(path.stem.rsplit("seed", 1)[1])
        for path in (run.work_dir / "predictions").glob(f"test_pairs_{design}_seed*.csv")
    )
    aucs: dict[str, list[float]] = {}
    tests: dict[str, list[tuple[float, float]]] = {"fused_vs_best_single": [], "stacking_vs_late_fusion": []}
    n_pairs = []
    for seed in seeds:
        data = run.predictions(f"test_pairs_{design}_seed{seed}")
        n_pairs.append(len(data["y"]))
        try:
            seed_auc = {model: roc_auc(data["y"], data[model]) for model in MODEL_LABELS}
        except MetricInputError as error:
            logger.warning("pairing seed %d of the %s design: %s", seed, design, error)
            continue
        for model, value in seed_auc.items():
            aucs.setdefault(model, []).append(float(value))
        fused = run.summary["stage2"]["fusion"]
        best_single = max(("mammography_branch", "ultrasound_branch"), key=lambda model: seed_auc[model])
        for name, (a, b) in (("fused_vs_best_single", (fused, best_single)), ("stacking_vs_late_fusion", ("stacking", "late_fusion"))):
            try:
                result = delong_test(data["y"], data[a], data[b])
                tests[name].append((float(result.difference), float(result.p_value)))
            except MetricInputError as error:
                logger.warning("DeLong test %s (seed %d) not computed: %s", name, seed, error)
    return {"seeds": seeds, "n_pairs": n_pairs, "auc": aucs, "tests": tests}


def cv_rows(cv_file: Path, threshold: float, command: str) -> list[ReportRow]:
    """Rows of the woman-wise CV of the mammography branch (out-of-fold, pooled over folds)."""
    data = read_predictions(cv_file)
    rows = [
        ReportRow(MODEL_LABELS["mammography_branch"], "mini-MIAS lesion square, woman-wise 5-fold CV (pooled out-of-fold)",
                  _safe_row(data["y"], data["branch"], threshold, data["patient_id"], "mammography CV"), command,
                  "threshold of the shipped branch"),
        ReportRow(MODEL_LABELS["mammography_branch"], "mini-MIAS whole image, woman-wise 5-fold CV (pooled out-of-fold)",
                  _safe_row(data["y"], data["branch_whole_image"], threshold, data["patient_id"], "mammography CV whole"), command,
                  "ROI-trained fold models fed the whole image"),
    ]
    return rows


def calibration_lines(label: str, y: np.ndarray, p: np.ndarray, n_bins: int = 5) -> list[str]:
    """Render a reliability table (quantile bins) for one model."""
    from mpmmu.metrics import calibration_curve

    curve = calibration_curve(y, np.clip(p, 0.0, 1.0), n_bins=n_bins, strategy="quantile")
    lines = [f"**{label}** (expected calibration error {curve.expected_calibration_error:.3f})", "",
             "| bin | n | mean predicted | observed malignant |", "|---|---|---|---|"]
    for k in range(len(curve.counts)):
        lines.append(
            f"| {curve.bin_edges[k]:.3f}-{curve.bin_edges[k + 1]:.3f} | {curve.counts[k]} | "
            f"{_format_rate(float(curve.mean_predicted[k]))} | {_format_rate(float(curve.fraction_positive[k]))} |"
        )
    return lines + [""]


# --------------------------------------------------------------------------- RESULTS.md


def _met(value: float | None, target: float) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    return f"{'met' if value >= target else 'NOT met'} ({value:.3f} vs >= {target:.2f})"


def _mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    array = np.asarray(values)
    return f"{array.mean():.3f} ± {array.std(ddof=1) if len(array) > 1 else 0.0:.3f}"


def write_results(
    bundle_dir: Path,
    work_dir: Path,
    out: Path,
    ablation_work_dirs: Sequence[Path] = (),
    cv_work_dir: Path | None = None,
    command: str = "",
    placement_work_dirs: Sequence[Path] = (),
    notes: str = "",
) -> Path:
    """Compute every metric from the stored predictions and write the RESULTS.md report.

    Parameters
    ----------
    bundle_dir : pathlib.Path
        The bundle the run saved; its metadata supplies the fusion choice and the model version.
    work_dir : pathlib.Path
        Work folder of the run that produced the bundle.
    out : pathlib.Path
        Markdown file to write.
    ablation_work_dirs : sequence of pathlib.Path
        Work folders of ablation runs (for example ``--attention none``), reported beside it.
    cv_work_dir : pathlib.Path, optional
        Work folder of ``mpmmu train --cv mammography``; default: look in ``work_dir``.
    command : str
        The ``mpmmu evaluate`` command line, printed in the report.
    placement_work_dirs : sequence of pathlib.Path
        Work folders of attention-placement runs (stage-1 runs, ``--only`` allowed, or
        ``--cv mammography`` runs), tabulated with the main run's branches.
    notes : str
        Markdown written by hand about how the runs were chosen, added under its own heading
        after the generated sections.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    run = RunData.load(work_dir)
    metadata_path = Path(bundle_dir) / "metadata.json"
    if not metadata_path.is_file():
        raise MetricInputError(f"{metadata_path} not found; pass --bundle with the folder mpmmu train --out wrote")
    metadata = json.loads(metadata_path.read_text())
    _check_bundle_matches_run(metadata, run, Path(bundle_dir))
    if Path(out).is_dir():
        raise MetricInputError(f"--out {out} is a folder; pass a Markdown file name such as {Path(out) / 'RESULTS.md'}")
    if cv_work_dir is not None and _find_cv_file(Path(cv_work_dir), None) is None:
        raise MetricInputError(
            f"no predictions/cv_mammography.csv in {cv_work_dir}; pass the --work folder of mpmmu train --cv mammography"
        )
    main_folder = Path(work_dir).resolve()
    ablations = [RunData.load(path) for path in _distinct_folders(ablation_work_dirs, exclude=main_folder)]
    placement_work_dirs = _distinct_folders(placement_work_dirs, exclude=main_folder)
    fusion = run.summary["stage2"]["fusion"]
    val = run.summary["stage2"]["validation_out_of_fold"]

    synthetic = bool(metadata.get("training_data", {}).get("synthetic"))
    lines = [
        "# MPM-MU results",
        "",
        *(
            [
                "**This run used generated synthetic data, not BUS-BRA or mini-MIAS.** The method text and "
                "row labels below name the real data sets the command is built for; read them as the synthetic "
                "stand-ins, and the targets section is left out.",
                "",
            ]
            if synthetic
            else []
        ),
        f"Generated by `{command or 'mpmmu evaluate'}` on {_datetime.date.today().isoformat()} from the stored "
        f"predictions of the run in its work folder; bundle `{metadata.get('model_version', '?')}`.",
        "",
        "**Every fused number below is measured on class-matched pseudo-pairs**: each ultrasound image of "
        "BUS-BRA is joined with a mini-MIAS mammogram of a different woman with the same label. Pseudo-pairs "
        "assume the modalities are independent given the label, so a fused result is an upper bound for truly "
        "paired cases, and none of these numbers is comparable to a study on true pairs.",
        "",
        "## How the numbers were produced",
        "",
        "- Data: BUS-BRA (1,875 ultrasound images, 1,064 patients) and mini-MIAS (located benign and malignant "
        "findings), each split by patient, stratified by label, into train / validation / test 7:2:1 (seed "
        f"{run.summary['config']['seed']}). Images per split: "
        f"{json.dumps(metadata.get('training_data', {}).get('images_per_split', {}))}.",
        "- Stage 1: each branch fine-tuned on its train split with early stopping on its validation split. "
        "Ultrasound input: the lesion box enlarged 1.25x; mammography input: a square of side max(3 x radius, "
        "128) px around the finding.",
        "- Stage 2 is fitted on the validation split only, because pooled features are comparable only within one "
        "trained CNN and a CNN's features of its own training images are over-confident. The fused models use "
        "ultrasound-driven pseudo-pairs inside the validation split; the single-modality ensembles use all "
        "validation images of their modality. Every inner cross-validation is grouped by both patients.",
        "- The fusion choice and every operating threshold (Youden) come from cross-fitting inside the "
        "validation split. Its patients are cut into folds per modality, pairs are made inside each fold, and "
        "each fold is scored by models fitted on the other folds. The final models are then refitted on all "
        "validation pairs, and the test split is only scored.",
        "- AUC intervals: DeLong 95% CI, and a 95% percentile bootstrap that resamples patients (the ultrasound "
        "patient for ultrasound-driven pairs, the woman for mammogram-driven pairs). Sensitivity, specificity, "
        "accuracy and F1 at the validation-chosen threshold.",
        "- The test split contains few mini-MIAS findings, and ultrasound-driven pairs reuse each of them many "
        "times. Intervals on those pairs treat the test mammograms as fixed, so they understate the uncertainty "
        "of every number that depends on the mammogram; the woman-wise CV rows are the better measure of the "
        "mammography branch.",
        "",
        "## Fusion choice",
        "",
        f"Cross-fitted validation AUC on {int(val['stacking']['n'])} validation pseudo-pairs: stacking "
        f"{val['stacking']['auc']:.3f}, late fusion {val['late_fusion']['auc']:.3f}, single MLP head "
        f"{val['fused_mlp_head']['auc']:.3f}. **The bundle and the app use {fusion.replace('_', ' ')}.** "
        + (
            "MPM-MU's stacking did not beat late fusion on these data."
            if fusion == "late_fusion"
            else "Stacking beat late fusion on the validation pairs."
        ),
        "",
    ]
    single = run.summary["stage2"].get("single_modality")
    if single:
        lines += ["One-image cases (the other modality missing) are answered by:", ""]
        for modality in ("mammography", "ultrasound"):
            only, branch = val.get(f"{modality}_only"), val.get(f"{modality}_branch")
            if only is None or branch is None:
                continue
            answer = "the branch alone" if single.get(modality) == "branch" else f"the {modality}-only stacking ensemble"
            lines.append(
                f"- {modality}: {answer} (validation AUC: {modality}-only ensemble {only['auc']:.3f}, cross-fitted, on "
                f"{int(only['n'])} images; branch {branch['auc']:.3f} on the same images, which also chose its epoch)."
            )
        lines.append("")

    main_rows = image_rows(run)
    cv_file = _find_cv_file(work_dir, cv_work_dir)
    if cv_file is not None:
        cv_command = f"mpmmu train --cv mammography --work {cv_file.parent.parent.name}"
        main_rows += cv_rows(cv_file, run.thresholds["mammography_branch"], _cv_command(cv_file) or cv_command)
    main_rows += pair_rows(run, "ultrasound", 0)
    main_rows += pair_rows(run, "mammogram", 0)
    for ablation in ablations:
        attention = ablation.summary["config"]["attention"]
        stages = ",".join(str(stage) for stage in ablation.summary["config"].get("attention_stages", ["head"]))
        suffix = ", no attention" if attention == "none" else f", attention after {stages}"
        main_rows += image_rows(ablation, suffix) + pair_rows(ablation, "ultrasound", 0, suffix)
    lines += ["## Results table", ""] + format_table(main_rows) + [""]

    lines += ["## Pseudo-paired test over pairing seeds", ""]
    for design in ("ultrasound", "mammogram"):
        summary = seed_summary(run, design)
        lines += [
            f"**{design}-driven design**: {len(summary['seeds'])} pairing seeds, {summary['n_pairs']} pairs per seed "
            f"({'every test ultrasound image gets a random same-class test mammogram' if design == 'ultrasound' else 'one pair per test mammogram finding'}).",
            "",
            "| model | AUC mean ± sd over seeds | min-max |",
            "|---|---|---|",
        ]
        for model, label in MODEL_LABELS.items():
            values = summary["auc"].get(model, [])
            span = f"{min(values):.3f}-{max(values):.3f}" if values else "n/a"
            lines.append(f"| {label} | {_mean_sd(values)} | {span} |")
        lines.append("")
        for name, title in (("fused_vs_best_single", f"{fusion.replace('_', ' ')} vs the better single branch"),
                            ("stacking_vs_late_fusion", "stacking vs late fusion")):
            tests = summary["tests"][name]
            if tests:
                formatted = ", ".join(f"{difference:+.3f} (p={p:.3g})" for difference, p in tests)
                lines.append(f"- DeLong test, {title}, AUC difference per seed: {formatted}.")
        lines.append("")

    if not synthetic:
        lines += _targets_section(run, cv_file, main_rows)
    lines += _calibration_section(run, fusion, cv_file)
    if placement_work_dirs:
        lines += placement_section(placement_work_dirs, run)
    else:
        lines += ["## Where the attention sits", "", "No placement ablation was passed (`--placement-work`).", ""]
    lines += _training_section(run, ablations)
    if notes.strip():
        lines += ["## Notes on these runs (written by hand, not computed)", "", notes.strip(), ""]
    lines += [
        "## Reference lines (not measured by this command)",
        "",
        "Frozen-feature floors: pretrained EfficientNet-Lite0 pooled features + logistic regression, no "
        "fine-tuning, measured by the team on 2026-12-04 on the same data (mean over patient-wise folds). "
        "A fine-tuned branch should beat them clearly.",
        "",
        "| data | AUC |",
        "|---|---|",
    ]
    lines += [f"| {data} | {auc} |" for data, auc in FROZEN_FEATURE_FLOORS]
    lines += [
        "",
        f"Paper's reported AUCs ({PAPER_SOURCE}): "
        + ", ".join(f"{name} {auc:.3f}" for name, auc in PAPER_AUC.items())
        + ". They come from true pairs of another population and are given for context only.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    logger.info("wrote %s", out)
    return out


@dataclass(frozen=True)
class PlacementRow:
    """One branch trained with one attention placement, for the placement ablation table."""

    modality: str
    placement: str
    data: str
    n: int
    n_positive: int
    validation_auc: float | None
    auc: float
    delong_low: float
    delong_high: float
    best_epoch: int | None
    command: str


def _placement_of(config: dict[str, Any]) -> str:
    if config.get("attention") == "none":
        return "none"
    return ",".join(str(stage) for stage in config.get("attention_stages", ["head"]))


def placement_rows(work_dir: Path) -> list[PlacementRow]:
    """Rows of one placement-ablation run: a stage-1 run (``--only`` or full) or a mammography CV.

    A stage-1 run gives each trained branch's validation AUC (the number that picks the
    placement) and its held-out test AUC; a ``--cv mammography`` run gives the pooled
    out-of-fold AUC over the five folds.

    Raises
    ------
    MetricInputError
        If the folder contains neither a finished stage 1 nor a CV run.
    """
    from mpmmu.metrics import delong_ci
    from mpmmu.train.run import ImageScores

    work_dir = Path(work_dir)
    cv_json, cv_file = work_dir / "cv_run.json", work_dir / "predictions" / "cv_mammography.csv"
    if cv_json.is_file() and cv_file.is_file():
        config = json.loads(cv_json.read_text())["config"]
        data = read_predictions(cv_file)
        delong = delong_ci(data["y"].astype(np.int64), data["branch"])
        return [PlacementRow(
            "mammography", _placement_of(config), "mini-MIAS lesion squares, woman-wise 5-fold CV (pooled out-of-fold)",
            len(data["y"]), int(data["y"].sum()), None, delong.auc, delong.ci_low, delong.ci_high, None,
            _cv_command(cv_file),
        )]
    run_json = work_dir / "run.json"
    if not run_json.is_file():
        raise MetricInputError(f"neither run.json nor cv_run.json found in {work_dir}; pass the --work folder of an mpmmu train run")
    summary = json.loads(run_json.read_text())
    command = train_command(summary["config"])
    if summary["config"].get("only"):
        command += f" --only {summary['config']['only']}"
    data_labels = {"ultrasound": "BUS-BRA lesion boxes, patient-wise held-out test",
                   "mammography": "mini-MIAS lesion squares, woman-wise held-out test"}
    rows = []
    for modality, stage1 in summary["stage1"].items():
        path = work_dir / "features" / f"{modality}.npz"
        if not path.is_file():
            continue
        scores = ImageScores.load(path)
        val, test = scores.split == "val", scores.split == "test"
        delong = delong_ci(scores.y[test].astype(np.int64), scores.p[test])
        rows.append(PlacementRow(
            modality, _placement_of(summary["config"]), data_labels[modality], int(test.sum()),
            int(scores.y[test].sum()), float(delong_ci(scores.y[val].astype(np.int64), scores.p[val]).auc),
            delong.auc, delong.ci_low, delong.ci_high, stage1.get("best_epoch"), command,
        ))
    if not rows:
        raise MetricInputError(f"the run in {work_dir} has not scored any branch yet; let stage 1 finish")
    return rows


def placement_section(work_dirs: Sequence[Path], run: RunData | None = None) -> list[str]:
    """Render the attention-placement ablation: one row per branch and placement."""
    rows = [row for folder in work_dirs for row in placement_rows(folder)]
    if run is not None:
        rows = placement_rows(run.work_dir) + rows
    lines = [
        "## Where the attention sits (placement ablation)",
        "",
        "Each row trains one branch with its attention module(s) after the listed places. `head` is after "
        "the backbone's last 1 x 1 convolution, just before pooling. A number i is after backbone stage i "
        "(0-6 for EfficientNet-Lite0), and `none` is the branch without attention. The placement is chosen by "
        "validation AUC (ultrasound) or by the woman-wise CV AUC (mammography, whose validation split holds "
        "only about 24 findings). Every other setting is the same within a modality.",
        "",
        "| branch | placement | data | n (malignant) | validation AUC | AUC | 95% CI DeLong | best epoch | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda item: (item.modality != "ultrasound", item.data, item.placement)):
        validation = "n/a" if row.validation_auc is None else f"{row.validation_auc:.3f}"
        epoch = "n/a" if row.best_epoch is None else str(row.best_epoch)
        lines.append(
            f"| {row.modality} | {row.placement} | {row.data} | {row.n} ({row.n_positive}) | {validation} | "
            f"{row.auc:.3f} | {_format_ci(row.delong_low, row.delong_high)} | {epoch} | `{row.command}` |"
        )
    return lines + [""]


def _distinct_folders(folders: Sequence[Path], exclude: Path) -> list[Path]:
    """Drop repeated folders and ``exclude`` (the main run), keeping the order given."""
    distinct, seen = [], {exclude}
    for folder in folders:
        resolved = Path(folder).expanduser().resolve()
        if resolved in seen:
            logger.warning("%s was passed twice or is the main run; its rows are reported once", folder)
            continue
        seen.add(resolved)
        distinct.append(Path(folder))
    return distinct


def _check_bundle_matches_run(metadata: dict[str, Any], run: RunData, bundle_dir: Path) -> None:
    """Raise MetricInputError unless the bundle was written by the run whose predictions are read.

    Runs record the bundle's model version; older runs are matched by their training manifests
    and the chosen fusion's threshold.
    """
    version = run.summary.get("model_version")
    if version is not None:
        matches = version == metadata.get("model_version")
    else:
        fusion = run.summary["stage2"]["fusion"]
        same_manifests = all(
            metadata.get("manifest_sha256", {}).get(role) == digest
            for role, digest in run.summary.get("manifest_sha256", {}).items()
        )
        same_threshold = metadata.get("thresholds", {}).get(fusion) == run.thresholds.get(fusion)
        matches = same_manifests and same_threshold
    if not matches:
        raise MetricInputError(
            f"the bundle in {bundle_dir} ({metadata.get('model_version', 'no version')}) was not written by the run "
            f"in {run.work_dir}; pass the --out folder of that run as --bundle"
        )


def _find_cv_file(work_dir: Path, cv_work_dir: Path | None) -> Path | None:
    for folder in (cv_work_dir, work_dir):
        if folder is not None and (Path(folder) / "predictions" / "cv_mammography.csv").is_file():
            return Path(folder) / "predictions" / "cv_mammography.csv"
    return None


def _cv_command(cv_file: Path) -> str:
    path = cv_file.parent.parent / "cv_run.json"
    if not path.is_file():
        return ""
    config = json.loads(path.read_text())["config"]
    return train_command(config).replace("mpmmu train", "mpmmu train --cv mammography", 1)


def _targets_section(run: RunData, cv_file: Path | None, rows: Sequence[ReportRow]) -> list[str]:
    def find(model_key: str, data_start: str) -> float | None:
        for row in rows:
            if row.model == MODEL_LABELS[model_key] and row.data.startswith(data_start) and row.metrics is not None:
                return row.metrics.auc
        return None

    us = find("ultrasound_branch", "BUS-BRA lesion box")
    mg_cv = find("mammography_branch", "mini-MIAS lesion square, woman-wise 5-fold") if cv_file else None
    mg_test = find("mammography_branch", "mini-MIAS lesion square, woman-wise held-out")
    pairs = seed_summary(run, "ultrasound")["auc"]
    fused = run.summary["stage2"]["fusion"]
    mean = {model: float(np.mean(values)) for model, values in pairs.items() if values}
    lines = [
        "## Targets",
        "",
        f"- Ultrasound branch AUC >= 0.92 on BUS-BRA lesion boxes (patient-wise held-out test): {_met(us, 0.92)}.",
        f"- Mammography branch AUC >= 0.78 on mini-MIAS lesion squares (woman-wise CV): {_met(mg_cv, 0.78)}"
        + (f"; on the small held-out test split it is {mg_test:.3f}" if mg_test is not None else "")
        + ".",
    ]
    floors = []
    if us is not None:
        floors.append(f"ultrasound branch {us:.3f} vs 0.878 for frozen features + logistic regression")
    if mg_cv is not None:
        floors.append(f"mammography branch (woman-wise CV) {mg_cv:.3f} vs 0.66-0.69")
    if floors:
        lines.append(
            "- Against the frozen-feature floors (reference lines below, measured with other folds): "
            + "; ".join(floors)
            + ". A gain smaller than the floors' fold-to-fold spread is not a clear gain."
        )
    if mean:
        best_single = max(mean["mammography_branch"], mean["ultrasound_branch"])
        lines.append(
            f"- Fused ({fused.replace('_', ' ')}) above both single modalities on the ultrasound-driven pseudo-paired "
            f"test (mean over seeds): {'met' if mean[fused] > best_single else 'NOT met'} "
            f"({mean[fused]:.3f} vs {best_single:.3f})."
        )
        lines.append(
            f"- Stacking above late fusion on the same pairs: {'met' if mean['stacking'] > mean['late_fusion'] else 'NOT met'} "
            f"({mean['stacking']:.3f} vs {mean['late_fusion']:.3f})."
        )
    return lines + [""]


def _calibration_section(run: RunData, fusion: str, cv_file: Path | None) -> list[str]:
    lines = ["## Calibration (test split, 5 quantile bins)", ""]
    pairs = run.predictions("test_pairs_ultrasound_seed0")
    lines += calibration_lines(f"{MODEL_LABELS[fusion]}, ultrasound-driven test pseudo-pairs, seed 0", pairs["y"], pairs[fusion])
    if fusion != "stacking":
        lines += calibration_lines(f"{MODEL_LABELS['stacking']}, same pairs", pairs["y"], pairs["stacking"])
    us = run.predictions("test_ultrasound")
    lines += calibration_lines(f"{MODEL_LABELS['ultrasound_branch']}, BUS-BRA test", us["y"], us["branch"])
    if cv_file is not None:
        cv = read_predictions(cv_file)
        lines += calibration_lines(f"{MODEL_LABELS['mammography_branch']}, mini-MIAS woman-wise CV", cv["y"], cv["branch"])
    return lines


def _training_section(run: RunData, ablations: Sequence[RunData]) -> list[str]:
    lines = [
        "## Training runs",
        "",
        "| run | branch | epochs run | best epoch | best validation AUC | training minutes (sum of epoch times) |",
        "|---|---|---|---|---|---|",
    ]
    for item in (run, *ablations):
        for modality, values in item.summary["stage1"].items():
            history = values.get("history") or []
            minutes = sum(entry["seconds"] for entry in history) / 60
            best_auc = values.get("best_val_auc")
            lines.append(
                f"| `{item.command}` | {modality} | {len(history)} | {values.get('best_epoch')} | "
                f"{'n/a' if best_auc is None else f'{best_auc:.3f}'} | {minutes:.1f} |"
            )
    stage2_minutes = run.summary["timings"].get("stage2_s", float("nan")) / 60
    lines += [
        "",
        f"Hardware: a 2-core CPU, no GPU. Stage 2 (cross-fitting and the final fit) "
        f"took {stage2_minutes:.1f} minutes.",
        "",
        "A stage 1 stopped by `--stage1-minutes` depends on the machine's speed; adding "
        "`--stop-ultrasound-after N`, with N the ultrasound epochs run above, repeats it exactly.",
        "",
        "The scores above come from the training-time path (float32 weights, images cached as 8-bit). The "
        "shipped bundle stores float16 weights and the app preprocesses in floating point, so its branch "
        "probabilities can differ slightly: by up to 0.05 on four BUS-BRA and two mini-MIAS test images "
        "checked by hand.",
        "",
    ]
    return lines
