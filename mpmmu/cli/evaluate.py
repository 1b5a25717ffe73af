"""``mpmmu evaluate``: recompute every metric of a training run and write docs/RESULTS.md."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from mpmmu.errors import MetricInputError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="write the results report (AUC with CIs, DeLong tests, calibration) of a training run",
        description=(
            "Read the stored predictions of a training run and write a Markdown report: AUC with DeLong "
            "and patient-bootstrap 95%% CIs, DeLong tests, sensitivity, specificity, accuracy and F1 at the "
            "validation-chosen threshold, Brier score and calibration tables."
        ),
    )
    parser.add_argument("--bundle", type=Path, required=True, help="bundle folder written by mpmmu train --out")
    parser.add_argument("--work", type=Path, default=None, help="work folder of the run that wrote the bundle (default: <cache root>/runs/default, where mpmmu train writes without --work)")
    parser.add_argument("--ablation-work", type=Path, action="append", default=[], help="work folder of an ablation run to report beside it (repeatable)")
    parser.add_argument("--placement-work", type=Path, action="append", default=[], help="work folder of an attention-placement run (mpmmu train --attention-stages ..., with --only or --cv mammography allowed) for the placement table (repeatable)")
    parser.add_argument("--notes", type=Path, default=None, help="Markdown file whose text is added to the report under a heading that marks it as written by hand")
    parser.add_argument("--cv-work", type=Path, default=None, help="work folder of mpmmu train --cv mammography (default: look in --work)")
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"), help="Markdown file to write (default: docs/RESULTS.md)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``mpmmu evaluate`` and print the report's path."""
    from mpmmu.train.evaluate import write_results
    from mpmmu.train.run import default_work_dir

    command = "mpmmu evaluate " + " ".join(shlex.quote(part) for part in sys.argv[2:]) if len(sys.argv) > 2 else ""
    work = (args.work or default_work_dir("default")).expanduser()
    path = write_results(
        args.bundle,
        work,
        args.out,
        args.ablation_work,
        args.cv_work,
        command=_portable(command),
        placement_work_dirs=args.placement_work,
        notes=_read_notes(args.notes),
    )
    print(f"wrote {path}")
    return 0


def _read_notes(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise MetricInputError(f"cannot read the notes file {path}: {error.strerror}; pass an existing Markdown file") from error
    except UnicodeDecodeError as error:
        raise MetricInputError(f"the notes file {path} is not UTF-8 text; pass a Markdown file") from error


def _portable(command: str) -> str:
    # Home folders differ between machines; show the cache root as ~.
    return command.replace(str(Path.home()), "~")
