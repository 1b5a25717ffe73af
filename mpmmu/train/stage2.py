"""Stage 2 of MPM-MU: fuse the branches' pooled features and fit the ensembles.

Stage 1 leaves, for every image, the branch's pooled attention features and its probability of
malignancy. Stage 2 fits, on the training pairs:

- the stacking ensemble on the fused (concatenated) features, cross-validated by both patients;
- late fusion, the sum of the two branches' log-odds, which learns nothing and is the baseline;
- a single MLP on the fused features, for the ablation table;
- one stacking ensemble per modality on all training images of that modality, which scores a
  case that has only one image and fills the single-modality rows of the ablation table.

It then scores every model on the validation pairs, picks the fusion the app uses (stacking or
late fusion, whichever has the higher validation AUC) and chooses each model's operating
threshold by Youden's index on validation data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline

from mpmmu.ensemble.fusion import LateFusion, fuse_features, make_fused_mlp_head
from mpmmu.ensemble.stacking import BASE_LEARNERS, StackingEnsemble
from mpmmu.metrics.roc import choose_threshold, roc_auc, threshold_metrics

logger = logging.getLogger(__name__)

Fusion = Literal["stacking", "late_fusion"]

# A mammogram used more than this many times as often as the least used one makes the stage-2
# learners weight some mammograms far above others.
_MAX_REUSE_RATIO = 2.0


def _as_features(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values; re-extract the features")
    return array


def _as_vector(name: str, values: object, n_samples: int, dtype: type | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), got {array.shape}")
    return array


def _as_probabilities(name: str, values: object, n_samples: int) -> np.ndarray:
    array = _as_vector(name, values, n_samples, np.float64)
    if not np.all((array >= 0) & (array <= 1)):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values outside that range")
    return array


def _as_labels(name: str, values: object, n_samples: int) -> np.ndarray:
    array = _as_vector(name, values, n_samples)
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold 0 (benign) or 1 (malignant), got {np.unique(array)}")
    return array.astype(np.intp)


@dataclass(frozen=True)
class ModalityFeatures:
    """Stage-1 outputs for the images of one modality, one row per image.

    Attributes
    ----------
    features : numpy.ndarray of float64, shape (n_images, n_features)
        Pooled attention features of the branch.
    p : numpy.ndarray of float64, shape (n_images,)
        The branch's probability of malignancy.
    y : numpy.ndarray of int, shape (n_images,)
        1 malignant, 0 benign.
    groups : numpy.ndarray, shape (n_images,)
        Patient of each image.
    """

    features: np.ndarray
    p: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        features = _as_features("features", self.features)
        n_images = features.shape[0]
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "p", _as_probabilities("p", self.p, n_images))
        object.__setattr__(self, "y", _as_labels("y", self.y, n_images))
        object.__setattr__(self, "groups", _as_vector("groups", self.groups, n_images))


@dataclass(frozen=True)
class PairedFeatures:
    """Stage-1 outputs for (mammogram, ultrasound) pairs, one row per pair.

    Pseudo-pairs repeat a mammogram's row in every pair it joins.

    Attributes
    ----------
    features_mg, features_us : numpy.ndarray of float64, shape (n_pairs, n_features_*)
    p_mg, p_us : numpy.ndarray of float64, shape (n_pairs,)
    y : numpy.ndarray of int, shape (n_pairs,)
        1 malignant, 0 benign.
    groups_mg, groups_us : numpy.ndarray, shape (n_pairs,)
        Mammography patient and ultrasound patient of each pair.
    """

    features_mg: np.ndarray
    p_mg: np.ndarray
    features_us: np.ndarray
    p_us: np.ndarray
    y: np.ndarray
    groups_mg: np.ndarray
    groups_us: np.ndarray

    def __post_init__(self) -> None:
        features_mg = _as_features("features_mg", self.features_mg)
        features_us = _as_features("features_us", self.features_us)
        n_pairs = features_mg.shape[0]
        if features_us.shape[0] != n_pairs:
            raise ValueError(
                f"features_mg has {n_pairs} rows but features_us has {features_us.shape[0]}; "
                f"pass one row per pair in the same order"
            )
        object.__setattr__(self, "features_mg", features_mg)
        object.__setattr__(self, "features_us", features_us)
        object.__setattr__(self, "p_mg", _as_probabilities("p_mg", self.p_mg, n_pairs))
        object.__setattr__(self, "p_us", _as_probabilities("p_us", self.p_us, n_pairs))
        object.__setattr__(self, "y", _as_labels("y", self.y, n_pairs))
        object.__setattr__(self, "groups_mg", _as_vector("groups_mg", self.groups_mg, n_pairs))
        object.__setattr__(self, "groups_us", _as_vector("groups_us", self.groups_us, n_pairs))

    @property
    def n_pairs(self) -> int:
        """Number of pairs."""
        return int(self.y.shape[0])

    @property
    def fused(self) -> np.ndarray:
        """Fused features, mammography block first, shape (n_pairs, n_features_mg + n_features_us)."""
        return fuse_features(self.features_mg, self.features_us)

    @property
    def branch_probabilities(self) -> np.ndarray:
        """Columns (p_mg, p_us), the input of :class:`LateFusion`."""
        return np.column_stack([self.p_mg, self.p_us])

    @property
    def patient_groups(self) -> np.ndarray:
        """Columns (ultrasound patient, mammography patient), the stacking's ``groups``."""
        return np.column_stack([self.groups_us, self.groups_mg])

    def images(self, modality: Literal["mammography", "ultrasound"]) -> ModalityFeatures:
        """Return the distinct images of one modality, dropping the repeats of reused images.

        Two rows are the same image when their features are identical, which holds for a
        mammogram reused across pseudo-pairs because its features were extracted once.

        Parameters
        ----------
        modality : {"mammography", "ultrasound"}

        Returns
        -------
        ModalityFeatures
            One row per distinct image, in order of first appearance.
        """
        if modality == "mammography":
            features, p, groups = self.features_mg, self.p_mg, self.groups_mg
        elif modality == "ultrasound":
            features, p, groups = self.features_us, self.p_us, self.groups_us
        else:
            raise ValueError(f"modality must be 'mammography' or 'ultrasound', got {modality!r}")
        _, first = np.unique(features, axis=0, return_index=True)
        first = np.sort(first)
        return ModalityFeatures(features[first], p[first], self.y[first], groups[first])


