"""The ``uitpas-async`` command: the top-level parser, the global options and :func:`main`.

Each command group lives in its own module and adds itself to the parser:
:mod:`~uitpas_async.cli.reports` (``periods``, ``price``, ``report``, ``reports``),
:mod:`~uitpas_async.cli.finam`, :mod:`~uitpas_async.cli.login`,
:mod:`~uitpas_async.cli.sandbox` and :mod:`~uitpas_async.cli.completion`. Exit
status: 0 when everything asked for was done, 1 when some reports failed, 2 for usage
or configuration errors (missing credentials, bad period, nothing can work, ...), 130
when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from uitpas_async import __version__
from uitpas_async.cli import completion, finam, login, reports, sandbox
from uitpas_async.cli.args import CommandParser, explicit_sandbox, global_options
from uitpas_async.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    say,
    set_quiet,
)
from uitpas_async.cli.target import uitpas_options
from uitpas_async.engine.errors import ConfigurationError, InvalidArgumentError, UitpasError

__all__ = ["build_parser", "main"]

_EXAMPLES = """\
examples:
  uitpas-async reports fetch --sandbox          try it all on a local sandbox
  uitpas-async login --env prod                 log in once, as a balie employee
  uitpas-async reports fetch --env prod --balies balies.csv --period 2024-Q1
  uitpas-async reports summarize uitpas-reports
  uitpas-async COMMAND --help                   every command's options and defaults
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``uitpas-async``."""
    common = uitpas_options()
    parser: argparse.ArgumentParser = CommandParser(
        prog="uitpas-async",
        description="Fetch UiTPAS financial reports and prices. Credentials come from "
        "UITPAS_CONSUMER_KEY, UITPAS_CONSUMER_SECRET, UITPAS_TOKEN and UITPAS_TOKEN_SECRET "
        "when all four are set, else from `uitpas-async login` for the environment.",
        epilog=_EXAMPLES,
        parents=[global_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Every command's parser is a CommandParser too (argparse makes them of the top's class).
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands"
    )
    reports.add_commands(commands, common)
    finam.add_commands(commands, finam.finam_options())
    login.add_commands(commands, common)
    sandbox.add_commands(commands)
    completion.add_commands(commands, parser)
    parser.set_defaults(help_parser=parser)
    return parser


#: What Ctrl-C prints unless the command set ``args.interrupted`` to its own words.
_INTERRUPTED = "uitpas-async: interrupted"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not arguments:
        parser.print_help()
        return EXIT_OK
    args = parser.parse_args(explicit_sandbox(arguments))
    handler: Callable[[argparse.Namespace], Any] | None = getattr(args, "handler", None)
    if handler is None:
        # A command group without its command: show what it offers.
        group: argparse.ArgumentParser = args.help_parser
        group.print_help(sys.stderr)
        say(f"{group.prog}: choose a command", err=True)
        return EXIT_USAGE if group is not parser else EXIT_OK
    set_quiet(bool(getattr(args, "quiet", False)))
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(asyncio.run(handler(args)))
    except (ConfigurationError, InvalidArgumentError) as exc:
        say(f"uitpas-async: {exc.message}", err=True)
        return EXIT_USAGE
    except UitpasError as exc:
        say(f"uitpas-async: {type(exc).__name__}: {exc.message}", err=True)
        return EXIT_FAILED
    except OSError as exc:
        # The output directory or the manifest cannot be written: a setup problem.
        where = exc.filename or "the output"
        say(f"uitpas-async: cannot write {where}: {exc.strerror or exc}", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        say(str(getattr(args, "interrupted", None) or _INTERRUPTED), err=True)
        return EXIT_INTERRUPTED
    finally:
        set_quiet(False)


if __name__ == "__main__":
    sys.exit(main())
