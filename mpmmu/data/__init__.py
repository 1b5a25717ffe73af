"""Case manifests, data set builders, patient-level splits, pseudo-pairing and synthetic data.

A manifest is a CSV with one case per row (see :mod:`mpmmu.data.manifest`). The builders turn
BUS-BRA (ultrasound) and mini-MIAS (mammography) into manifests; :func:`patient_split` and
:func:`patient_kfold` split them by patient; :func:`make_pseudo_pairs` joins the two by label
inside each split, since no public data set pairs the modalities.
"""

from __future__ import annotations

from mpmmu.data.bus_bra import build_bus_bra, build_bus_bra_manifest, bus_bra_author_kfold, load_bus_bra_folds
from mpmmu.data.manifest import (
    LABELS,
    MANIFEST_COLUMNS,
    PSEUDO_PAIR_SOURCE,
    SPLITS,
    BuildResult,
    CaseRow,
    format_roi,
    manifest_sha256,
    parse_roi,
    read_manifest,
    validate_manifest,
    validate_rows,
    write_manifest,
)
from mpmmu.data.mini_mias import (
    build_mini_mias,
    build_mini_mias_manifest,
    mias_laterality,
    mias_roi,
    mias_woman,
    parse_info,
)
from mpmmu.data.pairing import make_pseudo_pairs, pair_groups, split_pair_patient
from mpmmu.data.splits import patient_kfold, patient_split, patient_strata
from mpmmu.data.synthetic import (
    SyntheticCase,
    make_synthetic_case,
    make_synthetic_mammogram,
    make_synthetic_ultrasound,
    write_synthetic_dataset,
)

__all__ = [
    "LABELS",
    "MANIFEST_COLUMNS",
    "PSEUDO_PAIR_SOURCE",
    "SPLITS",
    "BuildResult",
    "CaseRow",
    "SyntheticCase",
    "build_bus_bra",
    "build_bus_bra_manifest",
    "build_mini_mias",
    "build_mini_mias_manifest",
    "bus_bra_author_kfold",
    "format_roi",
    "load_bus_bra_folds",
    "make_pseudo_pairs",
    "make_synthetic_case",
    "make_synthetic_mammogram",
    "make_synthetic_ultrasound",
    "manifest_sha256",
    "mias_laterality",
    "mias_roi",
    "mias_woman",
    "pair_groups",
    "parse_info",
    "parse_roi",
    "patient_kfold",
    "patient_split",
    "patient_strata",
    "read_manifest",
    "split_pair_patient",
    "validate_manifest",
    "validate_rows",
    "write_manifest",
]
