"""``mpmmu study`` subcommands that work on the study store: create, codes, ai, import-reads,
status, export, and ``analyse --study``.

Every subcommand takes ``--db``, an SQLAlchemy URL or a SQLite file path. Without it the store
opens ``MPMMU_STUDY_DB``, else the default SQLite file under the cache folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from mpmmu.data.manifest import manifest_sha256, read_manifest
from mpmmu.errors import StudyStoreError
from mpmmu.study.analysis import MIN_CASES_PER_CLASS
from mpmmu.study.design import BIRADS_CATEGORIES, DESIGNS
from mpmmu.study.store import STUDY_DB_ENV, StudyStore

logger = logging.getLogger(__name__)


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        help=f"study database: SQLAlchemy URL or SQLite file path (default: ${STUDY_DB_ENV}, else a SQLite file under the cache folder)",
    )


def _add_study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, help="study id or name")


def register_store_commands(study_subparsers: argparse._SubParsersAction) -> None:
    """Add the store-backed subcommands to the ``study`` group."""
    create = study_subparsers.add_parser(
        "create",
        help="create a reader study from a case manifest and print the invitation codes",
        description=(
            "Create a reader study from a case manifest. Each reader gets a seeded random case order "
            "(recorded in the store) and an invitation code, printed once: keep it, only its hash is stored. "
            "BI-RADS categories offered: " + ", ".join(BIRADS_CATEGORIES) + "; probability of malignancy 0-100."
        ),
    )
    create.add_argument("--manifest", required=True, type=Path, help="case manifest CSV; every case needs a label")
    create.add_argument("--name", default=None, help="study name (default: the manifest's file name)")
    create.add_argument("--design", choices=DESIGNS, default="sequential", help="sequential: unaided then aided read of each case; crossover: two sessions after a washout (default: sequential)")
    create.add_argument("--washout-days", type=int, default=0, help="days between the two crossover sessions (default: 0)")
    create.add_argument("--readers", default="3", help="number of readers, or their names separated by commas (default: 3)")
    create.add_argument("--seed", type=int, default=0, help="seed of the readers' case orders (default: 0)")
    create.add_argument("--predictions", type=Path, default=None, help="CSV written by `mpmmu predict` with each case's AI probability")
    create.add_argument("--bundle", type=Path, default=None, help="model bundle folder: score every case now with Pipeline.predict")
    create.add_argument("--codes-out", type=Path, default=None, help="also write the reader,code table to this CSV")
    _add_db(create)
    create.set_defaults(handler=run_create)

    codes = study_subparsers.add_parser("codes", help="issue new invitation codes (the old ones stop working)")
    _add_study(codes)
    codes.add_argument("--reader", action="append", default=None, help="reader name; repeat for several (default: every reader)")
    _add_db(codes)
    codes.set_defaults(handler=run_codes)

    ai = study_subparsers.add_parser("ai", help="store the AI probability of each case for the AI-alone analysis")
    _add_study(ai)
    source = ai.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, help="CSV written by `mpmmu predict`")
    source.add_argument("--bundle", type=Path, help="model bundle folder; cases are read from the study's manifest")
    ai.add_argument("--manifest", type=Path, default=None, help="manifest to read images from (default: the one the study was created from)")
    _add_db(ai)
    ai.set_defaults(handler=run_ai)

    import_reads = study_subparsers.add_parser(
        "import-reads",
        help="lock reads collected outside the app from a CSV",
        description=(
            "Lock reads collected outside the app from a CSV, all or nothing: every row is checked "
            "before any read is written. Rows identical to reads already locked are skipped, so "
            "importing the same file again changes nothing."
        ),
        epilog=(
            "CSV columns, one row per read:\n"
            "  reader           reader name as given to `mpmmu study create --readers`\n"
            "  case_id          case id from the study's manifest\n"
            "  mode             unaided or aided\n"
            f"  birads           BI-RADS category: {', '.join(BIRADS_CATEGORIES)}\n"
            "  probability      probability of malignancy, whole percent 0-100\n"
            "  reading_seconds  optional: reading time in seconds\n"
            "Other columns are ignored, so a file written by `mpmmu study export --format reads` can be imported."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_study(import_reads)
    import_reads.add_argument("--csv", required=True, type=Path, help="reads CSV")
    _add_db(import_reads)
    import_reads.set_defaults(handler=run_import_reads)

    status = study_subparsers.add_parser("status", help="list the studies, or one study's reader progress")
    status.add_argument("--study", default=None, help="study id or name (default: list every study)")
    _add_db(status)
    status.set_defaults(handler=run_status)

    export = study_subparsers.add_parser("export", help="export a study's reads for iMRMC or RJafroc, or as a reads CSV")
    _add_study(export)
    export.add_argument("--format", required=True, choices=("imrmc", "rjafroc", "reads"), help="imrmc: iMRMC input file; rjafroc: CSV for DfReadDataFile(format = \"MRMC\"); reads: every read")
    export.add_argument("--out", required=True, type=Path, help="file to write")
    export.add_argument("--rating", choices=("probability", "birads"), default="probability", help="rating exported for imrmc and rjafroc (default: probability)")
    _add_db(export)
    export.set_defaults(handler=run_export)


def _open(args: argparse.Namespace) -> StudyStore:
    return StudyStore(args.db)


def _reader_names(text: str) -> int | list[str]:
    if text.strip().isdigit():
        return int(text)
    return [name.strip() for name in text.split(",") if name.strip()]


def run_create(args: argparse.Namespace) -> int:
    """Create the study, store AI results when asked, and print the invitation codes."""
    rows = read_manifest(args.manifest)
    name = args.name or args.manifest.stem
    _warn_few_cases(rows)
    with _open(args) as store:
        info, codes = store.create_study(
            name,
            rows,
            design=args.design,
            readers=_reader_names(args.readers),
            seed=args.seed,
            washout_days=args.washout_days,
            manifest_path=args.manifest.resolve(),
            manifest_sha256=manifest_sha256(args.manifest),
        )
        scored = _store_ai(store, info.id, rows, args.predictions, args.bundle)
    print(f"study {info.id} {info.name!r}: {info.design} design, {info.n_cases} cases, {info.n_readers} readers, seed {info.seed}")
    if scored is not None:
        print(f"AI results stored for {scored} of {info.n_cases} cases")
    _print_codes(codes, args.codes_out)
    return 0


def _warn_few_cases(rows: list) -> None:
    n_malignant = sum(row.label == "malignant" for row in rows)
    n_benign = sum(row.label == "benign" for row in rows)
    if n_malignant < MIN_CASES_PER_CLASS or n_benign < MIN_CASES_PER_CLASS:
        logger.warning(
            "the manifest has %d malignant and %d benign cases; `mpmmu study analyse` needs at least %d of each, "
            "so this study cannot get an MRMC analysis. Add cases to the manifest unless the study is a trial run.",
            n_malignant,
            n_benign,
            MIN_CASES_PER_CLASS,
        )


def _store_ai(store: StudyStore, study_id: int, rows: list, predictions: Path | None, bundle: Path | None) -> int | None:
    from mpmmu.study.export import import_ai_predictions, score_cases

    if predictions is not None:
        return import_ai_predictions(store, study_id, predictions)
    if bundle is not None:
        from mpmmu.pipeline import Pipeline

        return score_cases(store, study_id, rows, Pipeline.load(bundle))
    return None


def _print_codes(codes: dict[str, str], path: Path | None) -> None:
    print("reader,code")
    for reader, code in codes.items():
        print(f"{reader},{code}")
    if path is not None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["reader", "code"])
            writer.writerows(codes.items())
        print(f"codes written to {path}", file=sys.stderr)


def run_codes(args: argparse.Namespace) -> int:
    """Issue new invitation codes and print them."""
    with _open(args) as store:
        info = store.study(args.study)
        codes = store.reissue_codes(info.id, args.reader)
    _print_codes(codes, None)
    return 0


def run_ai(args: argparse.Namespace) -> int:
    """Store AI results for a study's cases."""
    with _open(args) as store:
        info = store.study(args.study)
        rows = []
        if args.bundle is not None:
            manifest = args.manifest or (Path(info.manifest_path) if info.manifest_path else None)
            if manifest is None:
                raise StudyStoreError(f"study {info.name!r} has no manifest on record; pass --manifest")
            rows = read_manifest(manifest)
        scored = _store_ai(store, info.id, rows, args.predictions, args.bundle)
    print(f"AI results stored for {scored} of {info.n_cases} cases")
    return 0


