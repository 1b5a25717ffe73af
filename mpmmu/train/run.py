"""End-to-end training of MPM-MU: manifests, both branches, stage 2 and the bundle.

:func:`run_training` is what ``mpmmu train`` runs:

1. Build the BUS-BRA (ultrasound) and mini-MIAS (mammography) manifests, or a synthetic data set,
   and split each by patient, stratified by label, into train / val / test (7:2:1, seeded).
2. Fine-tune the ultrasound branch (ECA) on BUS-BRA lesion boxes and the mammography branch
   (CBAM) on mini-MIAS lesion squares of side max(3 x radius, 128) px, each with early stopping
   on its own validation split.
3. Score the validation and test images with their branch: pooled features and probability on
   the lesion ROI, and the probability on the whole image for the test split.
4. Stage 2. Pooled features are comparable only within one trained CNN, and a CNN's features of
   its own training images are over-confident. So stage 2 is fitted on the VALIDATION split,
   whose images neither CNN trained on. The fused models use class-matched pseudo-pairs inside
   the validation split, and the single-modality ensembles use all validation images of their
   modality. The fusion choice (stacking or late fusion) and every threshold come from
   cross-fitting inside the validation split (see :mod:`mpmmu.train.crossfit`), and the final
   models are then refitted on all validation pairs.
5. Score the test split: per-modality test images and class-matched test pseudo-pairs in the
   ultrasound-driven and mammogram-driven designs over several pairing seeds, written as CSV
   files that ``mpmmu evaluate`` reads.
6. Save the bundle with thresholds, the fusion choice, test metrics, ROC points, manifest
   hashes and the pseudo-pairing caveat.

:func:`run_mammography_cv` is ``mpmmu train --cv mammography``: woman-wise k-fold
cross-validation of the mammography branch, writing out-of-fold probabilities on the lesion ROI
and on the whole image.

Work folder layout (never inside the data folder)::

    manifests/{ultrasound,mammography}.csv   split manifests and their SHA-256 in the bundle
    stage1/<modality>/                       checkpoints (last.pt, best.safetensors, branch.json)
    features/<modality>.npz                  case ids, split, labels, features, probabilities
    predictions/*.csv                        validation (cross-fitted) and test scores
    run.json                                 settings, timings and the summary of this run
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mpmmu.config import cache_root, data_root
from mpmmu.data import (
    CaseRow,
    build_bus_bra,
    build_mini_mias,
    make_pseudo_pairs,
    manifest_sha256,
    patient_kfold,
    patient_split,
    read_manifest,
    write_manifest,
    write_synthetic_dataset,
)
from mpmmu.errors import ManifestError

logger = logging.getLogger(__name__)

MODALITIES = ("mammography", "ultrasound")
PAIR_DESIGNS = ("ultrasound", "mammogram")
#: Stage-2 models scored on pairs, in the column order of the prediction files.
PAIR_MODELS = (
    "stacking",
    "late_fusion",
    "fused_mlp_head",
    "mammography_branch",
    "ultrasound_branch",
    "mammography_only",
    "ultrasound_only",
)
#: Models scored on the single-modality image sets, per modality.
IMAGE_MODELS = ("branch", "only", "branch_whole_image")
PREDICTIONS_DIR = "predictions"
RUN_SUMMARY = "run.json"


@dataclass(frozen=True)
class TrainRunConfig:
    """Settings of one ``mpmmu train`` run.

    Attributes
    ----------
    work_dir : pathlib.Path
        Checkpoints, feature arrays and predictions.
    out_dir : pathlib.Path or None
        Bundle folder; None skips saving a bundle.
    data_dir : pathlib.Path or None
        Folder with ``bus-bra/`` and ``mini-mias/``; None uses :func:`mpmmu.config.data_root`.
    synthetic : int or None
        Train on a generated data set with this many cases per label instead of the real data.
    epochs, mammography_epochs : int
        Maximum stage-1 epochs of the ultrasound branch and of the mammography branch.
    image_size : int
        Model input side in pixels.
    attention : {"default", "none"}
        "default" gives CBAM to mammography and ECA to ultrasound; "none" is the ablation.
    attention_stages : tuple of int or "head"
        Where both branches place their attention (see :mod:`mpmmu.models.branch`).
    backbone : str
    seed : int
        Seed of the split, the training, the pairing and stage 2.
    device : str
        "auto", "cpu" or "cuda".
    threads : int
        ``torch.set_num_threads`` for training and scoring.
    resume : bool
        Continue stage 1 from the checkpoints in ``work_dir``.
    only : {"mammography", "ultrasound"} or None
        Train only this branch and stop before stage 2.
    batch_size, lr, patience, freeze_stages
        Stage-1 settings shared by both branches.
    mammography_lr, mammography_patience, mammography_freeze_stages : float or None, int or None
        Learning rate, early-stopping patience and frozen stages of the mammography branch; None
        uses ``lr``, ``patience`` and ``freeze_stages``.
    pairing_seeds : int
        Number of test pairing seeds per design.
    stage2_folds : int
        Folds of the cross-fitting inside the validation split.
    n_estimators : int
        Trees per forest in stage 2; small forests keep the bundle small.
    image_cache : pathlib.Path or None
        Preprocessed-image cache; None uses ``mpmmu.config.cache_root() / "stage1"``.
    weights_dtype : {"float16", "float32"}
        Storage type of the branch weights in the bundle.
    stage1_minutes : float or None
        Wall-clock budget of each branch's stage 1 in this process: no new epoch starts when the
        last one would end past it, and the best epoch so far is kept. None trains until
        ``epochs`` or early stopping.
    stop_ultrasound_after : int or None
        Stop the ultrasound branch after this many epochs in all, keeping the best one; the
        learning-rate schedule still spans ``epochs``. Lets an ablation stop where a
        budget-limited run stopped.
    stage2_pca : float or None
        Share of variance kept by the PCA inside every stage-2 learner and the fused MLP head;
        None feeds the raw pooled features.
    pretrained : bool
        Start from the packaged ImageNet Lite0 weights.
    progress : bool
        Show a progress bar per epoch.
    extra : dict
        Free-form notes stored with the run.
    """

    work_dir: Path
    out_dir: Path | None = None
    data_dir: Path | None = None
    synthetic: int | None = None
    epochs: int = 12
    mammography_epochs: int = 30
    image_size: int = 224
    attention: str = "default"
    attention_stages: tuple[int | str, ...] = ("head",)
    backbone: str = "efficientnet_lite0"
    seed: int = 0
    device: str = "auto"
    threads: int = 2
    resume: bool = True
    only: str | None = None
    batch_size: int = 16
    lr: float = 3e-4
    mammography_lr: float | None = 1e-3
    patience: int = 4
    mammography_patience: int | None = 8
    freeze_stages: int = 0
    mammography_freeze_stages: int | None = 3
    pairing_seeds: int = 5
    stage2_folds: int = 3
    n_estimators: int = 100
    image_cache: Path | None = None
    weights_dtype: str = "float16"
    stage1_minutes: float | None = None
    stop_ultrasound_after: int | None = None
    stage2_pca: float | None = 0.95
    pretrained: bool = True
    progress: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.attention not in ("default", "none"):
            raise ValueError(f"attention must be 'default' or 'none', got {self.attention!r}")
        if self.only not in (None, *MODALITIES):
            raise ValueError(f"only must be 'mammography', 'ultrasound' or None, got {self.only!r}")
        if self.weights_dtype not in ("float16", "float32"):
            raise ValueError(f"weights_dtype must be 'float16' or 'float32', got {self.weights_dtype!r}")
        for name in ("epochs", "mammography_epochs", "pairing_seeds", "threads", "n_estimators"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stage2_folds < 2:
            raise ValueError(f"stage2_folds must be >= 2, got {self.stage2_folds}")
        if self.synthetic is not None and self.synthetic < 4:
            raise ValueError(f"synthetic needs at least 4 cases per label to fill the splits, got {self.synthetic}")
        check_work_dir(self.work_dir, self.data_dir)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values."""
        values = asdict(self)
        return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


