"""Save and load fitted stage-2 ensembles with skops, trusting only reviewed types.

``skops.io.load`` rebuilds only the types it trusts. Its defaults cover builtins, NumPy arrays and
scikit-learn's public estimators. :data:`SKOPS_TRUSTED_TYPES` adds the few other types that a
fitted :class:`~mpmmu.train.stage2.Stage2Result` contains, each reviewed as code that only
stores arrays and parameters. A file that names any other type is rejected before it is loaded.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import skops.io as sio

from mpmmu.errors import BundleError

logger = logging.getLogger(__name__)

SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    # mpmmu's own fitted objects: parameters, fitted estimators, arrays and dicts of floats.
    "mpmmu.ensemble.fusion.LateFusion",
    "mpmmu.ensemble.stacking.StackingEnsemble",
    "mpmmu.train.stage2.Stage2Result",
    # scikit-learn 1.9 internals that skops 0.16 does not trust by default: the fitted calibrator
    # pair of CalibratedClassifierCV, its Platt-scaling map, and the Cython tree of every
    # decision tree in the random forest and Extra-Trees.
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
)
"""Type names, beyond skops's defaults, that :func:`load_ensemble` accepts."""


def save_ensemble(obj: Any, path: str | os.PathLike) -> None:
    """Write a fitted ensemble (or a Stage2Result) to a skops file.

    Parameters
    ----------
    obj : object
        The fitted object.
    path : str or os.PathLike
        Destination, conventionally ending in ".skops".

    Raises
    ------
    BundleError
        If the object contains a type outside :data:`SKOPS_TRUSTED_TYPES`, which
        :func:`load_ensemble` would reject; nothing is written then.
    """
    data = sio.dumps(obj)
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(SKOPS_TRUSTED_TYPES))
    if untrusted:
        raise BundleError(
            f"cannot save {type(obj).__name__}: it contains types that are not in "
            f"SKOPS_TRUSTED_TYPES, so it could not be loaded: {untrusted}; review them and "
            f"add them to mpmmu.ensemble.trusted"
        )
    with open(path, "wb") as file:
        file.write(data)
    logger.info("saved %s to %s", type(obj).__name__, os.fspath(path))


def load_ensemble(path: str | os.PathLike) -> Any:
    """Load a skops file written by :func:`save_ensemble`, trusting only reviewed types.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    object
        The fitted object.

    Raises
    ------
    BundleError
        If the file is missing or unreadable, or names a type outside
        :data:`SKOPS_TRUSTED_TYPES` and skops's defaults.
    """
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (OSError, ValueError) as error:
        raise BundleError(
            f"cannot read the ensemble file {os.fspath(path)}: {error}; rebuild the bundle"
        ) from error

    unreviewed = sorted(set(untrusted) - set(SKOPS_TRUSTED_TYPES))
    if unreviewed:
        raise BundleError(
            f"the ensemble file {os.fspath(path)} contains types that are not reviewed in "
            f"SKOPS_TRUSTED_TYPES: {unreviewed}; it was not written by this version of mpmmu or "
            f"was altered, so it was not loaded"
        )
    return sio.load(path, trusted=list(SKOPS_TRUSTED_TYPES))
