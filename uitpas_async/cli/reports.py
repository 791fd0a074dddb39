"""The UiTPAS XML API commands: ``periods``, ``price``, ``report`` and ``reports fetch``.

``reports fetch`` fetches every balie's report at once, resumably, and can total
them afterwards (``--summarize``, as ``reports summarize`` does). Exit status 0:
all done; 1: some failed; 2: usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from uitpas_async.cli.args import iso_date, parse_period, read_balies
from uitpas_async.cli.batch import add_batch_arguments, fetch_batch
from uitpas_async.cli.output import EXIT_OK, result_record, say
from uitpas_async.cli.summarize import (
    add_summarize_command,
    add_summarize_flags,
    summarize_directory,
)
from uitpas_async.cli.target import Balies, connection, first_balie
from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.engine.orchestrator import ReportResult
from uitpas_async.xml_api.backend import ReportRequest, UitpasBackend
from uitpas_async.xml_api.models import PriceReason

__all__ = ["add_commands", "manifest_record"]

DEFAULT_OUT_DIR = "uitpas-reports"
DEFAULT_MAX_IN_FLIGHT = 50


async def _cmd_periods(args: argparse.Namespace) -> int:
    async with connection(args) as (client, sandbox_balies):
        balie = first_balie(args, sandbox_balies)
        periods = await client.get_financial_report_periods(balie_consumer_key=balie)
    for period in periods:
        say(f"{period.start.isoformat()}  {period.end.isoformat()}")
    return EXIT_OK


async def _cmd_price(args: argparse.Namespace) -> int:
    async with connection(args) as (client, sandbox_balies):
        balie = args.balie[0] if args.balie else (sandbox_balies[0][0] if sandbox_balies else None)
        price = await client.get_uitpas_price(
            args.uitpas_number,
            PriceReason.parse(args.reason),
            date_of_birth=args.date_of_birth,
            postal_code=args.postal_code,
            voucher_number=args.voucher_number,
            balie_consumer_key=balie,
        )
    reason = price.reason.value if isinstance(price.reason, PriceReason) else price.reason
    ages = price.age_range
    say(f"price: {price.price}  reason: {reason}  kansenstatuut: {price.kansenstatuut}")
    if price.card_system is not None:
        say(f"card system: {price.card_system.name} ({price.card_system.id})")
    if ages.age_from is not None or ages.age_to is not None:
        say(f"ages: {ages.age_from if ages.age_from is not None else ''}-{ages.age_to or ''}")
    return EXIT_OK


async def _cmd_report(args: argparse.Namespace) -> int:
    period = parse_period(args.period)
    async with connection(args) as (client, sandbox_balies):
        balie = first_balie(args, sandbox_balies)
        request = (
            ReportRequest(balie, period="latest")
            if period is None
            else ReportRequest(balie, period[0], period[1])
        )
        resolved = await UitpasBackend(client).resolve_request(request)
        assert resolved.start is not None
        assert resolved.end is not None
        report = await client.fetch_financial_report(
            resolved.start, resolved.end, Path(args.out), balie_consumer_key=balie
        )
    say(f"{report.path}  {report.size} bytes  sha256 {report.sha256}")
    return EXIT_OK


def _requests(args: argparse.Namespace, sandbox_balies: Balies) -> list[ReportRequest]:
    balies: Balies = [(key, None) for key in args.balie or []]
    if args.balies:
        balies += read_balies(Path(args.balies))
    if not balies:
        balies = sandbox_balies
    if not balies:
        raise ConfigurationError("name balies with --balie KEY (repeatable) or --balies FILE")
    period = parse_period(args.period)
    seen: dict[str, str | None] = {}
    for key, name in balies:
        seen.setdefault(key, name)
    if period is None:
        return [ReportRequest(key, period="latest", name=name) for key, name in seen.items()]
    return [ReportRequest(key, period[0], period[1], name=name) for key, name in seen.items()]


def manifest_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest line of one UiTPAS result."""
    request = result.request
    return {
        "balie": request.balie_consumer_key,
        "name": request.name,
        **result_record(result),
    }


async def _cmd_reports_fetch(args: argparse.Namespace) -> int:
    status = await fetch_batch(
        args,
        connection(args),
        lambda sandbox_balies: _requests(args, sandbox_balies),
        record=manifest_record,
    )
    if args.summarize:
        summary = await asyncio.to_thread(
            summarize_directory, Path(args.out), include_uid=args.include_uid
        )
        status = max(status, summary)
    return status


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``periods``, ``price``, ``report`` and ``reports fetch|summarize``."""
    periods = commands.add_parser("periods", parents=[common], help="list a balie's periods")
    periods.add_argument("--balie", action="append", help="balie consumer key")
    periods.set_defaults(handler=_cmd_periods)

    price = commands.add_parser("price", parents=[common], help="price of a UiTPAS card")
    price.add_argument("uitpas_number")
    price.add_argument(
        "--reason", default=PriceReason.FIRST_CARD.value, help="FIRST_CARD, CARD_UPGRADE, ..."
    )
    price.add_argument("--date-of-birth", type=iso_date)
    price.add_argument("--postal-code")
    price.add_argument("--voucher-number")
    price.add_argument("--balie", action="append", help="balie consumer key")
    price.set_defaults(handler=_cmd_price)

    report = commands.add_parser(
        "report", parents=[common], help="create, poll and download one balie's report"
    )
    report.add_argument("--balie", action="append", help="balie consumer key")
    report.add_argument("--period", default="latest", help="latest, 2024-Q1 or A..B")
    report.add_argument("--out", default=DEFAULT_OUT_DIR, help="destination directory")
    report.set_defaults(handler=_cmd_report)

    reports = commands.add_parser("reports", help="bulk report jobs")
    reports_commands = reports.add_subparsers(dest="reports_command", required=True)
    fetch = reports_commands.add_parser(
        "fetch",
        parents=[common],
        help="fetch the reports of many balies at once (resumable)",
        description="Create, poll and download the financial report of every balie, "
        "concurrently. Writes OUT/<balie>/<report>.zip and OUT/manifest.jsonl. Run it "
        "again with the same journal to resume after a crash: done reports are kept and "
        "started ones polled, not created again. Exit status 0: all done; 1: some failed; "
        "2: usage or configuration error.",
    )
    fetch.add_argument("--balie", action="append", help="balie consumer key (repeatable)")
    fetch.add_argument("--balies", help="file of balie keys: one a line, or CSV key,name")
    fetch.add_argument("--period", default="latest", help="latest, 2024-Q1 or A..B")
    add_batch_arguments(
        fetch,
        out_dir=DEFAULT_OUT_DIR,
        max_in_flight=DEFAULT_MAX_IN_FLIGHT,
        rate_help="requests per second, at most",
    )
    add_summarize_flags(fetch)
    fetch.set_defaults(handler=_cmd_reports_fetch)
    add_summarize_command(reports_commands, common)