def check_work_dir(work_dir: Path, data_dir: Path | None = None) -> None:
    """Raise ``ValueError`` if ``work_dir`` lies inside the read-only data folder or the ``shared`` folder above it."""
    work = Path(work_dir).expanduser().resolve()
    data = Path(data_dir or data_root()).expanduser().resolve()
    forbidden_dirs = [data]
    if data.parent.name == "shared":
        forbidden_dirs.append(data.parent)
    for forbidden in forbidden_dirs:
        if work == forbidden or forbidden in work.parents:
            raise ValueError(
                f"work folder {work} is inside the data folder {forbidden}, which is read-only; "
                f"pass --work under {cache_root()} or a tmp dir"
            )


def default_work_dir(name: str = "default") -> Path:
    """Return ``<cache root>/runs/<name>``, the default work folder."""
    return cache_root() / "runs" / name


# --------------------------------------------------------------------------- manifests


def _strip_modality(row: CaseRow, keep: str) -> CaseRow:
    if keep == "ultrasound":
        return replace(row, mammogram_path=None, mammogram_roi=None)
    return replace(row, ultrasound_path=None, ultrasound_roi=None)


def build_split_manifests(config: TrainRunConfig) -> dict[str, list[CaseRow]]:
    """Build the manifests of both modalities, split them by patient and write them to the work folder.

    Returns
    -------
    dict of str to list of CaseRow
        "ultrasound" and "mammography" rows, each with ``split`` set and only its own image.

    Raises
    ------
    ManifestError
        When a data set folder is missing or invalid.
    """
    manifest_dir = config.work_dir / "manifests"
    manifest_dir.mkdir(parents=True, exist_ok=True)
    if config.synthetic is not None:
        path = write_synthetic_dataset(config.work_dir / "synthetic", config.synthetic, config.seed, size=128)
        rows = read_manifest(path)
        # Each synthetic case contains both images of one patient. Training uses them as two
        # single-modality sets with distinct patient ids, the way the real data arrive.
        sources = {
            modality: [
                replace(_strip_modality(row, modality), patient_id=f"{modality[:2]}-{row.patient_id}", split=None)
                for row in rows
            ]
            for modality in MODALITIES
        }
    else:
        root = Path(config.data_dir or data_root())
        for name in ("bus-bra", "mini-mias"):
            if not (root / name).is_dir():
                raise ManifestError(
                    f"data folder {root / name} not found; set MPMMU_DATA or pass --data with the folder "
                    "holding bus-bra/ and mini-mias/, or use --synthetic N"
                )
        sources = {
            "ultrasound": list(build_bus_bra(root / "bus-bra").rows),
            "mammography": list(build_mini_mias(root / "mini-mias").rows),
        }

    split_rows = {}
    for modality, rows in sources.items():
        split = patient_split(rows, (0.7, 0.2, 0.1), config.seed)
        write_manifest(split, manifest_dir / f"{modality}.csv")
        split_rows[modality] = split
        counts = {name: sum(row.split == name for row in split) for name in ("train", "val", "test")}
        logger.info("%s manifest: %d images, split %s", modality, len(split), counts)
    return split_rows


