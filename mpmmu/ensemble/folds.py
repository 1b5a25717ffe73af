"""Cross-validation folds that keep every patient on one side of each split.

Stage 2 trains on (mammogram, ultrasound) pairs. A pair belongs to two patients, the ultrasound
patient and the mammography patient, and with pseudo-pairs one mammogram is reused in many pairs.
A fold whose training part holds a pair with the same mammogram (or the same ultrasound patient) as
a pair in its test part leaks that image's identity, and with class-matched pairing the identity
gives the label away.

For pairs, :func:`grouped_folds` first tries the connected components of the bipartite patient
graph: one node per ultrasound patient, one node per mammography patient, one edge per pair. Two
pairs that share either patient fall in the same component, and whole components are dealt to
folds by :class:`sklearn.model_selection.StratifiedGroupKFold`; every pair is then tested once.

Pairing each ultrasound image (not each patient) with a random mammogram links almost every
patient of a label into one component. Then no such split exists, and the folds are two-way
blocked instead: mammography patients are dealt to folds, each ultrasound patient joins the fold
that most of its mammograms are in, fold k tests the pairs whose two patients are both in k and
trains on the pairs whose two patients are both outside k. A pair whose patients sit in different
folds is trained on in the other folds and tested in none.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold

logger = logging.getLogger(__name__)

# A component containing more than this share of the pairs leaves the other folds without enough
# data, so the two-way blocked folds are used instead.
_MAX_COMPONENT_SHARE = 0.5


def check_groups(groups: object, n_samples: int) -> np.ndarray | None:
    """Validate the ``groups`` argument of a fit.

    Parameters
    ----------
    groups : None or array-like of shape (n_samples,), (n_samples, 1) or (n_samples, 2)
        Patient per sample, or (ultrasound patient, mammography patient) per pair.
    n_samples : int
        Rows in X.

    Returns
    -------
    numpy.ndarray of shape (n_samples,) or (n_samples, 2), or None

    Raises
    ------
    ValueError
        If ``groups`` has the wrong length or shape.
    """
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.ndim == 0 or groups.shape[0] != n_samples:
        raise ValueError(
            f"groups has shape {groups.shape} but X has {n_samples} rows; pass one group "
            f"(or one pair of patients) per sample"
        )
    if groups.ndim == 2 and groups.shape[1] == 1:
        return groups[:, 0]
    if groups.ndim > 2 or (groups.ndim == 2 and groups.shape[1] != 2):
        raise ValueError(
            f"groups must have shape (n_samples,) or (n_samples, 2) with the ultrasound patient "
            f"in column 0 and the mammography patient in column 1, got shape {groups.shape}"
        )
    return groups


def _codes(values: np.ndarray) -> np.ndarray:
    _, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1).astype(np.intp)


def bipartite_components(groups: np.ndarray) -> np.ndarray:
    """Label each pair with the connected component of its two patients.

    Parameters
    ----------
    groups : numpy.ndarray, shape (n_samples, 2)
        Column 0 the ultrasound patient, column 1 the mammography patient, any sortable values.
        The columns are separate namespaces: patient "7" in column 0 and patient "7" in column 1
        are different nodes.

    Returns
    -------
    numpy.ndarray of int, shape (n_samples,)
        Component index per pair, 0 to n_components - 1.

    Raises
    ------
    ValueError
        If ``groups`` is not a two-column array.
    """
    groups = np.asarray(groups)
    if groups.ndim != 2 or groups.shape[1] != 2:
        raise ValueError(
            f"groups must have shape (n_samples, 2) with the ultrasound patient in column 0 and "
            f"the mammography patient in column 1, got shape {groups.shape}"
        )
    if len(groups) == 0:
        return np.zeros(0, dtype=np.intp)
    ultrasound_nodes = _codes(groups[:, 0])
    mammography_nodes = _codes(groups[:, 1])
    n_ultrasound = int(ultrasound_nodes.max()) + 1
    n_nodes = n_ultrasound + int(mammography_nodes.max()) + 1

    edges = coo_matrix(
        (np.ones(len(groups)), (ultrasound_nodes, n_ultrasound + mammography_nodes)),
        shape=(n_nodes, n_nodes),
    )
    _, node_component = connected_components(edges, directed=False)
    return _codes(node_component[ultrasound_nodes])


def _stratified_group_folds(
    y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ValueError(
            f"grouped cross-validation needs at least n_splits={n_splits} patient groups, got "
            f"{n_groups}; lower cv or add patients"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():
        # The splitter warns when a class has fewer members than folds; _check_folds raises for
        # the case that breaks fitting, a training part without both classes.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(splitter.split(np.zeros((len(y), 1)), y, groups))


def _two_way_folds(
    y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    mammography_patients = _codes(groups[:, 1])
    mammography_fold = np.empty(len(y), dtype=np.intp)
    for fold, (_, test) in enumerate(
        _stratified_group_folds(y, mammography_patients, n_splits, random_state)
    ):
        mammography_fold[test] = fold

    # Each ultrasound patient joins the fold that contains most of its pairs' mammograms, so that
    # as many pairs as possible have both patients in one fold. Ties go to the lowest fold.
    ultrasound_patients = _codes(groups[:, 0])
    votes = np.zeros((ultrasound_patients.max() + 1, n_splits), dtype=np.intp)
    np.add.at(votes, (ultrasound_patients, mammography_fold), 1)
    ultrasound_fold = np.argmax(votes, axis=1)[ultrasound_patients]

    folds = []
    for fold in range(n_splits):
        test = np.flatnonzero((ultrasound_fold == fold) & (mammography_fold == fold))
        train = np.flatnonzero((ultrasound_fold != fold) & (mammography_fold != fold))
        folds.append((train, test))
    n_untested = len(y) - sum(len(test) for _, test in folds)
    logger.debug(
        "the patient graph is too connected for component folds; two-way blocked folds leave "
        "%d of %d pairs without an out-of-fold prediction",
        n_untested,
        len(y),
    )
    return folds


def _check_folds(y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> None:
    n_splits = len(folds)
    for index, (train, test) in enumerate(folds):
        if len(test) == 0:
            raise ValueError(
                f"fold {index} of {n_splits} received no test samples; the patient groups are "
                f"too few or too unequal in size for {n_splits} folds, lower cv"
            )
        if len(np.unique(y[train])) < 2:
            raise ValueError(
                f"the training part of fold {index} of {n_splits} contains only class "
                f"{int(y[train][0]) if len(train) else 'none'}; too few patient groups of the "
                f"other class, lower cv"
            )


def grouped_folds(
    y: np.ndarray,
    groups: np.ndarray | None,
    n_splits: int,
    random_state: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split samples into stratified folds that never put one patient on both sides.

    Parameters
    ----------
    y : numpy.ndarray of int, shape (n_samples,)
        Encoded binary labels.
    groups : None or numpy.ndarray of shape (n_samples,) or (n_samples, 2)
        None makes every sample its own group. A 1-D array is the patient per sample. Two
        columns are (ultrasound patient, mammography patient) per pair, see the module notes.
    n_splits : int
        Number of folds, at least 2.
    random_state : int or None
        Seed for the order in which groups are dealt to folds.

    Returns
    -------
    list of (train_indices, test_indices)
        No patient appears in both parts of one fold. The test parts are disjoint; they cover
        every sample except with two-way blocked folds, which test no pair whose two patients
        fall in different folds.

    Raises
    ------
    ValueError
        If there are fewer patient groups than folds, or a fold lacks test samples or a class in
        its training part.
    """
    y = np.asarray(y)
    if groups is None:
        folds = _stratified_group_folds(y, np.arange(len(y)), n_splits, random_state)
    elif np.ndim(groups) == 1:
        folds = _stratified_group_folds(y, _codes(groups), n_splits, random_state)
    else:
        components = bipartite_components(groups)
        n_components = int(components.max()) + 1 if len(components) else 0
        largest_share = np.bincount(components).max() / len(components) if n_components else 1.0
        if n_components >= n_splits and largest_share <= _MAX_COMPONENT_SHARE:
            folds = _stratified_group_folds(y, components, n_splits, random_state)
        else:
            logger.debug(
                "the largest of %d connected patient groups contains %.0f%% of the pairs",
                n_components,
                100 * largest_share,
            )
            folds = _two_way_folds(y, np.asarray(groups), n_splits, random_state)
    _check_folds(y, folds)
    return folds
