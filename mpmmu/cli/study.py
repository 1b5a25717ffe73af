"""``mpmmu study``: reader-study commands.

``mpmmu study analyse --ratings ratings.csv`` also analyses a study run elsewhere: a long-format CSV
with the columns reader_id, modality, case_id, truth (0/1) and rating. It prints per-modality
reader-averaged AUCs, their differences, F, ddf, p and the confidence interval of each
difference for the Obuchowski-Rockette analyses (random readers and cases, fixed readers, fixed
cases) and the Dorfman-Berbaum-Metz analyses, as a table or, with ``--json``, as JSON.

Further study subcommands register on the same ``study`` subparser group.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

from mpmmu.cli.study_store import register_store_commands, run_study_analyse
from mpmmu.metrics.mrmc import DBMResult, MrmcData, MrmcTest, ORResult, dbm_analysis, or_analysis
from mpmmu.metrics.mrmc_io import read_imrmc, read_long_csv, read_lrc
from mpmmu.study.analysis import check_case_counts

logger = logging.getLogger(__name__)

ANALYSIS_TITLES = {
    "random_readers_random_cases": "random readers, random cases",
    "fixed_readers": "fixed readers, random cases",
    "fixed_cases": "random readers, fixed cases",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``study`` command and its subcommands."""
    parser = subparsers.add_parser(
        "study",
        help="reader studies: analyse ratings with MRMC statistics",
        description="Reader-study commands.",
    )
    parser.set_defaults(handler=lambda args: _print_help(parser))
    study_subparsers = parser.add_subparsers(dest="study_command", metavar="STUDY_COMMAND")
    register_analyse(study_subparsers)
    register_store_commands(study_subparsers)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def register_analyse(study_subparsers: argparse._SubParsersAction) -> None:
    """Add ``study analyse``."""
    parser = study_subparsers.add_parser(
        "analyse",
        help="MRMC analysis (OR and DBM) of a ratings table",
        description=(
            "Analyse a reader study run elsewhere: a long-format CSV with the columns reader_id, "
            "modality, case_id, truth (1 abnormal, 0 normal) and rating (higher is more "
            "suspicious), one row per reader, modality and case. Every reader must rate every case "
            "in every modality. Prints reader-averaged AUCs per modality, their differences, F, "
            "ddf, p and confidence intervals for the Obuchowski-Rockette and "
            "Dorfman-Berbaum-Metz analyses."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--ratings",
        type=Path,
        help="ratings file (.csv long format; .lrc and .imrmc also read)",
    )
    source.add_argument("--study", help="study id or name in the study store (see `mpmmu study create`)")
    parser.add_argument("--db", default=None, help="study database URL or SQLite path, with --study")
    parser.add_argument(
        "--rating",
        choices=("probability", "birads"),
        default="probability",
        help="with --study: analyse the probability of malignancy (0-100) or the BI-RADS rank (default: probability)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--covariance",
        choices=("jackknife", "delong"),
        default="jackknife",
        help="estimator of the AUC error covariances in the OR analyses (default: jackknife); DBM always uses the jackknife",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="two-sided error rate of the intervals (default: 0.05, 95%% intervals)",
    )
    parser.set_defaults(handler=run_analyse)


def read_ratings(path: Path) -> MrmcData:
    """Read a ratings file, choosing the reader by extension (.lrc, .imrmc, otherwise long CSV)."""
    suffix = path.suffix.lower()
    if suffix == ".lrc":
        return read_lrc(path)
    if suffix == ".imrmc":
        return read_imrmc(path)
    return read_long_csv(path)


def analyse_study(
    data: MrmcData, covariance: str = "jackknife", alpha: float = 0.05
) -> dict[str, Any]:
    """Run the OR and DBM analyses and collect their results as a JSON-ready dictionary.

    Raises
    ------
    MrmcDataError
        When there are fewer than 2 abnormal or 2 normal cases.
    """
    check_case_counts(data.n_abnormal, data.n_normal, "add cases of the missing class to the ratings")
    or_result = or_analysis(data, covariance=covariance, alpha=alpha)
    dbm_result = dbm_analysis(data, alpha=alpha)
    analyses = {}
    for prefix, result in (("or", or_result), ("dbm", dbm_result)):
        for test in (result.random, result.fixed_readers, result.fixed_cases):
            analyses[f"{prefix}_{test.analysis}"] = _test_summary(test, result)
    return {
        "n_readers": len(data.readers),
        "n_modalities": len(data.modalities),
        "n_normal": data.n_normal,
        "n_abnormal": data.n_abnormal,
        "covariance": covariance,
        "confidence_level": 1.0 - alpha,
        "reader_auc": {
            modality: {reader: float(or_result.auc[i, j]) for j, reader in enumerate(data.readers)}
            for i, modality in enumerate(data.modalities)
        },
        "modality_auc": {
            modality: float(or_result.modality_auc[i]) for i, modality in enumerate(data.modalities)
        },
        "analyses": analyses,
        "or_components": {
            name: getattr(or_result, name)
            for name in (
                "ms_t",
                "ms_r",
                "ms_tr",
                "var_error",
                "cov1",
                "cov2",
                "cov3",
                "var_r",
                "var_tr",
            )
        },
        "dbm_mean_squares": dbm_result.mean_squares,
    }


def _test_summary(test: MrmcTest, result: ORResult | DBMResult) -> dict[str, Any]:
    summary = test.to_dict()
    summary["method"] = "OR" if isinstance(result, ORResult) else "DBM"
    summary["covariance"] = (
        result.covariance_method if isinstance(result, ORResult) else "jackknife"
    )
    return summary


def _format_df(df: float | None) -> str:
    return "inf" if df is None or math.isinf(df) else f"{df:.2f}"


def format_table(summary: dict[str, Any]) -> str:
    """Render :func:`analyse_study` output as a plain-text report."""
    modalities = list(summary["modality_auc"])
    readers = list(next(iter(summary["reader_auc"].values())))
    label_width = max(len("reader average"), *(len(reader) for reader in readers)) + 2
    column_width = max(10, *(len(modality) for modality in modalities)) + 2
    lines = [
        f"{summary['n_readers']} readers, {summary['n_modalities']} modalities, "
        f"{summary['n_normal']} normal and {summary['n_abnormal']} abnormal cases",
        "",
        "AUC by reader".ljust(label_width)
        + "".join(f"{modality:>{column_width}}" for modality in modalities),
    ]
    for reader in readers:
        lines.append(
            reader.ljust(label_width)
            + "".join(
                f"{summary['reader_auc'][modality][reader]:{column_width}.4f}"
                for modality in modalities
            )
        )
    lines.append(
        "reader average".ljust(label_width)
        + "".join(
            f"{summary['modality_auc'][modality]:{column_width}.4f}" for modality in modalities
        )
    )

    level = round(100 * summary["confidence_level"])
    pair_width = (
        max(len("difference"), *(len(a) + len(b) + 3 for a in modalities for b in modalities)) + 2
    )
    for test in summary["analyses"].values():
        title = f"{test['method']} ({test['covariance']}): {ANALYSIS_TITLES[test['analysis']]}"
        if test["distribution"] == "chi2":
            statistic = f"chi2({test['ndf']:g}) = {test['statistic']:.4f}"
        else:
            statistic = f"F({test['ndf']:g}, {_format_df(test['ddf'])}) = {test['statistic']:.4f}"
        lines += ["", title, f"  {statistic}, p = {test['p_value']:.4g}"]
        lines.append(
            f"  {'difference':<{pair_width}}{'estimate':>10}{'std err':>10}{'df':>9}{'p':>9}   {level}% CI"
        )
        for comparison in test["comparisons"]:
            pair = f"{comparison['modality_a']} - {comparison['modality_b']}"
            lines.append(
                f"  {pair:<{pair_width}}{comparison['difference']:10.5f}{comparison['std_error']:10.5f}"
                f"{_format_df(comparison['df']):>9}{comparison['p_value']:9.4f}   "
                f"({comparison['ci_low']:.5f}, {comparison['ci_high']:.5f})"
            )
    return "\n".join(lines)


def run_analyse(args: argparse.Namespace) -> int:
    """Read the ratings, analyse them and print the report."""
    if args.study is not None:
        return run_study_analyse(args)
    data = read_ratings(args.ratings)
    logger.info(
        "read %d readers x %d modalities x %d cases from %s",
        len(data.readers),
        len(data.modalities),
        len(data.case_ids),
        args.ratings,
    )
    summary = analyse_study(data, covariance=args.covariance, alpha=args.alpha)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary))
    return 0