def rows_of(rows: Sequence[CaseRow], split: str) -> list[CaseRow]:
    """Return the rows of one split."""
    return [row for row in rows if row.split == split]


# --------------------------------------------------------------------------- stage 1


def stage1_config(config: TrainRunConfig, modality: str):
    """Build the :class:`mpmmu.train.stage1.Stage1Config` of one branch from the run settings."""
    from mpmmu.train.stage1 import Stage1Config

    return Stage1Config(
        epochs=config.epochs if modality == "ultrasound" else config.mammography_epochs,
        batch_size=config.batch_size,
        lr=config.mammography_lr if modality == "mammography" and config.mammography_lr else config.lr,
        image_size=config.image_size,
        seed=config.seed,
        patience=config.mammography_patience if modality == "mammography" and config.mammography_patience else config.patience,
        freeze_stages=(
            config.mammography_freeze_stages
            if modality == "mammography" and config.mammography_freeze_stages is not None
            else config.freeze_stages
        ),
        backbone=config.backbone,
        attention=None if config.attention == "default" else "none",
        attention_stages=tuple(config.attention_stages),
        pretrained=config.pretrained,
        device=config.device,
        num_threads=config.threads,
        progress=config.progress,
    )


@dataclass(frozen=True)
class ImageScores:
    """Stage-1 outputs of every image of one modality, in manifest order.

    Attributes
    ----------
    case_id, patient_id, split : numpy.ndarray of str
    y : numpy.ndarray of int
        1 malignant, 0 benign.
    p : numpy.ndarray of float64
        Branch probability on the lesion ROI.
    p_whole : numpy.ndarray of float64
        Branch probability on the whole image; NaN where not scored.
    features : numpy.ndarray of float32, shape (n_images, n_features)
    """

    case_id: np.ndarray
    patient_id: np.ndarray
    split: np.ndarray
    y: np.ndarray
    p: np.ndarray
    p_whole: np.ndarray
    features: np.ndarray

    def index(self) -> dict[str, int]:
        """Return the position of each case id."""
        return {case: i for i, case in enumerate(self.case_id.tolist())}

    def save(self, path: Path) -> None:
        """Write the arrays to an ``.npz`` file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{name: getattr(self, name) for name in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> ImageScores:
        """Read arrays written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def whole_image_row(row: CaseRow) -> CaseRow:
    """Return a copy of the row without its lesion boxes, so preprocessing uses the whole image."""
    return replace(row, mammogram_roi=None, ultrasound_roi=None)


