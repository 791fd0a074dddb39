"""``uitpas-async finam reports fetch``: every account's Finam report at once, resumable.

Wired into the main parser by :func:`add_commands`. ``--period latest`` means
the last full calendar quarter before today (at most 92 days, so Finam always
accepts it); ``2024-Q1`` and ``A..B`` work as for UiTPAS. The secret comes from
``FINAM_SECRET``; ``--sandbox [N]`` runs against a local Finam sandbox with N
accounts instead. Exit status 0: all done; 1: some failed; 2: usage or configuration
error, or the first calls showed that nothing can work.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from uitpas_async.cli.args import (
    add_command_group,
    add_sandbox_option,
    global_options,
    parse_period,
    read_key_rows,
    unique_keys,
)
from uitpas_async.cli.batch import add_batch_arguments, fetch_batch
from uitpas_async.cli.output import MANIFEST_NAME, note, result_record
from uitpas_async.cli.sandbox import (
    DEFAULT_SANDBOX_BALIES,
    SANDBOX_GENERATION_MEDIAN,
    SANDBOX_GENERATION_SIGMA,
    SANDBOX_POLL,
)
from uitpas_async.engine.config import Limits
from uitpas_async.engine.errors import AuthenticationError, ConfigurationError, UitpasError
from uitpas_async.engine.orchestrator import ReportResult
from uitpas_async.finam.client import DEFAULT_BASE_URL, SECRET_VARIABLE, FinamClient
from uitpas_async.finam.models import AccountReportRequest, ReportForm, validate_range

__all__ = ["add_commands", "finam_options", "latest_period", "manifest_record", "read_accounts"]

DEFAULT_OUT_DIR = "finam-reports"
DEFAULT_MAX_IN_FLIGHT = 20
#: Environment variable that points the command at another Finam REST base URL.
BASE_URL_VARIABLE = "FINAM_BASE_URL"
#: First cells that mark the first row of an accounts file as a header.
_ACCOUNT_HEADERS = ("account", "account_id", "id")


def latest_period(today: date) -> tuple[date, date]:
    """Return the last full calendar quarter before ``today`` (never over 92 days)."""
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    end = quarter_start - timedelta(days=1)
    return date(end.year, end.month - 2, 1), end


def read_accounts(path: Path) -> list[str]:
    """Read account ids: one a line, or CSV with the id first; ``#`` starts a comment.

    Raises:
        ConfigurationError: unreadable, or no ids.
    """
    rows = read_key_rows(path, kind="accounts", noun="account ids", headers=_ACCOUNT_HEADERS)
    return unique_keys(
        ((row.cells[0], f"{path.name} line {row.line}") for row in rows), noun="account"
    )


def manifest_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest line of one result (like UiTPAS's, with ``account``)."""
    request = result.request
    report = result.report
    return {
        "account": request.account_id,
        "form": request.form.name,
        **result_record(result),
        "content_type": report.content_type if report and report.content_type else None,
    }


@contextlib.asynccontextmanager
async def _connection(args: argparse.Namespace) -> AsyncIterator[tuple[FinamClient, list[str]]]:
    """Yield a client (and the sandbox's accounts, if any) for the command's target."""
    rate = getattr(args, "rate", None)
    limits = Limits()
    if args.sandbox is None:
        client = FinamClient.from_env(base_url=_base_url(args), limits=limits, **_rate(rate))
        async with client:
            yield client, []
        return
    from uitpas_async.finam.sandbox import FinamSandbox, FinamSandboxConfig

    count = args.sandbox if isinstance(args.sandbox, int) and args.sandbox > 0 else 0
    config = FinamSandboxConfig(
        accounts=count or DEFAULT_SANDBOX_BALIES,
        generation_median=SANDBOX_GENERATION_MEDIAN,
        generation_sigma=SANDBOX_GENERATION_SIGMA,
        json_style="mixed",
    )
    async with (
        FinamSandbox(config) as sandbox,
        FinamClient(
            sandbox.secret, base_url=sandbox.base_url, poll=SANDBOX_POLL, **_rate(rate)
        ) as client,
    ):
        note(f"finam sandbox: {sandbox.base_url} with {len(sandbox.accounts)} accounts")
        yield client, list(sandbox.accounts)


def _rate(rate: float | None) -> dict[str, Any]:
    return {} if rate is None else {"rate_per_method": rate}


def _base_url(args: argparse.Namespace) -> str:
    return str(args.base_url or os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL)


