"""Build a tiny trained bundle from synthetic data, for tests and demos that need a real model.

The bundle goes through the same code as a real one (stage 1, stage 2, :class:`Bundle`), only
with synthetic images, 64 px inputs, a few epochs and small forests. Its predictions mean
nothing about real mammograms or ultrasound images.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from mpmmu.pipeline.bundle import Bundle

logger = logging.getLogger(__name__)

#: Stacking settings small enough to fit in seconds on a handful of synthetic cases.
TINY_STACKING_PARAMS = {"cv": 3, "calibration_cv": 2, "n_estimators": 20}


def build_tiny_bundle(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    *,
    n_per_class: int = 16,
    image_size: int = 64,
    epochs: int = 2,
    source_size: int = 128,
) -> Path:
    """Train a tiny MPM-MU model on synthetic cases and save it as a bundle.

    Parameters
    ----------
    out_dir : path-like
        Receives ``data/`` (synthetic PNGs and ``manifest.csv``), ``cache/`` (preprocessed
        images) and ``bundle/``.
    seed : int
        Seed of the data, the split and both training stages.
    n_per_class : int
        Synthetic cases per label; each case is a true mammogram-ultrasound pair.
    image_size : int
        Model input side in pixels.
    epochs : int
        Stage-1 epochs per branch.
    source_size : int
        Side of the synthetic images in pixels.

    Returns
    -------
    pathlib.Path
        The bundle folder, ``out_dir / "bundle"``.
    """
    from mpmmu.data import manifest_sha256, read_manifest
    from mpmmu.data.synthetic import write_synthetic_dataset
    from mpmmu.preprocess import PreprocessConfig
    from mpmmu.train.stage1 import Stage1Config, predict_branch, train_branch
    from mpmmu.train.stage2 import PairedFeatures, fit_stage2

    out_dir = Path(out_dir)
    cache_dir = out_dir / "cache"
    manifest = write_synthetic_dataset(out_dir / "data", n_per_class, seed, size=source_size)
    rows = read_manifest(manifest)
    splits = {name: [row for row in rows if row.split == name] for name in ("train", "val")}

    preprocess_config = PreprocessConfig(size=image_size)
    stage1 = Stage1Config(
        epochs=epochs,
        batch_size=8,
        image_size=image_size,
        seed=seed,
        patience=epochs,
        device="cpu",
        amp=False,
        num_threads=None,
        progress=False,
        eval_batch_size=32,
    )
    branches = {}
    outputs = {}
    for modality in ("mammography", "ultrasound"):
        branch, _ = train_branch(
            splits["train"],
            splits["val"],
            modality,
            stage1,
            None,
            preprocess_config=preprocess_config,
            cache_dir=cache_dir,
        )
        branches[modality] = branch
        outputs[modality] = {
            name: predict_branch(branch, split_rows, preprocess_config, device="cpu", cache_dir=cache_dir)
            for name, split_rows in splits.items()
        }

    def paired(split: str) -> PairedFeatures:
        labels = np.array([1 if row.label == "malignant" else 0 for row in splits[split]])
        patients = np.array([row.patient_id for row in splits[split]])
        return PairedFeatures(
            features_mg=outputs["mammography"][split].features,
            p_mg=outputs["mammography"][split].probabilities,
            features_us=outputs["ultrasound"][split].features,
            p_us=outputs["ultrasound"][split].probabilities,
            y=labels,
            groups_mg=patients,
            groups_us=patients,
        )

    train = paired("train")
    stage2 = fit_stage2(
        train.features_mg,
        train.p_mg,
        train.features_us,
        train.p_us,
        train.y,
        train.groups_mg,
        train.groups_us,
        val=paired("val"),
        seed=seed,
        stacking_params=TINY_STACKING_PARAMS,
    )
    bundle = Bundle.from_stage2(
        branches=branches,
        stage2=stage2,
        preprocess_configs={modality: preprocess_config for modality in branches},
        training_data={
            "description": (
                f"{len(rows)} synthetic cases ({n_per_class} per class, seed {seed}), "
                f"{source_size} px images, {epochs} epochs at {image_size} px; for tests only"
            ),
            "pseudo_paired": False,
        },
        manifest_sha256={"synthetic": manifest_sha256(manifest)},
        notes="tiny test bundle built by mpmmu.pipeline.testing.build_tiny_bundle",
    )
    saved = bundle.save(out_dir / "bundle")
    logger.info("built tiny bundle %s in %s", saved.model_version, saved.directory)
    return out_dir / "bundle"
