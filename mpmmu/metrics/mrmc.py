"""Multi-reader multi-case (MRMC) ROC analysis of AUC differences between modalities.

Every reader rates every case in every modality (a fully crossed, factorial design). The figure
of merit is each reader's trapezoidal (Wilcoxon) AUC in each modality. Two equivalent families of
analyses are offered:

- Obuchowski-Rockette (OR): a modality x reader ANOVA of the AUCs whose error covariances
  (``Var(error)``, ``Cov1`` same reader, ``Cov2`` same modality, ``Cov3`` neither) are estimated
  by the case jackknife or by DeLong's structural components. Hillis's denominator degrees of
  freedom are used for random readers and random cases.
- Dorfman-Berbaum-Metz (DBM): a modality x reader x case ANOVA of jackknife pseudovalues. With
  Hillis's degrees of freedom it gives the same F, p and intervals as OR with jackknife covariances.

Each family reports three analyses: random readers and random cases (results generalise to both
populations), fixed readers (only these readers), and fixed cases (only these cases).

References
----------
Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for multiple readers
and multiple tests: an ANOVA approach with dependent observations. Commun Stat Simul Comput 24.

Dorfman DD, Berbaum KS, Metz CE (1992). Receiver operating characteristic rating analysis:
generalization to the population of readers and patients with the jackknife method. Invest
Radiol 27:723-731.

Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple observer
ROC analysis. Stat Med 26:596-619.

Hillis SL, Berbaum KS, Metz CE (2008). Recent developments in the Dorfman-Berbaum-Metz procedure
for multireader ROC study analysis. Acad Radiol 15:647-661.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from mpmmu.errors import MrmcDataError
from mpmmu.metrics.mrmc_data import MrmcData, check_design
from mpmmu.metrics.roc import structural_components

__all__ = [
    "Comparison",
    "DBMResult",
    "ModalityEstimate",
    "MrmcData",
    "MrmcTest",
    "ORResult",
    "auc_covariance",
    "dbm_analysis",
    "jackknife_aucs",
    "or_analysis",
    "pseudovalues",
    "reader_aucs",
]

logger = logging.getLogger(__name__)

CovarianceMethod = Literal["jackknife", "delong"]
AnalysisName = Literal["random_readers_random_cases", "fixed_readers", "fixed_cases"]


# ---------------------------------------------------------------------------------------------
# Figures of merit and their covariance


def reader_aucs(data: MrmcData) -> np.ndarray:
    """Compute each reader's trapezoidal AUC in each modality, shape (n_modalities, n_readers)."""
    t, r, c = data.ratings.shape
    auc, _, _ = structural_components(data.truth, data.ratings.reshape(t * r, c))
    return auc.reshape(t, r)


def jackknife_aucs(data: MrmcData) -> tuple[np.ndarray, np.ndarray]:
    """Compute the AUCs and the leave-one-case-out AUCs.

    Returns
    -------
    auc : numpy.ndarray, shape (n_modalities, n_readers)
    loo : numpy.ndarray, shape (n_modalities, n_readers, n_cases)
        AUC with case k removed. Removing an abnormal case with structural component ``v10``
        gives ``(n1 * auc - v10) / (n1 - 1)``; a normal one ``(n0 * auc - v01) / (n0 - 1)``.
    """
    t, r, c = data.ratings.shape
    auc, v10, v01 = structural_components(data.truth, data.ratings.reshape(t * r, c))
    abnormal = data.truth == 1
    n1, n0 = int(abnormal.sum()), c - int(abnormal.sum())
    loo = np.empty((t * r, c))
    loo[:, abnormal] = (n1 * auc[:, None] - v10) / (n1 - 1)
    loo[:, ~abnormal] = (n0 * auc[:, None] - v01) / (n0 - 1)
    return auc.reshape(t, r), loo.reshape(t, r, c)


