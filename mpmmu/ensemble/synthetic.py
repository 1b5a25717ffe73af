"""Synthetic stage-2 features with the structure of ultrasound-driven pseudo-pairs.

For tests and benchmarks of the stacking, not for training a model anyone uses. Ultrasound
features carry a strong label signal. Mammography features carry a weak one plus a large
per-image identity component, and a few mammograms are each reused by many ultrasound patients,
class-matched, so a learner that memorises a mammogram's identity can read the label off it.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def make_synthetic_pairs(
    n_ultrasound_patients: int = 240,
    n_mammograms: int = 16,
    n_features_us: int = 12,
    n_features_mg: int = 12,
    images_per_ultrasound_patient: int = 1,
    ultrasound_signal: float = 0.5,
    mammography_signal: float = 0.15,
    seed: int = 0,
    id_prefix: str = "",
) -> dict[str, np.ndarray]:
    """Draw class-matched pseudo-pairs with balanced mammogram reuse.

    Every ultrasound image is paired with one mammogram of the same class. Within each class the
    ultrasound images are dealt round-robin over that class's mammograms in random order, so each
    mammogram is reused about ``n_ultrasound_images / n_mammograms`` times. With one image per
    ultrasound patient the bipartite patient graph has one component per mammogram. With more,
    a patient's images join different mammograms, so the graph becomes one component per class,
    as image-level pseudo-pairing of real data does.

    Parameters
    ----------
    n_ultrasound_patients : int
        Pairs to draw; half are malignant.
    n_mammograms : int
        Distinct mammograms (one per mammography patient), half malignant; at least 2.
    n_features_us, n_features_mg : int
        Feature widths of the two branches.
    images_per_ultrasound_patient : int
        Ultrasound images (and so pairs) per ultrasound patient, all of the patient's class.
    ultrasound_signal, mammography_signal : float
        Shift of the class means along every feature, in units of the within-class standard
        deviation.
    seed : int
    id_prefix : str
        Prefix of the patient identifiers, so that two draws have disjoint patients.

    Returns
    -------
    dict of str to numpy.ndarray
        Keys "features_mg", "p_mg", "features_us", "p_us", "y", "groups_mg", "groups_us", one
        row per pair (``n_ultrasound_patients * images_per_ultrasound_patient`` rows), as :class:`mpmmu.train.stage2.PairedFeatures` takes them. The branch
        probabilities are noisy logistic readouts of the features' signal.

    Raises
    ------
    ValueError
        If there are fewer than two mammograms or fewer ultrasound patients than mammograms.
    """
    if n_mammograms < 2 or n_ultrasound_patients < n_mammograms or images_per_ultrasound_patient < 1:
        raise ValueError(
            f"need at least 2 mammograms, as many ultrasound patients as mammograms and 1 image "
            f"per patient, got {n_mammograms} mammograms, {n_ultrasound_patients} ultrasound "
            f"patients and {images_per_ultrasound_patient} images per patient"
        )
    rng = np.random.default_rng(seed)

    mammogram_y = np.arange(n_mammograms) % 2
    mammogram_features = rng.normal(size=(n_mammograms, n_features_mg))
    mammogram_features += mammography_signal * mammogram_y[:, None]
    mammogram_p = _sigmoid(
        mammography_signal * (mammogram_features.mean(axis=1) * np.sqrt(n_features_mg) - 0.5)
        + rng.normal(scale=0.5, size=n_mammograms)
    )

    ultrasound_patient = np.repeat(np.arange(n_ultrasound_patients), images_per_ultrasound_patient)
    n_pairs = len(ultrasound_patient)
    y = ultrasound_patient % 2
    features_us = rng.normal(size=(n_pairs, n_features_us))
    features_us += ultrasound_signal * y[:, None]
    p_us = _sigmoid(
        ultrasound_signal * (features_us.mean(axis=1) * np.sqrt(n_features_us) - 0.5)
        + rng.normal(scale=0.5, size=n_pairs)
    )

    mammogram_of_pair = np.empty(n_pairs, dtype=np.intp)
    for label in (0, 1):
        pairs = rng.permutation(np.flatnonzero(y == label))
        mammograms = rng.permutation(np.flatnonzero(mammogram_y == label))
        mammogram_of_pair[pairs] = mammograms[np.arange(len(pairs)) % len(mammograms)]

    return {
        "features_mg": mammogram_features[mammogram_of_pair],
        "p_mg": mammogram_p[mammogram_of_pair],
        "features_us": features_us,
        "p_us": p_us,
        "y": y,
        "groups_mg": np.array([f"{id_prefix}mg{index}" for index in mammogram_of_pair]),
        "groups_us": np.array([f"{id_prefix}us{index}" for index in ultrasound_patient]),
    }
