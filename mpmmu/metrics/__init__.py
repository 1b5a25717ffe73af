"""Diagnostic accuracy statistics: ROC AUC with DeLong and bootstrap intervals, operating points,
calibration, and multi-reader multi-case (MRMC) analysis of reader studies."""

from __future__ import annotations

from mpmmu.metrics.calibration import CalibrationCurve, brier_score, calibration_curve
from mpmmu.metrics.mrmc import (
    Comparison,
    DBMResult,
    ModalityEstimate,
    MrmcData,
    MrmcTest,
    ORResult,
    dbm_analysis,
    or_analysis,
    reader_aucs,
)
from mpmmu.metrics.mrmc_io import (
    read_imrmc,
    read_long_csv,
    read_lrc,
    write_imrmc,
    write_long_csv,
    write_rjafroc_csv,
)
from mpmmu.metrics.roc import (
    BootstrapResult,
    DeLongResult,
    DeLongTest,
    RocPoints,
    ThresholdMetrics,
    bootstrap_auc_ci,
    choose_threshold,
    delong_ci,
    delong_covariance,
    delong_test,
    roc_auc,
    roc_curve_points,
    threshold_metrics,
)

__all__ = [
    "BootstrapResult",
    "CalibrationCurve",
    "Comparison",
    "DBMResult",
    "DeLongResult",
    "DeLongTest",
    "ModalityEstimate",
    "MrmcData",
    "MrmcTest",
    "ORResult",
    "RocPoints",
    "ThresholdMetrics",
    "bootstrap_auc_ci",
    "brier_score",
    "calibration_curve",
    "choose_threshold",
    "dbm_analysis",
    "delong_ci",
    "delong_covariance",
    "delong_test",
    "or_analysis",
    "read_imrmc",
    "read_long_csv",
    "read_lrc",
    "reader_aucs",
    "roc_auc",
    "roc_curve_points",
    "threshold_metrics",
    "write_imrmc",
    "write_long_csv",
    "write_rjafroc_csv",
]