def score_images(branch, rows: Sequence[CaseRow], config: TrainRunConfig, preprocess_config, whole_splits=("test",)) -> ImageScores:
    """Score every row with ``branch``: ROI features and probability, whole-image probability for ``whole_splits``."""
    from mpmmu.train.stage1 import predict_branch

    prediction = predict_branch(
        branch, rows, preprocess_config, device=config.device, cache_dir=config.image_cache
    )
    p_whole = np.full(len(rows), np.nan)
    whole_index = [i for i, row in enumerate(rows) if row.split in whole_splits]
    if whole_index:
        whole = predict_branch(
            branch,
            [whole_image_row(rows[i]) for i in whole_index],
            preprocess_config,
            device=config.device,
            cache_dir=config.image_cache,
        )
        p_whole[whole_index] = whole.probabilities
    return ImageScores(
        case_id=np.array([row.case_id for row in rows]),
        patient_id=np.array([row.patient_id for row in rows]),
        split=np.array([row.split or "" for row in rows]),
        y=np.array([row.y for row in rows], dtype=np.int64),
        p=prediction.probabilities,
        p_whole=p_whole,
        features=prediction.features,
    )


def train_and_score_branch(modality: str, rows: Sequence[CaseRow], config: TrainRunConfig):
    """Fine-tune one branch on its train split (early stopping on val) and score its val and test images.

    With ``config.resume``, a branch whose scores were written after its last checkpoint is
    loaded from the checkpoint and its scores are reused.

    Returns
    -------
    (Branch, ImageScores, list of dict)
        The best-epoch branch, the scores (also written to ``features/<modality>.npz``) and the
        per-epoch history.
    """
    from mpmmu.preprocess import PreprocessConfig
    from mpmmu.train.stage1 import train_branch

    preprocess_config = PreprocessConfig(size=config.image_size)
    checkpoint_dir = config.work_dir / "stage1" / modality
    features_path = config.work_dir / "features" / f"{modality}.npz"
    checkpoint_path = checkpoint_dir / "last.pt"
    if (
        config.resume
        and features_path.is_file()
        and checkpoint_path.is_file()
        and features_path.stat().st_mtime > checkpoint_path.stat().st_mtime
    ):
        # The branch was trained and scored by an earlier call: reuse both instead of training on.
        branch, history = best_branch_from_checkpoint(modality, stage1_config(config, modality), checkpoint_dir)
        logger.info("%s branch: reusing the trained branch and the scores in %s", modality, features_path)
        return branch, ImageScores.load(features_path), history
    started = time.perf_counter()
    try:
        branch, history = train_branch(
            rows_of(rows, "train"),
            rows_of(rows, "val"),
            modality,
            stage1_config(config, modality),
            checkpoint_dir,
            preprocess_config=preprocess_config,
            cache_dir=config.image_cache,
            resume=config.resume,
            on_epoch_end=_budget_check(
                config.stage1_minutes, started, config.stop_ultrasound_after if modality == "ultrasound" else None
            ),
        )
    except _BudgetReached:
        branch, history = best_branch_from_checkpoint(modality, stage1_config(config, modality), checkpoint_dir)
        logger.warning(
            "%s stage 1 stopped by the time budget or epoch limit after epoch %d; keeping the best epoch %s",
            modality, len(history), max(history, key=lambda entry: entry["val_auc"])["epoch"],
        )
    trained = time.perf_counter()
    # Stage 2 and the report read only validation and test images, so training images are not scored.
    scored_rows = [row for row in rows if row.split in ("val", "test")]
    scores = score_images(branch, scored_rows, config, preprocess_config)
    scores.save(features_path)
    logger.info(
        "%s branch: trained in %.0f s, scored %d images in %.0f s",
        modality, trained - started, len(rows), time.perf_counter() - trained,
    )
    return branch, scores, history