def _plan(args: argparse.Namespace) -> Callable[[list[str]], list[AccountReportRequest]]:
    """Check the period, form and accounts before any I/O; return the request builder.

    Raises:
        InvalidArgumentError: a bad, future or too long period, or an unknown form.
        ConfigurationError: an unreadable accounts file, or no account at all.
    """
    period = parse_period(args.period) or latest_period(date.today())
    validate_range(*period)
    form = ReportForm.parse(args.form)
    named = [(account, "--account") for account in args.account or []]
    if args.accounts:
        path = Path(args.accounts)
        named += [(account, path.name) for account in read_accounts(path)]
    accounts = unique_keys(named, noun="account")
    if not accounts and args.sandbox is None:
        raise ConfigurationError("name accounts with --account ID (repeatable) or --accounts FILE")

    def requests(sandbox_accounts: list[str]) -> list[AccountReportRequest]:
        chosen = accounts or sandbox_accounts
        return [AccountReportRequest(account, period[0], period[1], form) for account in chosen]

    return requests


def _hint(args: argparse.Namespace) -> Callable[[UitpasError], str]:
    def hint(error: UitpasError) -> str:
        if isinstance(error, AuthenticationError):
            return f"the secret was refused: check {SECRET_VARIABLE}"
        host = urlsplit(_base_url(args)).hostname or _base_url(args)
        return f"cannot reach {host}: check the network and --base-url or {BASE_URL_VARIABLE}"

    return hint


async def _cmd_fetch(args: argparse.Namespace) -> int:
    requests = _plan(args)
    return await fetch_batch(
        args,
        _connection(args),
        requests,
        record=manifest_record,
        # This command has never printed the note; kept so until the CLI's UX is reworked.
        note_duplicates=False,
        hint=_hint(args),
    )


def finam_options() -> argparse.ArgumentParser:
    """Return the parent parser of Finam's commands: where they go, and -v/-q."""
    common = argparse.ArgumentParser(add_help=False, parents=[global_options()])
    target = common.add_argument_group("target")
    target.add_argument(
        "--base-url",
        metavar="URL",
        help=f"Finam REST base URL (default: ${BASE_URL_VARIABLE}, else {DEFAULT_BASE_URL})",
    )
    add_sandbox_option(target, default=DEFAULT_SANDBOX_BALIES, what="accounts")
    return common


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``finam reports fetch`` to the main command's subparsers."""
    finam_commands = add_command_group(
        commands,
        "finam",
        help="Finam Trade API account reports",
        description="Finam Trade API.",
        dest="finam_command",
    )
    reports_commands = add_command_group(
        finam_commands,
        "reports",
        help="bulk account report jobs: fetch",
        description="Bulk account reports.",
        dest="finam_reports_command",
    )
    fetch = reports_commands.add_parser(
        "fetch",
        parents=[common],
        help="fetch the broker reports of many accounts at once (resumable)",
        description="Create, poll and download the Finam report of every account, "
        "concurrently. Writes OUT/<account>/<file>_<period> (kept as served: PDF, XML, "
        f"...) and adds a line per report to OUT/{MANIFEST_NAME}. The secret comes from "
        f"{SECRET_VARIABLE}; --base-url or {BASE_URL_VARIABLE} overrides {DEFAULT_BASE_URL}. "
        "With --sandbox [N], a local sandbox with N accounts stands in. Run again with the "
        "same journal to resume.\n\n"
        "Exit status 0: all done; 1: some failed; 2: usage or configuration error, or the "
        "first calls showed that nothing can work; 130: interrupted.",
        epilog="examples:\n  uitpas-async finam reports fetch --sandbox 3\n"
        "  FINAM_SECRET=... uitpas-async finam reports fetch --accounts accounts.csv "
        "--period 2024-Q1\n",
    )
    fetch.add_argument("--account", action="append", metavar="ID", help="account id (repeatable)")
    fetch.add_argument(
        "--accounts", metavar="FILE", help="file of account ids: one a line, or CSV id,..."
    )
    fetch.add_argument(
        "--period",
        default="latest",
        help="latest (last full calendar quarter), 2024-Q1 or A..B (at most 92 days)",
    )
    fetch.add_argument(
        "--form", choices=("short", "long"), default="long", type=str.lower, help="report form"
    )
    add_batch_arguments(
        fetch,
        out_dir=DEFAULT_OUT_DIR,
        max_in_flight=DEFAULT_MAX_IN_FLIGHT,
        rate_help="requests per second per method (default: 3)",
    )
    fetch.set_defaults(handler=_cmd_fetch)