@dataclass(frozen=True)
class Stage2Output:
    """Stage-2 output for a batch of cases.

    Attributes
    ----------
    p_malignant : numpy.ndarray of float64, shape (n_cases,)
    fusion : str
        "stacking", "late_fusion", "<modality>_only" (single-modality ensemble) or
        "<modality>_branch" (the bare branch, when it beat that ensemble on validation).
    votes : dict of str to numpy.ndarray
        Each base learner's probability and the meta-learner's ("meta_mlp"). With late fusion or
        the bare branch producing p_malignant, they come from the matching ensemble, for display only.
    threshold : float
        Operating threshold of the model that produced p_malignant.
    single_modality : bool
        True when one image was missing and a single-modality ensemble answered.
    """

    p_malignant: np.ndarray
    fusion: str
    votes: dict[str, np.ndarray]
    threshold: float
    single_modality: bool


def choose_single_modality(metrics: dict[str, dict[str, float]]) -> dict[str, str]:
    """Choose, per modality, the model that scores a case whose other image is missing.

    The single-modality stacking ensemble ("ensemble") scores it unless the bare branch ("branch")
    had a strictly higher validation AUC. With few validation images of one modality, the
    ensemble can rank worse than the branch whose features it reads.

    Parameters
    ----------
    metrics : dict of str to dict of str to float
        Validation metrics with "<modality>_only" and "<modality>_branch" entries; a modality
        missing either keeps the ensemble.

    Returns
    -------
    dict of str to str
        "mammography" and "ultrasound" to "ensemble" or "branch".
    """
    chosen = {}
    for modality in ("mammography", "ultrasound"):
        ensemble = metrics.get(f"{modality}_only", {}).get("auc")
        branch = metrics.get(f"{modality}_branch", {}).get("auc")
        better = ensemble is not None and branch is not None and float(branch) > float(ensemble)
        chosen[modality] = "branch" if better else "ensemble"
    return chosen


