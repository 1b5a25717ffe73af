"""Tests of the OR and DBM MRMC analyses against published program output.

Reference numbers: Van Dyke et al. (2 modalities, 5 readers, 114 cases) and FedRoc (5 modalities,
4 readers, 200 cases) as analysed by Hillis's OR-DBM MRMC 2.51 (jackknife), MRMCaov (DeLong
covariances) and JAFROC 4.2.1 (DBM). Each published number is matched to half a unit in its last
printed digit.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mpmmu.errors import MrmcDataError
from mpmmu.metrics.mrmc import (
    MrmcData,
    auc_covariance,
    dbm_analysis,
    or_analysis,
    pseudovalues,
    reader_aucs,
)
from mpmmu.metrics.mrmc_io import read_long_csv
from mpmmu.metrics.roc import delong_covariance


def assert_published(value: float, published: str) -> None:
    """Assert ``value`` rounds to ``published``: within half a unit of its last printed digit."""
    decimals = len(published.split(".")[1]) if "." in published else 0
    tolerance = 0.5 * 10.0**-decimals * (1 + 1e-9)
    assert abs(value - float(published)) <= tolerance, (
        f"{value!r} does not round to published {published}"
    )


@pytest.fixture(scope="module")
def vandyke(mrmc_dir: Path) -> MrmcData:
    return read_long_csv(mrmc_dir / "vandyke" / "RJafroc_RocData.csv")


@pytest.fixture(scope="module")
def fedroc(mrmc_dir: Path) -> MrmcData:
    return read_long_csv(mrmc_dir / "fedroc" / "FedRoc_long.csv")


VANDYKE_AUC = [
    ["0.91964573", "0.85877617", "0.90386473", "0.97310789", "0.82979066"],
    ["0.94782609", "0.90531401", "0.92173913", "0.99935588", "0.92995169"],
]


def test_vandyke_reader_aucs(vandyke):
    auc = reader_aucs(vandyke)
    for i, row in enumerate(VANDYKE_AUC):
        for j, published in enumerate(row):
            assert_published(auc[i, j], published)


def test_vandyke_or_jackknife_components(vandyke):
    result = or_analysis(vandyke, covariance="jackknife")
    assert_published(result.modality_auc[0], "0.89703704")
    assert_published(result.modality_auc[1], "0.94083736")
    assert_published(result.modality_auc[0] - result.modality_auc[1], "-0.04380032")
    assert_published(result.ms_t, "0.004796171")
    assert_published(result.ms_r, "0.00383620")
    assert_published(result.ms_tr, "0.0005510306")
    assert_published(result.var_error, "0.0008022883")
    assert_published(result.cov1, "0.0003466137")
    assert_published(result.cov2, "0.0003440748")
    assert_published(result.cov3, "0.0002390284")
    assert_published(result.var_r, "0.00153500")
    assert_published(result.var_tr, "0.00020040")


def test_vandyke_or_jackknife_random_readers_cases(vandyke):
    test = or_analysis(vandyke, covariance="jackknife").random
    (comparison,) = test.comparisons
    assert_published(test.statistic, "4.456319")
    assert_published(test.ddf, "15.25967")
    assert_published(test.p_value, "0.05166569")
    assert_published(comparison.ci_low, "-0.0879594986")
    assert_published(comparison.ci_high, "0.0003588544")
    assert_published(comparison.std_error, "0.02075")
    assert test.ndf == 1


def test_vandyke_or_jackknife_single_modality_intervals(vandyke):
    estimates = or_analysis(vandyke, covariance="jackknife").random.modality_estimates
    assert_published(estimates[0].std_error, "0.03317360")
    assert_published(estimates[0].df, "12.74")
    assert_published(estimates[0].ci_low, "0.82522360")
    assert_published(estimates[0].ci_high, "0.96885048")
    assert_published(estimates[1].ci_low, "0.89413783")
    assert_published(estimates[1].ci_high, "0.98753689")


def test_vandyke_or_delong(vandyke):
    result = or_analysis(vandyke, covariance="delong")
    (comparison,) = result.random.comparisons
    assert_published(result.var_error, "0.0007921325")
    assert_published(result.cov1, "0.0003420090")
    assert_published(result.cov2, "0.0003395265")
    assert_published(result.cov3, "0.0002358497")
    assert_published(result.random.statistic, "4.484854")
    assert_published(result.random.ddf, "15.06611")
    assert_published(result.random.p_value, "0.05123303")
    assert_published(comparison.ci_low, "-0.0878671960")
    assert_published(comparison.ci_high, "0.0002665519")


def test_vandyke_or_fixed_readers(vandyke):
    test = or_analysis(vandyke, covariance="jackknife").fixed_readers
    (comparison,) = test.comparisons
    assert test.distribution == "chi2"
    assert_published(test.statistic, "5.475953")
    assert_published(test.p_value, "0.01927984")
    assert_published(comparison.ci_low, "-0.08048591")
    assert_published(comparison.ci_high, "-0.00711473")
    estimates = test.modality_estimates
    assert_published(estimates[0].ci_low, "0.84943008")
    assert_published(estimates[1].ci_high, "0.97371835")


def test_vandyke_or_fixed_cases(vandyke):
    test = or_analysis(vandyke, covariance="jackknife").fixed_cases
    (comparison,) = test.comparisons
    assert_published(test.statistic, "8.704")
    assert (test.ndf, test.ddf) == (1, 4)
    assert_published(test.p_value, "0.04195875")
    assert_published(comparison.ci_low, "-0.08502022")
    assert_published(comparison.ci_high, "-0.00258042")
    assert_published(test.modality_estimates[0].ci_low, "0.82809808")


def test_vandyke_dbm_mean_squares(vandyke):
    mean_squares = dbm_analysis(vandyke).mean_squares
    published = {
        "T": "0.5467634",
        "R": "0.4373268",
        "C": "0.3968699",
        "TR": "0.06281749",
        "TC": "0.09984808",
        "RC": "0.06450106",
        "TRC": "0.0399716",
    }
    for source, value in published.items():
        assert_published(mean_squares[source], value)


def test_vandyke_dbm_variance_components(vandyke):
    components = dbm_analysis(vandyke).variance_components
    published = {
        "R": "0.00153500",
        "C": "0.02724923",
        "TR": "0.00020040",
        "TC": "0.01197530",
        "RC": "0.01226473",
        "TRC+error": "0.03997160",
    }
    for source, value in published.items():
        assert_published(components[source], value)


def test_vandyke_dbm_fixed_readers(vandyke):
    test = dbm_analysis(vandyke).fixed_readers
    (comparison,) = test.comparisons
    assert_published(test.statistic, "5.48")
    assert (test.ndf, test.ddf) == (1, 113)
    assert_published(test.p_value, "0.021034969")
    assert_published(comparison.ci_low, "-0.08088")
    assert_published(comparison.ci_high, "-0.00672")


def test_vandyke_dbm_hillis_equals_or_jackknife(vandyke):
    dbm = dbm_analysis(vandyke).random
    jackknife = or_analysis(vandyke, covariance="jackknife").random
    assert dbm.statistic == pytest.approx(jackknife.statistic, rel=1e-10)
    assert dbm.ddf == pytest.approx(jackknife.ddf, rel=1e-10)
    assert dbm.p_value == pytest.approx(jackknife.p_value, rel=1e-10)
    assert dbm.comparisons[0].ci_low == pytest.approx(jackknife.comparisons[0].ci_low, rel=1e-10)
    for dbm_estimate, or_estimate in zip(dbm.modality_estimates, jackknife.modality_estimates):
        assert dbm_estimate.ci_low == pytest.approx(or_estimate.ci_low, rel=1e-10)


FEDROC_MEANS = ["0.84516250", "0.85026250", "0.80983750", "0.85057500", "0.80838750"]


def test_fedroc_or_jackknife_components(fedroc):
    result = or_analysis(fedroc, covariance="jackknife")
    for mean, published in zip(result.modality_auc, FEDROC_MEANS):
        assert_published(mean, published)
    assert_published(result.ms_t, "0.00189696")
    assert_published(result.ms_r, "0.00729418")
    assert_published(result.ms_tr, "0.00046221")
    assert_published(result.cov1, "0.00029480")
    assert_published(result.cov2, "0.00023331")
    assert_published(result.cov3, "0.00021213")
    assert_published(result.var_error, "0.00078912")
    assert_published(result.var_tr, "-0.00001093")


def test_fedroc_overall_tests(fedroc):
    result = or_analysis(fedroc, covariance="jackknife")
    assert_published(result.random.statistic, "3.47")
    assert result.random.ndf == 4
    assert_published(result.random.ddf, "16.80")
    assert_published(result.random.p_value, "0.0305")
    assert_published(result.fixed_readers.statistic, "13.60126")
    assert_published(result.fixed_readers.p_value, "0.0087")
    assert_published(result.fixed_cases.statistic, "4.10")
    assert_published(result.fixed_cases.p_value, "0.0253")
    assert result.fixed_cases.ddf == 12


def _published_comparisons(text: str, section: str) -> list[tuple[str, ...]]:
    """Parse the rows "i - j  difference  stderr ... (low , high)" of one Iowa output section."""
    start = text.index(section)
    end = text.find("Analysis", start + len(section))
    pattern = re.compile(
        r"^\s+(\d) - (\d)\s+(-?[\d.]+)\s+([\d.]+).*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\)", re.M
    )
    return pattern.findall(text[start : end if end > 0 else None])


@pytest.mark.parametrize(
    "section, analysis",
    [
        ("Analysis 1 (OR Analysis)", "random"),
        ("Analysis 2 (OR Analysis)", "fixed_readers"),
        ("Analysis 3 (OR Analysis)", "fixed_cases"),
    ],
)
def test_fedroc_pairwise_differences(fedroc, mrmc_dir, section, analysis):
    text = (mrmc_dir / "fedroc" / "ref_IowaORDBMMRMC_FedRoc_jackknife.txt").read_text()
    published = _published_comparisons(text, section)
    comparisons = getattr(or_analysis(fedroc, covariance="jackknife"), analysis).comparisons
    assert len(published) == 10
    assert len(comparisons) == 10
    for comparison, (a, b, difference, std_error, ci_low, ci_high) in zip(comparisons, published):
        assert (comparison.modality_a, comparison.modality_b) == (a, b)
        assert_published(comparison.difference, difference)
        assert_published(comparison.std_error, std_error)
        assert_published(comparison.ci_low, ci_low)
        assert_published(comparison.ci_high, ci_high)


def test_fedroc_dbm_hillis_equals_or_jackknife(fedroc):
    dbm = dbm_analysis(fedroc)
    jackknife = or_analysis(fedroc, covariance="jackknife")
    assert_published(dbm.variance_components["C"], "0.04242558")
    assert_published(dbm.variance_components["TRC+error"], "0.09462642")
    assert dbm.random.statistic == pytest.approx(jackknife.random.statistic, rel=1e-9)
    assert dbm.random.ddf == pytest.approx(jackknife.random.ddf, rel=1e-9)
    for dbm_comparison, or_comparison in zip(dbm.random.comparisons, jackknife.random.comparisons):
        assert dbm_comparison.ci_high == pytest.approx(or_comparison.ci_high, rel=1e-9)


# Synthetic studies: design checks and identities that hold for any data.


def _synthetic_study(
    seed: int = 0, n_modalities: int = 3, n_readers: int = 4, n_cases: int = 30
) -> MrmcData:
    rng = np.random.default_rng(seed)
    truth = np.array([0, 1] * (n_cases // 2), dtype=np.int8)
    case_effect = rng.normal(size=n_cases) + 1.2 * truth
    ratings = case_effect + 0.6 * rng.normal(size=(n_modalities, n_readers, n_cases))
    ratings += 0.3 * np.arange(n_modalities)[:, None, None] * truth
    return MrmcData(
        readers=tuple(f"R{j}" for j in range(n_readers)),
        modalities=tuple(f"M{i}" for i in range(n_modalities)),
        case_ids=tuple(f"c{k}" for k in range(n_cases)),
        truth=truth,
        ratings=np.round(ratings, 1),
    )


def test_or_delong_covariance_matches_roc_module():
    data = _synthetic_study()
    _, covariance = auc_covariance(data, "delong")
    t, r, c = data.ratings.shape
    _, expected = delong_covariance(data.truth, data.ratings.reshape(t * r, c))
    np.testing.assert_allclose(covariance.reshape(t * r, t * r), expected, rtol=1e-12)


def test_pseudovalues_average_to_aucs():
    data = _synthetic_study(seed=1)
    np.testing.assert_allclose(pseudovalues(data).mean(axis=2), reader_aucs(data), atol=1e-12)


def test_dbm_hillis_equals_or_jackknife_three_modalities():
    data = _synthetic_study(seed=2)
    dbm = dbm_analysis(data).random
    jackknife = or_analysis(data).random
    assert dbm.statistic == pytest.approx(jackknife.statistic, rel=1e-9)
    assert dbm.ddf == pytest.approx(jackknife.ddf, rel=1e-9)
    assert len(dbm.comparisons) == 3


def test_two_modality_f_equals_squared_t():
    data = _synthetic_study(seed=3, n_modalities=2)
    test = or_analysis(data).random
    assert test.statistic == pytest.approx(test.comparisons[0].statistic ** 2)
    assert test.p_value == pytest.approx(test.comparisons[0].p_value)


def test_modality_order_sets_difference_sign():
    data = _synthetic_study(seed=4, n_modalities=2)
    rows = data.to_long()
    reversed_data = MrmcData.from_long(*zip(*rows), modality_order=["M1", "M0"])
    forward = or_analysis(data).random.comparisons[0]
    backward = or_analysis(reversed_data).random.comparisons[0]
    assert backward.difference == pytest.approx(-forward.difference)
    assert backward.p_value == pytest.approx(forward.p_value)


def test_to_dict_is_json_safe():
    import json

    result = or_analysis(_synthetic_study(seed=5))
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["fixed_readers"]["ddf"] is None
    assert len(payload["random_readers_random_cases"]["comparisons"]) == 3


def test_from_long_raises_missing_combination():
    rows = _synthetic_study(seed=6, n_modalities=2, n_readers=2, n_cases=4).to_long()
    del rows[5]  # reader R0, modality M1, case c1
    with pytest.raises(
        MrmcDataError, match="reader 'R0' has no rating of case 'c1' in modality 'M1'"
    ):
        MrmcData.from_long(*zip(*rows))


def test_from_long_raises_duplicate_rating():
    rows = _synthetic_study(seed=6, n_modalities=2, n_readers=2, n_cases=4).to_long()
    rows.append(rows[0])
    with pytest.raises(MrmcDataError, match="rated twice"):
        MrmcData.from_long(*zip(*rows))


def test_from_long_raises_conflicting_truth():
    rows = _synthetic_study(seed=6, n_modalities=2, n_readers=2, n_cases=4).to_long()
    reader, modality, case_id, truth, rating = rows[1]
    rows[1] = (reader, modality, case_id, 1 - truth, rating)
    with pytest.raises(MrmcDataError, match="case 'c1' has truth"):
        MrmcData.from_long(*zip(*rows))


def test_from_long_raises_bad_truth():
    with pytest.raises(MrmcDataError, match="truth must be 0 .* got '2' on row 0"):
        MrmcData.from_long(["R"], ["M"], ["c"], ["2"], ["1"])


def test_or_analysis_raises_single_reader():
    data = _synthetic_study(n_readers=1)
    with pytest.raises(MrmcDataError, match="at least 2 readers"):
        or_analysis(data)


def test_or_analysis_raises_unknown_covariance():
    with pytest.raises(MrmcDataError, match="covariance must be"):
        or_analysis(_synthetic_study(), covariance="bootstrap")