def auc_covariance(
    data: MrmcData, method: CovarianceMethod = "jackknife"
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate the AUCs and the covariance matrix of their errors over cases.

    Parameters
    ----------
    data : MrmcData
    method : {"jackknife", "delong"}
        "jackknife": leave one case out over all cases, ``(c - 1) / c`` times the sum of outer
        products of deviations. "delong": ``S10 / n1 + S01 / n0`` from the structural components
        with n - 1 denominators.

    Returns
    -------
    auc : numpy.ndarray, shape (n_modalities, n_readers)
    covariance : numpy.ndarray, shape (n_modalities, n_readers, n_modalities, n_readers)
    """
    t, r, c = data.ratings.shape
    if method == "jackknife":
        auc, loo = jackknife_aucs(data)
        deviations = loo.reshape(t * r, c) - loo.reshape(t * r, c).mean(axis=1, keepdims=True)
        covariance = (c - 1) / c * deviations @ deviations.T
    elif method == "delong":
        _, v10, v01 = structural_components(data.truth, data.ratings.reshape(t * r, c))
        auc = v10.mean(axis=1).reshape(t, r)
        covariance = np.cov(v10, ddof=1) / v10.shape[1] + np.cov(v01, ddof=1) / v01.shape[1]
    else:
        raise MrmcDataError(f"covariance must be 'jackknife' or 'delong', got {method!r}")
    return auc, covariance.reshape(t, r, t, r)


def _or_error_covariances(covariance: np.ndarray) -> tuple[float, float, float, float]:
    """Average an AUC error covariance (t, r, t, r) into Var(error), Cov1, Cov2 and Cov3."""
    t, r = covariance.shape[:2]
    same_modality = np.eye(t, dtype=bool)[:, None, :, None]
    same_reader = np.eye(r, dtype=bool)[None, :, None, :]
    var_error = covariance[same_modality & same_reader].mean()
    cov1 = covariance[~same_modality & same_reader].mean()
    cov2 = covariance[same_modality & ~same_reader].mean()
    cov3 = covariance[~same_modality & ~same_reader].mean()
    return float(var_error), float(cov1), float(cov2), float(cov3)


def _two_way_mean_squares(auc: np.ndarray) -> tuple[float, float, float]:
    """Return MS(T), MS(R) and MS(TR) of a modality x reader table without replication."""
    t, r = auc.shape
    grand = auc.mean()
    modality_means = auc.mean(axis=1)
    reader_means = auc.mean(axis=0)
    ms_t = r * np.sum((modality_means - grand) ** 2) / (t - 1)
    ms_r = t * np.sum((reader_means - grand) ** 2) / (r - 1)
    interaction = auc - modality_means[:, None] - reader_means[None, :] + grand
    ms_tr = np.sum(interaction**2) / ((t - 1) * (r - 1))
    return float(ms_t), float(ms_r), float(ms_tr)


def _satterthwaite_df(error_term: float, mean_square: float, df: float) -> float:
    """Degrees of freedom of ``error_term`` when only ``mean_square`` (with ``df``) is random."""
    if mean_square <= 0.0:
        return math.inf
    return error_term**2 / (mean_square**2 / df)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Comparison:
    """One pairwise difference of reader-averaged AUCs, ``modality_a - modality_b``.

    ``df`` is ``inf`` when the reference distribution is normal (z), otherwise Student's t.
    """

    modality_a: str
    modality_b: str
    difference: float
    std_error: float
    df: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ModalityEstimate:
    """Reader-averaged AUC of one modality with its confidence interval (``df`` inf means z)."""

    modality: str
    auc: float
    std_error: float
    df: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MrmcTest:
    """Global test of equal modality AUCs plus all pairwise differences for one analysis.

    ``distribution`` is "F" (``statistic`` on ``ndf`` and ``ddf`` degrees of freedom) or "chi2"
    (``statistic`` on ``ndf`` degrees of freedom, ``ddf`` inf). ``error_term`` is the
    denominator of the F statistic (for chi2, of ``statistic / ndf``).
    """

    analysis: AnalysisName
    statistic: float
    distribution: Literal["F", "chi2"]
    ndf: float
    ddf: float
    p_value: float
    error_term: float
    comparisons: tuple[Comparison, ...]
    modality_estimates: tuple[ModalityEstimate, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return plain Python values, with infinite degrees of freedom as None (JSON-safe)."""
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _analysis_dict(result: Any, method: str) -> dict[str, Any]:
    """Return the JSON-ready fields of an OR or DBM result, with its three tests nested by name."""
    tests = ("random", "fixed_readers", "fixed_cases")
    return _json_safe(
        {
            "method": method,
            **{key: value for key, value in asdict(result).items() if key not in tests},
            "modality_auc": result.modality_auc,
            "random_readers_random_cases": result.random.to_dict(),
            "fixed_readers": result.fixed_readers.to_dict(),
            "fixed_cases": result.fixed_cases.to_dict(),
        }
    )


def _comparisons(
    modalities: Sequence[str], means: np.ndarray, std_error: float, df: float, alpha: float
) -> tuple[Comparison, ...]:
    """Compare every pair of modalities with one standard error (t on df, or z if df is inf)."""
    quantile = _quantile(alpha, df)
    results = []
    for a, b in itertools.combinations(range(len(modalities)), 2):
        difference = float(means[a] - means[b])
        if std_error > 0:
            statistic = difference / std_error
        elif difference == 0:
            statistic = math.nan
        else:
            statistic = math.copysign(math.inf, difference)
        results.append(
            Comparison(
                modality_a=modalities[a],
                modality_b=modalities[b],
                difference=difference,
                std_error=std_error,
                df=df,
                statistic=statistic,
                p_value=_two_sided_p(statistic, df),
                ci_low=difference - quantile * std_error,
                ci_high=difference + quantile * std_error,
            )
        )
    return tuple(results)


def _quantile(alpha: float, df: float) -> float:
    if math.isinf(df):
        return float(stats.norm.ppf(1.0 - alpha / 2.0))
    return float(stats.t.ppf(1.0 - alpha / 2.0, df))


def _two_sided_p(statistic: float, df: float) -> float:
    if math.isnan(statistic):
        return math.nan
    if math.isinf(df):
        return float(2.0 * stats.norm.sf(abs(statistic)))
    return float(2.0 * stats.t.sf(abs(statistic), df))


def _estimate(
    modality: str, auc: float, variance: float, df: float, alpha: float
) -> ModalityEstimate:
    std_error = math.sqrt(max(variance, 0.0))
    half_width = _quantile(alpha, df) * std_error
    return ModalityEstimate(modality, auc, std_error, df, auc - half_width, auc + half_width)


def _f_test(
    analysis: AnalysisName, mean_square: float, error_term: float, ndf: float, ddf: float
) -> tuple[float, float]:
    """Return F and its upper-tail p-value, or NaN when the error term is not positive."""
    if error_term <= 0.0:
        logger.warning("%s: error term %.3g is not positive; F is undefined", analysis, error_term)
        return math.nan, math.nan
    statistic = mean_square / error_term
    if math.isinf(ddf):
        return statistic, float(stats.chi2.sf(statistic * ndf, ndf))
    return statistic, float(stats.f.sf(statistic, ndf, ddf))


@dataclass(frozen=True)
class ORResult:
    """Obuchowski-Rockette analysis of a reader study.

    Attributes
    ----------
    auc : numpy.ndarray, shape (n_modalities, n_readers)
        Per-reader trapezoidal AUCs.
    ms_t, ms_r, ms_tr : float
        Mean squares of the modality x reader ANOVA of the AUCs.
    var_error, cov1, cov2, cov3 : float
        Error variance and covariances: same reader across modalities (Cov1), same modality
        across readers (Cov2), different modality and reader (Cov3).
    var_r, var_tr : float
        ANOVA estimates of the reader and modality x reader variance components (can be negative).
    random, fixed_readers, fixed_cases : MrmcTest
        The three analyses: random readers and cases (F, Hillis ddf), fixed readers (chi-square,
        z intervals), fixed cases (F on (t - 1, (t - 1)(r - 1)) df).
    """

    readers: tuple[str, ...]
    modalities: tuple[str, ...]
    n_normal: int
    n_abnormal: int
    covariance_method: CovarianceMethod
    alpha: float
    auc: np.ndarray
    ms_t: float
    ms_r: float
    ms_tr: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_r: float
    var_tr: float
    random: MrmcTest
    fixed_readers: MrmcTest
    fixed_cases: MrmcTest

    @property
    def modality_auc(self) -> np.ndarray:
        """Reader-averaged AUC of each modality, shape (n_modalities,)."""
        return self.auc.mean(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Return plain Python values for JSON; infinite degrees of freedom become None."""
        return _analysis_dict(self, "OR")


def or_analysis(
    data: MrmcData, covariance: CovarianceMethod = "jackknife", alpha: float = 0.05
) -> ORResult:
    """Run the Obuchowski-Rockette analysis with Hillis's degrees of freedom.

    Parameters
    ----------
    data : MrmcData
        A complete design with at least 2 modalities, 2 readers and 2 cases of each truth.
    covariance : {"jackknife", "delong"}
        How to estimate the AUC error covariances.
    alpha : float
        Two-sided error rate of all intervals.

    Returns
    -------
    ORResult

    Notes
    -----
    With t modalities and r readers, and ``max(Cov2 - Cov3, 0)`` written ``C``:

    - random readers and cases: ``F = MS(T) / (MS(TR) + r C)`` on ``t - 1`` and
      ``ddf = (MS(TR) + r C)^2 / (MS(TR)^2 / ((t - 1)(r - 1)))``; a difference has standard error
      ``sqrt(2 / r (MS(TR) + r C))``.
    - fixed readers: ``X2 = (t - 1) MS(T) / (Var(error) - Cov1 + (r - 1) C)`` on ``t - 1`` df;
      a difference has standard error ``sqrt(2 / r (Var(error) - Cov1 + (r - 1) C))``, z interval.
    - fixed cases: ``F = MS(T) / MS(TR)`` on ``t - 1`` and ``(t - 1)(r - 1)``.

    Single-modality intervals use that modality's reader mean square and its own Var(error)
    and Cov2, as in Hillis's OR-DBM MRMC program.
    """
    if not 0.0 < alpha < 1.0:
        raise MrmcDataError(f"alpha must lie in (0, 1), got {alpha}")
    check_design(data)
    auc, cov = auc_covariance(data, covariance)
    t, r = auc.shape
    means = auc.mean(axis=1)
    ms_t, ms_r, ms_tr = _two_way_mean_squares(auc)
    var_error, cov1, cov2, cov3 = _or_error_covariances(cov)
    cov_excess = max(cov2 - cov3, 0.0)

    # Random readers and random cases.
    error_term = ms_tr + r * cov_excess
    ddf = _satterthwaite_df(error_term, ms_tr, (t - 1) * (r - 1))
    statistic, p_value = _f_test("random_readers_random_cases", ms_t, error_term, t - 1, ddf)
    estimates = []
    for i, modality in enumerate(data.modalities):
        ms_r_i = float(np.var(auc[i], ddof=1))
        cov2_i = float(cov[i, :, i, :][~np.eye(r, dtype=bool)].mean())
        term = ms_r_i + r * max(cov2_i, 0.0)
        estimates.append(
            _estimate(
                modality, float(means[i]), term / r, _satterthwaite_df(term, ms_r_i, r - 1), alpha
            )
        )
    random = MrmcTest(
        analysis="random_readers_random_cases",
        statistic=statistic,
        distribution="F",
        ndf=t - 1,
        ddf=ddf,
        p_value=p_value,
        error_term=error_term,
        comparisons=_comparisons(
            data.modalities, means, math.sqrt(2.0 / r * error_term), ddf, alpha
        ),
        modality_estimates=tuple(estimates),
    )

    # Fixed readers, random cases: the chi-square statistic is (t - 1) times this F-like ratio.
    error_term = var_error - cov1 + (r - 1) * cov_excess
    statistic, p_value = _f_test("fixed_readers", ms_t, error_term, t - 1, math.inf)
    estimates = []
    for i, modality in enumerate(data.modalities):
        block = cov[i, :, i, :]
        var_i = float(np.diag(block).mean())
        cov2_i = float(block[~np.eye(r, dtype=bool)].mean())
        estimates.append(
            _estimate(
                modality, float(means[i]), (var_i + (r - 1) * max(cov2_i, 0.0)) / r, math.inf, alpha
            )
        )
    fixed_readers = MrmcTest(
        analysis="fixed_readers",
        statistic=statistic * (t - 1),
        distribution="chi2",
        ndf=t - 1,
        ddf=math.inf,
        p_value=p_value,
        error_term=error_term,
        comparisons=_comparisons(
            data.modalities, means, math.sqrt(max(2.0 / r * error_term, 0.0)), math.inf, alpha
        ),
        modality_estimates=tuple(estimates),
    )

    # Random readers, fixed cases: a modality x reader repeated-measures ANOVA of the AUCs.
    ddf = float((t - 1) * (r - 1))
    statistic, p_value = _f_test("fixed_cases", ms_t, ms_tr, t - 1, ddf)
    estimates = [
        _estimate(modality, float(means[i]), float(np.var(auc[i], ddof=1)) / r, float(r - 1), alpha)
        for i, modality in enumerate(data.modalities)
    ]
    fixed_cases = MrmcTest(
        analysis="fixed_cases",
        statistic=statistic,
        distribution="F",
        ndf=t - 1,
        ddf=ddf,
        p_value=p_value,
        error_term=ms_tr,
        comparisons=_comparisons(data.modalities, means, math.sqrt(2.0 / r * ms_tr), ddf, alpha),
        modality_estimates=tuple(estimates),
    )

    return ORResult(
        readers=data.readers,
        modalities=data.modalities,
        n_normal=data.n_normal,
        n_abnormal=data.n_abnormal,
        covariance_method=covariance,
        alpha=alpha,
        auc=auc,
        ms_t=ms_t,
        ms_r=ms_r,
        ms_tr=ms_tr,
        var_error=var_error,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        var_r=(ms_r - ms_tr) / t - cov1 + cov3,
        var_tr=ms_tr - (var_error - cov1 - cov2 + cov3),
        random=random,
        fixed_readers=fixed_readers,
        fixed_cases=fixed_cases,
    )


# ---------------------------------------------------------------------------------------------
# Dorfman-Berbaum-Metz


def pseudovalues(data: MrmcData) -> np.ndarray:
    """Compute jackknife pseudovalues ``c * auc - (c - 1) * auc_without_case``, shape (t, r, c).

    For the trapezoidal AUC the pseudovalues of one reader and modality average to its AUC, so
    no normalisation is needed.
    """
    auc, loo = jackknife_aucs(data)
    c = loo.shape[2]
    return c * auc[:, :, None] - (c - 1) * loo


def _three_way_mean_squares(values: np.ndarray) -> dict[str, float]:
    """Mean squares of a modality x reader x case table without replication."""
    t, r, c = values.shape
    grand = values.mean()
    m_t = values.mean(axis=(1, 2))
    m_r = values.mean(axis=(0, 2))
    m_c = values.mean(axis=(0, 1))
    m_tr = values.mean(axis=2)
    m_tc = values.mean(axis=1)
    m_rc = values.mean(axis=0)
    residual = (
        values
        - m_tr[:, :, None]
        - m_tc[:, None, :]
        - m_rc[None, :, :]
        + m_t[:, None, None]
        + m_r[None, :, None]
        + m_c[None, None, :]
        - grand
    )
    return {
        "T": float(r * c * np.sum((m_t - grand) ** 2) / (t - 1)),
        "R": float(t * c * np.sum((m_r - grand) ** 2) / (r - 1)),
        "C": float(t * r * np.sum((m_c - grand) ** 2) / (c - 1)),
        "TR": float(
            c * np.sum((m_tr - m_t[:, None] - m_r[None, :] + grand) ** 2) / ((t - 1) * (r - 1))
        ),
        "TC": float(
            r * np.sum((m_tc - m_t[:, None] - m_c[None, :] + grand) ** 2) / ((t - 1) * (c - 1))
        ),
        "RC": float(
            t * np.sum((m_rc - m_r[:, None] - m_c[None, :] + grand) ** 2) / ((r - 1) * (c - 1))
        ),
        "TRC": float(np.sum(residual**2) / ((t - 1) * (r - 1) * (c - 1))),
    }


def _reader_case_mean_squares(values: np.ndarray) -> tuple[float, float, float]:
    """MS(R), MS(C) and MS(RC) of one modality's reader x case table of pseudovalues."""
    r, c = values.shape
    grand = values.mean()
    m_r = values.mean(axis=1)
    m_c = values.mean(axis=0)
    ms_r = c * np.sum((m_r - grand) ** 2) / (r - 1)
    ms_c = r * np.sum((m_c - grand) ** 2) / (c - 1)
    ms_rc = np.sum((values - m_r[:, None] - m_c[None, :] + grand) ** 2) / ((r - 1) * (c - 1))
    return float(ms_r), float(ms_c), float(ms_rc)


@dataclass(frozen=True)
class DBMResult:
    """Dorfman-Berbaum-Metz analysis of a reader study.

    Attributes
    ----------
    auc : numpy.ndarray, shape (n_modalities, n_readers)
        Per-reader trapezoidal AUCs (the pseudovalue means).
    mean_squares : dict
        "T", "R", "C", "TR", "TC", "RC", "TRC" of the pseudovalue ANOVA.
    variance_components : dict
        ANOVA estimates "R", "C", "TR", "TC", "RC" and "TRC+error" (can be negative).
    random, fixed_readers, fixed_cases : MrmcTest
        Random readers and cases use Hillis's ddf and equal OR with jackknife covariances.
        Fixed readers use ``F = MS(T) / MS(TC)`` on (t - 1, (t - 1)(c - 1)) df. Fixed cases
        use ``F = MS(T) / MS(TR)`` on (t - 1, (t - 1)(r - 1)) df.
    """

    readers: tuple[str, ...]
    modalities: tuple[str, ...]
    n_normal: int
    n_abnormal: int
    alpha: float
    auc: np.ndarray
    mean_squares: dict[str, float]
    variance_components: dict[str, float]
    random: MrmcTest
    fixed_readers: MrmcTest
    fixed_cases: MrmcTest

    @property
    def modality_auc(self) -> np.ndarray:
        """Reader-averaged AUC of each modality, shape (n_modalities,)."""
        return self.auc.mean(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Return plain Python values for JSON; infinite degrees of freedom become None."""
        return _analysis_dict(self, "DBM")


def dbm_analysis(data: MrmcData, alpha: float = 0.05) -> DBMResult:
    """Run the Dorfman-Berbaum-Metz analysis of jackknife pseudovalues with Hillis's ddf.

    Parameters
    ----------
    data : MrmcData
        A complete design with at least 2 modalities, 2 readers and 2 cases of each truth.
    alpha : float
        Two-sided error rate of all intervals.

    Returns
    -------
    DBMResult

    Notes
    -----
    With ``D = MS(TR) + max(MS(TC) - MS(TRC), 0)``, random readers and cases use ``F = MS(T) / D``
    on ``t - 1`` and ``D^2 / (MS(TR)^2 / ((t - 1)(r - 1)))`` df, and a difference has standard
    error ``sqrt(2 D / (r c))``. Single-modality intervals come from that modality's reader x case
    ANOVA, as in JAFROC 4.2.1.
    """
    if not 0.0 < alpha < 1.0:
        raise MrmcDataError(f"alpha must lie in (0, 1), got {alpha}")
    check_design(data)
    values = pseudovalues(data)
    t, r, c = values.shape
    auc = values.mean(axis=2)
    means = auc.mean(axis=1)
    ms = _three_way_mean_squares(values)
    per_modality = [_reader_case_mean_squares(values[i]) for i in range(t)]

    # Random readers and random cases.
    error_term = ms["TR"] + max(ms["TC"] - ms["TRC"], 0.0)
    ddf = _satterthwaite_df(error_term, ms["TR"], (t - 1) * (r - 1))
    statistic, p_value = _f_test("random_readers_random_cases", ms["T"], error_term, t - 1, ddf)
    estimates = []
    for i, modality in enumerate(data.modalities):
        ms_r_i, ms_c_i, ms_rc_i = per_modality[i]
        term = ms_r_i + max(ms_c_i - ms_rc_i, 0.0)
        estimates.append(
            _estimate(
                modality,
                float(means[i]),
                term / (r * c),
                _satterthwaite_df(term, ms_r_i, r - 1),
                alpha,
            )
        )
    random = MrmcTest(
        analysis="random_readers_random_cases",
        statistic=statistic,
        distribution="F",
        ndf=t - 1,
        ddf=ddf,
        p_value=p_value,
        error_term=error_term,
        comparisons=_comparisons(
            data.modalities, means, math.sqrt(2.0 * error_term / (r * c)), ddf, alpha
        ),
        modality_estimates=tuple(estimates),
    )

    # Fixed readers, random cases.
    ddf = float((t - 1) * (c - 1))
    statistic, p_value = _f_test("fixed_readers", ms["T"], ms["TC"], t - 1, ddf)
    fixed_readers = MrmcTest(
        analysis="fixed_readers",
        statistic=statistic,
        distribution="F",
        ndf=t - 1,
        ddf=ddf,
        p_value=p_value,
        error_term=ms["TC"],
        comparisons=_comparisons(
            data.modalities, means, math.sqrt(2.0 * ms["TC"] / (r * c)), ddf, alpha
        ),
        modality_estimates=tuple(
            _estimate(modality, float(means[i]), per_modality[i][1] / (r * c), float(c - 1), alpha)
            for i, modality in enumerate(data.modalities)
        ),
    )

    # Random readers, fixed cases.
    ddf = float((t - 1) * (r - 1))
    statistic, p_value = _f_test("fixed_cases", ms["T"], ms["TR"], t - 1, ddf)
    fixed_cases = MrmcTest(
        analysis="fixed_cases",
        statistic=statistic,
        distribution="F",
        ndf=t - 1,
        ddf=ddf,
        p_value=p_value,
        error_term=ms["TR"],
        comparisons=_comparisons(
            data.modalities, means, math.sqrt(2.0 * ms["TR"] / (r * c)), ddf, alpha
        ),
        modality_estimates=tuple(
            _estimate(modality, float(means[i]), per_modality[i][0] / (r * c), float(r - 1), alpha)
            for i, modality in enumerate(data.modalities)
        ),
    )

    components = {
        "R": (ms["R"] - ms["TR"] - ms["RC"] + ms["TRC"]) / (t * c),
        "C": (ms["C"] - ms["TC"] - ms["RC"] + ms["TRC"]) / (t * r),
        "TR": (ms["TR"] - ms["TRC"]) / c,
        "TC": (ms["TC"] - ms["TRC"]) / r,
        "RC": (ms["RC"] - ms["TRC"]) / t,
        "TRC+error": ms["TRC"],
    }
    return DBMResult(
        readers=data.readers,
        modalities=data.modalities,
        n_normal=data.n_normal,
        n_abnormal=data.n_abnormal,
        alpha=alpha,
        auc=auc,
        mean_squares=ms,
        variance_components=components,
        random=random,
        fixed_readers=fixed_readers,
        fixed_cases=fixed_cases,
    )
