"""Stage-2 ensembles of MPM-MU: stacking over fused features, late fusion, and their storage.

The stacking ensemble exposes each base learner's probability (its vote) beside the
meta-learner's output. Every cross-validation inside it is grouped by patient, by both patients
for (mammogram, ultrasound) pairs.
"""

from __future__ import annotations

from mpmmu.ensemble.folds import bipartite_components, check_groups, grouped_folds
from mpmmu.ensemble.fusion import LateFusion, fuse_features, logit, make_fused_mlp_head
from mpmmu.ensemble.stacking import BASE_LEARNERS, VOTE_NAMES, StackingEnsemble
from mpmmu.ensemble.trusted import SKOPS_TRUSTED_TYPES, load_ensemble, save_ensemble

__all__ = [
    "BASE_LEARNERS",
    "SKOPS_TRUSTED_TYPES",
    "VOTE_NAMES",
    "LateFusion",
    "StackingEnsemble",
    "bipartite_components",
    "check_groups",
    "fuse_features",
    "grouped_folds",
    "load_ensemble",
    "logit",
    "make_fused_mlp_head",
    "save_ensemble",
]