class _BudgetReached(Exception):
    """Raised from the epoch callback to stop stage 1 when the time budget is spent."""


def _budget_check(minutes: float | None, started: float, stop_after: int | None = None):
    if minutes is None and stop_after is None:
        return None

    def check(record: dict[str, float]) -> None:
        elapsed = time.perf_counter() - started
        if minutes is not None and elapsed + record["seconds"] > minutes * 60:
            raise _BudgetReached
        if stop_after is not None and record["epoch"] >= stop_after:
            raise _BudgetReached

    return check


def best_branch_from_checkpoint(modality: str, stage1, checkpoint_dir: Path):
    """Rebuild a branch with the best epoch's weights from ``checkpoint_dir/last.pt``.

    Returns
    -------
    (Branch, list of dict)
        The branch on CPU in evaluation mode, and the training history so far.
    """
    import torch

    from mpmmu.models import build_branch
    from mpmmu.train.stage1 import CHECKPOINT_NAME

    payload = torch.load(checkpoint_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    branch = build_branch(
        modality,
        backbone=stage1.backbone,
        attention=stage1.attention,
        attention_stages=stage1.attention_stages,
        pretrained=False,
        dropout=stage1.dropout,
    )
    branch.load_state_dict(payload["best_state"])
    branch.eval()
    return branch, json.loads(payload["history"])


# --------------------------------------------------------------------------- test predictions


def write_csv(path: Path, columns: dict[str, Sequence[Any]]) -> Path:
    """Write equal-length columns to a CSV file, floats with 6 decimals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(columns)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        column_lengths = {name: len(columns[name]) for name in names}
        raise ValueError(f"columns of {path.name} differ in length: {column_lengths}; pass one value per row in each")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for values in zip(*(columns[name] for name in names)):
            writer.writerow([f"{value:.6f}" if isinstance(value, (float, np.floating)) else value for value in values])
    return path


def write_test_predictions(split_rows, scores, result, config: TrainRunConfig) -> list[Path]:
    """Score the test split: each modality's images, and pseudo-pairs per design and pairing seed."""
    from mpmmu.train.crossfit import pair_scores, paired_features

    out = config.work_dir / PREDICTIONS_DIR
    written = []
    for modality in MODALITIES:
        test = scores[modality].split == "test"
        ensemble = result.mammography_only if modality == "mammography" else result.ultrasound_only
        written.append(
            write_csv(
                out / f"test_{modality}.csv",
                {
                    "case_id": scores[modality].case_id[test],
                    "patient_id": scores[modality].patient_id[test],
                    "y": scores[modality].y[test],
                    "branch": scores[modality].p[test],
                    "only": ensemble.predict_proba(scores[modality].features[test])[:, 1],
                    "branch_whole_image": scores[modality].p_whole[test],
                },
            )
        )
    test_us, test_mg = rows_of(split_rows["ultrasound"], "test"), rows_of(split_rows["mammography"], "test")
    for design in PAIR_DESIGNS:
        for pairing_seed in range(config.pairing_seeds):
            pairs = make_pseudo_pairs(test_us, test_mg, design, config.seed * 1000 + pairing_seed)
            features = paired_features(pairs, scores)
            columns: dict[str, Sequence[Any]] = {
                "case_id": [pair.case_id for pair in pairs],
                "us_patient": features.groups_us,
                "mg_patient": features.groups_mg,
                "y": features.y,
            }
            columns.update(pair_scores(result, features))
            written.append(write_csv(out / f"test_pairs_{design}_seed{pairing_seed}.csv", columns))
    return written


# --------------------------------------------------------------------------- the run


def run_training(config: TrainRunConfig) -> dict[str, Any]:
    """Run the whole training (see the module docstring) and return the run summary.

    Returns
    -------
    dict
        Settings, stage-1 histories and best validation AUCs, stage-2 choice and validation
        metrics, test metrics, timings and the bundle folder (when saved). Also written to
        ``work_dir/run.json``.

    Raises
    ------
    ManifestError
        When the data cannot be read.
    ValueError
        When a split lacks a class or the settings are invalid.
    """
    from mpmmu.preprocess import PreprocessConfig

    started = time.perf_counter()
    config.work_dir.mkdir(parents=True, exist_ok=True)
    split_rows = build_split_manifests(config)
    summary: dict[str, Any] = {"config": config.to_dict(), "stage1": {}, "timings": {}}
    summary["manifest_sha256"] = {
        modality: manifest_sha256(config.work_dir / "manifests" / f"{modality}.csv") for modality in MODALITIES
    }

    branches, scores = {}, {}
    for modality in ("ultrasound", "mammography"):
        if config.only is not None and modality != config.only:
            continue
        phase = time.perf_counter()
        branch, image_scores, history = train_and_score_branch(modality, split_rows[modality], config)
        branches[modality], scores[modality] = branch, image_scores
        best = max(history, key=lambda entry: entry["val_auc"]) if history else {}
        summary["stage1"][modality] = {"history": history, "best_epoch": best.get("epoch"), "best_val_auc": best.get("val_auc")}
        summary["timings"][f"stage1_{modality}_s"] = time.perf_counter() - phase
    if config.only is not None:
        _write_summary(config, summary, started)
        logger.info("trained only the %s branch; run again without --only to fit stage 2", config.only)
        return summary

    phase = time.perf_counter()
    # One BLAS thread: the stage-2 matrices are small, and on a busy CPU extra BLAS threads
    # mostly wait for each other (the fused MLP head ran about 4x slower with 2 than with 1).
    blas_limit = threadpool_limits(limits=1, user_api="blas")
    from mpmmu.train.crossfit import (
        choose_from_out_of_fold,
        cross_fit_validation,
        fit_final_stage2,
        stacking_params_for,
    )

    val_mammograms = scores["mammography"].y[scores["mammography"].split == "val"]
    smallest_class = int(min((val_mammograms == 1).sum(), (val_mammograms == 0).sum()))
    stacking_params = stacking_params_for(config, smallest_class)
    pairs, pair_oof, image_oof = cross_fit_validation(split_rows, scores, config, stacking_params)
    fusion, thresholds, val_metrics = choose_from_out_of_fold(pair_oof, image_oof, scores)
    prediction_dir = config.work_dir / PREDICTIONS_DIR
    write_csv(
        prediction_dir / "val_pairs_oof.csv",
        {"case_id": [pair.case_id for pair in pairs], "fold": [pair.split for pair in pairs], **pair_oof},
    )
    result = fit_final_stage2(split_rows, scores, config, stacking_params, fusion, thresholds, val_metrics)
    summary["timings"]["stage2_s"] = time.perf_counter() - phase
    summary["stage2"] = {
        "fusion": fusion,
        "single_modality": result.single_modality,
        "validation_out_of_fold": val_metrics,
        "thresholds": thresholds,
        "stacking_params": stacking_params,
    }
    logger.info(
        "stage 2: out-of-fold validation AUC stacking %.3f, late fusion %.3f; the bundle uses %s",
        val_metrics["stacking"]["auc"], val_metrics["late_fusion"]["auc"], fusion,
    )

    write_test_predictions(split_rows, scores, result, config)
    blas_limit.restore_original_limits()
    from mpmmu.train.evaluate import bundle_test_metrics

    test_metrics = bundle_test_metrics(config.work_dir, thresholds)
    summary["test"] = test_metrics["summary"]

    if config.out_dir is not None:
        from mpmmu.pipeline import Bundle

        preprocess = PreprocessConfig(size=config.image_size)
        bundle = Bundle.from_stage2(
            branches=branches,
            stage2=result,
            preprocess_configs={modality: preprocess for modality in MODALITIES},
            training_data=_training_data(config, split_rows, result, fusion, val_metrics),
            manifest_sha256=summary["manifest_sha256"],
            metrics={
                "validation_out_of_fold": val_metrics,
                "stage2_training": result.metadata()["training"],
                "test": test_metrics["summary"],
                "roc": test_metrics["roc"],
                "stage1": {m: {"best_epoch": s["best_epoch"], "best_val_auc": s["best_val_auc"]} for m, s in summary["stage1"].items()},
            },
            notes=_fusion_note(fusion, val_metrics),
        )
        saved = bundle.save(config.out_dir, weights_dtype=config.weights_dtype)
        summary["bundle"] = str(config.out_dir)
        summary["model_version"] = saved.model_version
    _write_summary(config, summary, started)
    return summary


def _training_data(config, split_rows, result, fusion, val_metrics) -> dict[str, Any]:
    counts = {
        modality: {split: len(rows_of(rows, split)) for split in ("train", "val", "test")}
        for modality, rows in split_rows.items()
    }
    sources = "synthetic data" if config.synthetic is not None else "BUS-BRA (ultrasound) and mini-MIAS (mammography)"
    return {
        "description": (
            f"Branches fine-tuned on the train split of {sources} (patient-wise 7:2:1, seed {config.seed}); "
            "stage 2 fitted on the validation split: ultrasound-driven class-matched pseudo-pairs "
            "for the fused models, all validation images for the single-modality ensembles."
        ),
        "pseudo_paired": True,
        "synthetic": config.synthetic is not None,
        "images_per_split": counts,
        "stage2_pairs": result.metadata()["training"],
        "seed": config.seed,
        "attention": config.attention,
        "attention_stages": [str(stage) for stage in config.attention_stages],
        "image_size": config.image_size,
    }


def _fusion_note(fusion: str, metrics: dict[str, dict[str, float]]) -> str:
    stacking, late = metrics["stacking"]["auc"], metrics["late_fusion"]["auc"]
    if fusion == "late_fusion":
        return (
            f"The stacking ensemble (out-of-fold validation AUC {stacking:.3f}) did not beat late fusion "
            f"({late:.3f}) on these data, so the app uses late fusion for two-image cases."
        )
    return f"The stacking ensemble (out-of-fold validation AUC {stacking:.3f}) beat late fusion ({late:.3f})."


def _write_summary(config: TrainRunConfig, summary: dict[str, Any], started: float) -> None:
    summary["timings"]["total_s"] = time.perf_counter() - started
    path = config.work_dir / RUN_SUMMARY
    path.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    logger.info("run summary written to %s (%.0f s in all)", path, summary["timings"]["total_s"])


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# --------------------------------------------------------------------------- mammography CV


def run_mammography_cv(config: TrainRunConfig, k: int = 5) -> Path:
    """Woman-wise k-fold cross-validation of the mammography branch on mini-MIAS lesion ROIs.

    Each fold trains on the other folds' women, with a patient-wise fifth of them held out for
    early stopping, and scores its own women on the lesion ROI and on the whole image.

    Returns
    -------
    pathlib.Path
        ``work_dir/predictions/cv_mammography.csv`` with case_id, patient_id, fold, y, branch
        (ROI probability) and branch_whole_image.
    """
    from mpmmu.preprocess import PreprocessConfig
    from mpmmu.train.stage1 import predict_branch, train_branch

    config.work_dir.mkdir(parents=True, exist_ok=True)
    rows = [row.with_split(None) for row in build_split_manifests(config)["mammography"]]
    preprocess_config = PreprocessConfig(size=config.image_size)
    columns: dict[str, list[Any]] = {name: [] for name in ("case_id", "patient_id", "fold", "y", "branch", "branch_whole_image")}
    started = time.perf_counter()
    for fold_number, (train_part, test_part) in enumerate(patient_kfold(rows, k, config.seed), start=1):
        inner = patient_split(train_part, (0.8, 0.2, 0.0), config.seed + fold_number)
        checkpoint_dir = config.work_dir / "cv" / f"fold{fold_number}"
        try:
            branch, _ = train_branch(
                rows_of(inner, "train"),
                rows_of(inner, "val"),
                "mammography",
                stage1_config(config, "mammography"),
                checkpoint_dir,
                preprocess_config=preprocess_config,
                cache_dir=config.image_cache,
                resume=config.resume,
                on_epoch_end=_budget_check(config.stage1_minutes, time.perf_counter()),
            )
        except _BudgetReached:
            branch, _ = best_branch_from_checkpoint("mammography", stage1_config(config, "mammography"), checkpoint_dir)
        roi = predict_branch(branch, test_part, preprocess_config, device=config.device, cache_dir=config.image_cache)
        whole = predict_branch(
            branch, [whole_image_row(row) for row in test_part], preprocess_config,
            device=config.device, cache_dir=config.image_cache,
        )
        columns["case_id"].extend(row.case_id for row in test_part)
        columns["patient_id"].extend(row.patient_id for row in test_part)
        columns["fold"].extend([fold_number] * len(test_part))
        columns["y"].extend(row.y for row in test_part)
        columns["branch"].extend(roi.probabilities.tolist())
        columns["branch_whole_image"].extend(whole.probabilities.tolist())
        logger.info("mammography CV fold %d/%d done after %.0f s", fold_number, k, time.perf_counter() - started)
    path = write_csv(config.work_dir / PREDICTIONS_DIR / "cv_mammography.csv", columns)
    (config.work_dir / "cv_run.json").write_text(
        json.dumps({"config": config.to_dict(), "k": k, "seconds": time.perf_counter() - started}, indent=2) + "\n"
    )
    return path


def environment_threads(threads: int) -> None:
    """Limit the BLAS and OpenMP thread pools before heavy imports, so runs share the CPU fairly."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