@dataclass(frozen=True)
class Stage2Result:
    """Fitted stage-2 models, the fusion choice, thresholds and validation metrics.

    Attributes
    ----------
    stacking : StackingEnsemble
        Fitted on the fused features of the training pairs.
    mammography_only, ultrasound_only : StackingEnsemble
        Fitted on all training images of one modality.
    late_fusion : LateFusion
    fused_mlp_head : sklearn.pipeline.Pipeline
        Single MLP on the fused features, for the ablation table.
    fusion : {"stacking", "late_fusion"}
        The fusion with the higher validation AUC on pairs; late fusion on a tie.
    thresholds : dict of str to float
        Youden threshold per model, chosen on validation data.
    metrics : dict of str to dict of str to float
        Validation metrics per model and per base learner of the fused stacking: "auc", "n",
        "threshold", "sensitivity", "specificity", "brier".
    n_features_mg, n_features_us : int
    training : dict
        Counts of the training data, mammogram reuse and the seed.
    single_modality : dict of str to str
        Read-only: the model kind that scores a one-image case, per modality, "ensemble" or "branch"
        (see :func:`choose_single_modality`).
    """

    stacking: StackingEnsemble
    mammography_only: StackingEnsemble
    ultrasound_only: StackingEnsemble
    late_fusion: LateFusion
    fused_mlp_head: Pipeline
    fusion: Fusion
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]
    n_features_mg: int
    n_features_us: int
    training: dict[str, float] = field(default_factory=dict)

    @property
    def single_modality(self) -> dict[str, str]:
        return choose_single_modality(self.metrics)

    def predict(
        self,
        features_mg: np.ndarray | None = None,
        p_mg: np.ndarray | None = None,
        features_us: np.ndarray | None = None,
        p_us: np.ndarray | None = None,
    ) -> Stage2Output:
        """Score cases with the chosen fusion, or with one modality's ensemble if one is missing.

        Parameters
        ----------
        features_mg : array-like of shape (n_cases, n_features_mg) or None
        p_mg : array-like of shape (n_cases,) or None
            Needed when the chosen fusion is late fusion, and for a mammogram alone when
            :attr:`single_modality` picks the branch.
        features_us : array-like of shape (n_cases, n_features_us) or None
        p_us : array-like of shape (n_cases,) or None
            As ``p_mg``, for the ultrasound.

        Returns
        -------
        Stage2Output

        Raises
        ------
        ValueError
            If neither modality's features are given, the feature widths differ from training, or
            late fusion or a single-image branch answer needs a branch probability that is missing.
        """
        if features_mg is None and features_us is None:
            raise ValueError("stage 2 needs the features of at least one modality, got neither")
        if features_mg is None or features_us is None:
            modality = "ultrasound" if features_mg is None else "mammography"
            ensemble = self.ultrasound_only if features_mg is None else self.mammography_only
            features = features_us if features_mg is None else features_mg
            branch_p = p_us if features_mg is None else p_mg
            votes = ensemble.votes(np.atleast_2d(np.asarray(features, dtype=np.float64)))
            answered_by = f"{modality}_only"
            p_malignant = votes["meta_mlp"]
            if self.single_modality[modality] == "branch":
                if branch_p is None:
                    argument = "p_us" if features_mg is None else "p_mg"
                    raise ValueError(
                        f"the {modality} branch scores one-image cases (it beat the {modality}-only "
                        f"ensemble on validation), so pass its probability as {argument}"
                    )
                answered_by = f"{modality}_branch"
                p_malignant = np.atleast_1d(np.asarray(branch_p, dtype=np.float64))
            return Stage2Output(
                p_malignant=p_malignant,
                fusion=answered_by,
                votes=votes,
                threshold=self.thresholds[answered_by],
                single_modality=True,
            )

        fused = fuse_features(np.atleast_2d(features_mg), np.atleast_2d(features_us))
        votes = self.stacking.votes(fused)
        if self.fusion == "stacking":
            p_malignant = votes["meta_mlp"]
        else:
            if p_mg is None or p_us is None:
                raise ValueError(
                    "the chosen fusion is late fusion, which needs p_mg and p_us; pass both "
                    "branch probabilities"
                )
            branch_p = np.column_stack([np.atleast_1d(p_mg), np.atleast_1d(p_us)])
            p_malignant = self.late_fusion.predict_proba(branch_p)[:, 1]
        return Stage2Output(
            p_malignant=p_malignant,
            fusion=self.fusion,
            votes=votes,
            threshold=self.thresholds[self.fusion],
            single_modality=False,
        )

    def metadata(self) -> dict:
        """Return the fusion choice, thresholds, metrics and training counts as JSON types."""
        return {
            "fusion": self.fusion,
            "thresholds": {name: float(value) for name, value in self.thresholds.items()},
            "metrics": {
                name: {key: float(value) for key, value in values.items()}
                for name, values in self.metrics.items()
            },
            "n_features_mg": int(self.n_features_mg),
            "n_features_us": int(self.n_features_us),
            "training": {key: float(value) for key, value in self.training.items()},
            "single_modality": self.single_modality,
        }


