"""The ``mpmmu`` command line.

Each subcommand lives in its own module under :mod:`mpmmu.cli` and exposes ``register(subparsers)``,
which adds its parser and sets ``handler`` to a function taking the parsed arguments and returning
an exit status. Errors that mpmmu raises on purpose become one line on standard error, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mpmmu import RESEARCH_USE_STATEMENT, __version__
from mpmmu.errors import MpmmuError

logger = logging.getLogger(__name__)

# Module names under mpmmu.cli, in the order their subcommands appear in --help.
SUBCOMMAND_MODULES = (
    "inspect",
    "data",
    "train",
    "evaluate",
    "predict",
    "study",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="mpmmu",
        description=f"MPM-MU mammography + ultrasound model. {RESEARCH_USE_STATEMENT}",
    )
    parser.add_argument("--version", action="version", version=f"mpmmu {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more detail (-v info, -vv debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"mpmmu.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"mpmmu.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except MpmmuError as error:
        logger.debug("command failed", exc_info=True)
        print(f"mpmmu {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
