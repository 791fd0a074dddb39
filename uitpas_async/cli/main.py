"""The ``uitpas-async`` command: the top-level parser, the global options and :func:`main`.

Each command group lives in its own module and adds itself to the parser:
:mod:`~uitpas_async.cli.reports` (``periods``, ``price``, ``report``, ``reports``),
:mod:`~uitpas_async.cli.finam`, :mod:`~uitpas_async.cli.login` and
:mod:`~uitpas_async.cli.sandbox`. Exit status: 0 when everything asked for was done,
1 when some reports failed, 2 for usage or configuration errors (missing
credentials, bad period, ...), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from uitpas_async import __version__
from uitpas_async.cli import finam, login, reports, sandbox
from uitpas_async.cli.args import sandbox_count
from uitpas_async.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, say
from uitpas_async.cli.sandbox import DEFAULT_SANDBOX_BALIES
from uitpas_async.engine.errors import ConfigurationError, InvalidArgumentError, UitpasError
from uitpas_async.xml_api.models import ENVIRONMENTS

__all__ = ["build_parser", "main"]


def _common_options() -> argparse.ArgumentParser:
    """Return the parent parser of the options every command that calls an API takes."""
    common = argparse.ArgumentParser(add_help=False)
    target = common.add_argument_group("target")
    target.add_argument("--env", choices=sorted(ENVIRONMENTS), help="UiTPAS environment")
    target.add_argument("--base-url", help="API prefix URL (default: $UITPAS_BASE_URL or test)")
    target.add_argument(
        "--sandbox",
        nargs="?",
        type=sandbox_count,
        const=DEFAULT_SANDBOX_BALIES,
        default=None,
        metavar="N",
        help="run against an in-process sandbox (with N balies) instead; no configuration needed",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return common


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``uitpas-async``."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="uitpas-async",
        description="Fetch UiTPAS financial reports and prices. Credentials come from "
        "UITPAS_CONSUMER_KEY, UITPAS_CONSUMER_SECRET, UITPAS_TOKEN and UITPAS_TOKEN_SECRET "
        "when all four are set, else from `uitpas-async login` for the environment.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    reports.add_commands(commands, common)
    finam.add_commands(commands, common)
    login.add_commands(commands, common)
    sandbox.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], Any] = args.handler
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
        say(f"uitpas-async: cannot write {exc.filename or 'output'}: {exc.strerror}", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("uitpas-async: interrupted; run the same command again to resume", err=True)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