def _validation_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    threshold = choose_threshold(y, score, rule="youden")
    at_threshold = threshold_metrics(y, score, threshold)
    return {
        "auc": float(roc_auc(y, score)),
        "n": float(len(y)),
        "threshold": float(threshold),
        "sensitivity": float(at_threshold.sensitivity),
        "specificity": float(at_threshold.specificity),
        "brier": float(brier_score_loss(y, np.clip(score, 0.0, 1.0))),
    }


def _mammogram_reuse(pairs: PairedFeatures) -> dict[str, float]:
    _, counts = np.unique(pairs.features_mg, axis=0, return_counts=True)
    reuse = {
        "n_distinct_mammograms": float(len(counts)),
        "mammogram_reuse_min": float(counts.min()),
        "mammogram_reuse_max": float(counts.max()),
        "mammogram_reuse_mean": float(counts.mean()),
    }
    if counts.max() > _MAX_REUSE_RATIO * counts.min():
        logger.warning(
            "mammogram reuse is unbalanced: %d distinct mammograms used %d to %d times; "
            "the most used ones dominate stage 2, balance the pairing",
            len(counts),
            counts.min(),
            counts.max(),
        )
    return reuse


def fit_stage2(
    features_mg: np.ndarray,
    p_mg: np.ndarray,
    features_us: np.ndarray,
    p_us: np.ndarray,
    y: np.ndarray,
    groups_mg: np.ndarray,
    groups_us: np.ndarray,
    *,
    val: PairedFeatures,
    mammography_images: ModalityFeatures | None = None,
    ultrasound_images: ModalityFeatures | None = None,
    val_mammography_images: ModalityFeatures | None = None,
    val_ultrasound_images: ModalityFeatures | None = None,
    seed: int = 0,
    stacking_params: dict | None = None,
    n_components: int | float | None = None,
) -> Stage2Result:
    """Fit the stage-2 ensembles on training pairs and choose the fusion on validation pairs.

    Parameters
    ----------
    features_mg, p_mg, features_us, p_us, y, groups_mg, groups_us
        The training pairs, one row each, as in :class:`PairedFeatures`: pooled features and
        branch probability per modality, label (1 malignant), mammography and ultrasound patient.
    val : PairedFeatures
        Validation pairs from patients not in training; they choose the fusion and thresholds.
    mammography_images, ultrasound_images : ModalityFeatures, optional
        All training images of each modality for the single-modality ensembles, paired or not.
        Default: the distinct images found in the training pairs.
    val_mammography_images, val_ultrasound_images : ModalityFeatures, optional
        Validation images for the single-modality thresholds. Default: the distinct images of
        ``val``.
    seed : int, default=0
    stacking_params : dict, optional
        Extra parameters of every :class:`StackingEnsemble`, for example ``{"cv": 3}``.
    n_components : int, float or None, default=None
        PCA in the stacking's base learners and the fused MLP head.

    Returns
    -------
    Stage2Result

    Raises
    ------
    ValueError
        If an input has the wrong shape or values, or the patients cannot fill the folds.

    Notes
    -----
    Pseudo-pairs assume the two modalities are independent given the label, so a fused gain
    measured on them is an upper bound for truly paired data.
    """
    train = PairedFeatures(features_mg, p_mg, features_us, p_us, y, groups_mg, groups_us)
    for name, features in (("mg", val.features_mg), ("us", val.features_us)):
        expected = getattr(train, f"features_{name}").shape[1]
        if features.shape[1] != expected:
            raise ValueError(
                f"val.features_{name} has {features.shape[1]} columns but the training features "
                f"have {expected}; extract both with the same branch"
            )
    if mammography_images is None:
        mammography_images = train.images("mammography")
    if ultrasound_images is None:
        ultrasound_images = train.images("ultrasound")
    if val_mammography_images is None:
        val_mammography_images = val.images("mammography")
    if val_ultrasound_images is None:
        val_ultrasound_images = val.images("ultrasound")
    params = {"random_state": seed, "n_components": n_components, **(stacking_params or {})}
    reuse = _mammogram_reuse(train)

    stacking = StackingEnsemble(**params).fit(train.fused, train.y, train.patient_groups)
    mammography_only = StackingEnsemble(**params).fit(
        mammography_images.features, mammography_images.y, mammography_images.groups
    )
    ultrasound_only = StackingEnsemble(**params).fit(
        ultrasound_images.features, ultrasound_images.y, ultrasound_images.groups
    )
    late_fusion = LateFusion().fit(train.branch_probabilities, train.y)
    fused_mlp_head = make_fused_mlp_head(n_components=n_components, random_state=seed)
    fused_mlp_head.fit(train.fused, train.y)

    val_fused = val.fused
    val_votes = stacking.votes(val_fused)
    scores = {
        "stacking": (val.y, val_votes["meta_mlp"]),
        "late_fusion": (val.y, late_fusion.predict_proba(val.branch_probabilities)[:, 1]),
        "fused_mlp_head": (val.y, fused_mlp_head.predict_proba(val_fused)[:, 1]),
        "mammography_branch": (val.y, val.p_mg),
        "ultrasound_branch": (val.y, val.p_us),
        "mammography_only": (
            val_mammography_images.y,
            mammography_only.predict_proba(val_mammography_images.features)[:, 1],
        ),
        "ultrasound_only": (
            val_ultrasound_images.y,
            ultrasound_only.predict_proba(val_ultrasound_images.features)[:, 1],
        ),
    }
    for name in BASE_LEARNERS:
        scores[f"stacking.{name}"] = (val.y, val_votes[name])
    metrics = {name: _validation_metrics(labels, score) for name, (labels, score) in scores.items()}
    thresholds = {name: values["threshold"] for name, values in metrics.items()}

    fusion: Fusion = (
        "stacking" if metrics["stacking"]["auc"] > metrics["late_fusion"]["auc"] else "late_fusion"
    )
    logger.info(
        "validation AUC on %d pairs: stacking %.3f, late fusion %.3f; the app uses %s",
        val.n_pairs,
        metrics["stacking"]["auc"],
        metrics["late_fusion"]["auc"],
        fusion,
    )
    if fusion == "late_fusion":
        logger.warning(
            "the stacking ensemble did not beat late fusion on the validation pairs "
            "(AUC %.3f vs %.3f); the bundle uses late fusion",
            metrics["stacking"]["auc"],
            metrics["late_fusion"]["auc"],
        )

    training = {
        "n_pairs": float(train.n_pairs),
        "n_mammography_images": float(mammography_images.y.shape[0]),
        "n_ultrasound_images": float(ultrasound_images.y.shape[0]),
        "n_val_pairs": float(val.n_pairs),
        "seed": float(seed),
        **reuse,
    }
    return Stage2Result(
        stacking=stacking,
        mammography_only=mammography_only,
        ultrasound_only=ultrasound_only,
        late_fusion=late_fusion,
        fused_mlp_head=fused_mlp_head,
        fusion=fusion,
        thresholds=thresholds,
        metrics=metrics,
        n_features_mg=train.features_mg.shape[1],
        n_features_us=train.features_us.shape[1],
        training=training,
    )