def run_import_reads(args: argparse.Namespace) -> int:
    """Lock the reads of a CSV."""
    from mpmmu.study.export import import_reads_csv

    with _open(args) as store:
        result = import_reads_csv(store, args.study, args.csv)
    print(f"{result.added} reads locked, {result.skipped} rows skipped as already locked")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print the studies, or one study's progress per reader."""
    with _open(args) as store:
        if args.study is None:
            studies = store.studies()
            if not studies:
                print("no studies yet; create one with `mpmmu study create`")
            for info in studies:
                print(f"{info.id}\t{info.name}\t{info.design}\t{info.n_cases} cases\t{info.n_readers} readers\tcreated {info.created_at:%Y-%m-%d}")
            return 0
        info = store.study(args.study)
        progress = store.progress(info.id)
    print(f"study {info.id} {info.name!r}: {info.design}, {info.n_cases} cases, {info.n_readers} readers")
    for item in progress:
        if item.finished:
            state = "finished"
        elif item.next_session_opens is not None:
            state = f"session {item.session} opens {item.next_session_opens:%Y-%m-%d %H:%M} UTC"
        else:
            state = f"reading session {item.session}"
        print(f"{item.reader}\t{item.reads_done}/{item.reads_total} reads\t{state}")
    return 0


def run_study_analyse(args: argparse.Namespace) -> int:
    """Analyse a study from the store: the MRMC report of ``study analyse`` plus the study's extras."""
    from mpmmu.cli.study import analyse_study as summarise, format_table
    from mpmmu.study.analysis import analyse_study, format_extras

    with _open(args) as store:
        analysis = analyse_study(store, args.study, rating=args.rating, alpha=args.alpha)
    if args.json:
        print(json.dumps(analysis.to_dict(), indent=2))
        return 0
    print(f"study {analysis.study.id} {analysis.study.name!r}, rating: {analysis.rating}")
    print(format_table(summarise(analysis.data, covariance=args.covariance, alpha=args.alpha)))
    print()
    print(format_extras(analysis))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the export file."""
    from mpmmu.study.export import export_study

    with _open(args) as store:
        path = export_study(store, args.study, args.out, args.format, rating=args.rating)
    print(f"wrote {path}")
    return 0
