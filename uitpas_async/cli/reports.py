"""The UiTPAS XML API commands: ``periods``, ``price``, ``report`` and ``reports fetch``.

``reports fetch`` fetches every balie's report at once, resumably, and can total
them afterwards (``--summarize``, as ``reports summarize`` does). Every command checks
its arguments (period, files, reason) before it makes any call. Exit status 0: all
done; 1: some failed; 2: usage or configuration error, or nothing can work.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from datetime import date
from pathlib import Path
from typing import Any

import attrs

from uitpas_async.cli import v4
from uitpas_async.cli.args import (
    add_command_group,
    iso_date,
    parse_period,
    period_request,
    read_balies,
    unique_keys,
)
from uitpas_async.cli.batch import add_batch_arguments, fetch_batch
from uitpas_async.cli.output import EXIT_OK, print_json, result_record, say
from uitpas_async.cli.summarize import (
    add_summarize_command,
    add_summarize_flags,
    summarize_directory,
    summary_document,
)
from uitpas_async.cli.target import Balies, connection, first_balie, stop_hint
from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.engine.orchestrator import ReportResult
from uitpas_async.engine.periods import period_label
from uitpas_async.engine.storage import name_for_period
from uitpas_async.xml_api.backend import ReportRequest, UitpasBackend
from uitpas_async.xml_api.models import AgeRange, PriceReason

__all__ = ["add_commands", "manifest_record", "price_reason"]

DEFAULT_OUT_DIR = "uitpas-reports"
DEFAULT_MAX_IN_FLIGHT = 50
_PERIOD_HELP = "latest (each balie's last completed period), 2024-Q1, or 2024-01-01..2024-03-31"
_REASONS = ", ".join(reason.value for reason in PriceReason)


def price_reason(text: str) -> PriceReason:
    """Parse a price reason in any case (``first_card`` too); refuse unknown ones."""
    try:
        return PriceReason(text.strip().upper().replace("-", "_"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a reason: {text!r}; use one of {_REASONS}") from None


def _ages(ages: AgeRange) -> str | None:
    """Return ``12 to 17``, ``up to 17``, ``18 and older``, or None for every age."""
    low, high = ages.age_from, ages.age_to
    if low is None and high is None:
        return None
    if low is None:
        return f"up to {high}"
    if high is None:
        return f"{low} and older"
    return f"{low} to {high}"


async def _cmd_periods(args: argparse.Namespace) -> int:
    if v4.uses_v4(args):
        return await v4.cmd_periods(args)
    async with connection(args) as (client, sandbox_balies):
        balie = first_balie(args, sandbox_balies)
        periods = await client.get_financial_report_periods(balie_consumer_key=balie)
    rows = [(period_label(p.start.date(), p.end.date()), p) for p in periods]
    if args.json:
        print_json(
            [
                {"period": label, "start": p.start.isoformat(), "end": p.end.isoformat()}
                for label, p in rows
            ]
        )
        return EXIT_OK
    width = max((len(label) for label, _ in rows), default=0)
    for label, period in rows:
        # The first column is what --period takes.
        say(f"{label:<{width}}  {period.start.isoformat()}  {period.end.isoformat()}")
    return EXIT_OK


async def _cmd_price(args: argparse.Namespace) -> int:
    async with connection(args) as (client, sandbox_balies):
        balie = args.balie[0] if args.balie else (sandbox_balies[0][0] if sandbox_balies else None)
        price = await client.get_uitpas_price(
            args.uitpas_number,
            args.reason,
            date_of_birth=args.date_of_birth,
            postal_code=args.postal_code,
            voucher_number=args.voucher_number,
            balie_consumer_key=balie,
        )
    reason = price.reason.value if isinstance(price.reason, PriceReason) else price.reason
    ages = _ages(price.age_range)
    system = price.card_system
    if args.json:
        print_json(
            {
                "price": str(price.price),
                "reason": reason,
                "kansenstatuut": price.kansenstatuut,
                "card_system": attrs.asdict(system) if system is not None else None,
                "age_from": price.age_range.age_from,
                "age_to": price.age_range.age_to,
            }
        )
        return EXIT_OK
    say(f"price: {price.price}  reason: {reason}  kansenstatuut: {price.kansenstatuut}")
    if system is not None:
        say(f"card system: {system.name} ({system.id})")
    if ages is not None:
        say(f"ages: {ages}")
    return EXIT_OK


async def _cmd_report(args: argparse.Namespace) -> int:
    if v4.uses_v4(args):
        return await v4.cmd_report(args)
    period = parse_period(args.period)
    async with connection(args) as (client, sandbox_balies):
        balie = first_balie(args, sandbox_balies)
        request = period_request(ReportRequest, balie, period)
        resolved = await UitpasBackend(client).resolve_request(request)
        assert resolved.start is not None
        assert resolved.end is not None
        # The same layout as reports fetch: OUT/<balie>/<file>_<period>.
        report = await client.fetch_financial_report(
            resolved.start, resolved.end, Path(args.out) / request.label, balie_consumer_key=balie
        )
        report = name_for_period(report, resolved.start, resolved.end)
    say(f"{report.path}  {report.size} bytes  sha256 {report.sha256}")
    return EXIT_OK


@attrs.frozen
class _Plan:
    """What ``reports fetch`` will ask for, checked before any call."""

    balies: Balies
    period: tuple[date, date] | None

    def requests(self, sandbox_balies: Balies) -> list[ReportRequest]:
        """Return one request per balie (the sandbox's when none was named)."""
        balies = self.balies or sandbox_balies
        if not balies:
            raise ConfigurationError("name balies with --balie KEY (repeatable) or --balies FILE")
        if self.period is None:
            return [ReportRequest(key, period="latest", name=name) for key, name in balies]
        start, end = self.period
        return [ReportRequest(key, start, end, name=name) for key, name in balies]


def _plan(args: argparse.Namespace) -> _Plan:
    """Check the period and read the balies, before any I/O.

    Raises:
        InvalidArgumentError: a bad or future period.
        ConfigurationError: an unreadable balies file, or no balie at all.
    """
    period = parse_period(args.period)
    named: list[tuple[str, str | None, str]] = [(key, None, "--balie") for key in args.balie or []]
    if args.balies:
        path = Path(args.balies)
        named += [(key, name, path.name) for key, name in read_balies(path)]
    names: dict[str, str | None] = {}
    for key, name, _ in named:
        names[key] = names.get(key) or name
    keys = unique_keys(((key, where) for key, _, where in named), noun="balie")
    if not keys and args.sandbox is None:
        raise ConfigurationError("name balies with --balie KEY (repeatable) or --balies FILE")
    return _Plan([(key, names[key]) for key in keys], period)


def manifest_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest line of one UiTPAS result."""
    request = result.request
    return {
        "balie": request.balie_consumer_key,
        "name": request.name,
        **result_record(result),
    }


async def _cmd_reports_fetch(args: argparse.Namespace) -> int:
    totals = functools.partial(
        summary_document, Path(args.out), include_uid=args.include_uid, csv_dialect=args.csv_dialect
    )
    # With --json the totals go inside the fetch's document: stdout holds one.
    nested = totals if args.summarize and args.json else None
    if v4.uses_v4(args):
        status = await v4.cmd_fetch(args, nested_summary=nested)
    else:
        plan = _plan(args)
        status = await fetch_batch(
            args,
            connection(args),
            plan.requests,
            record=manifest_record,
            hint=stop_hint(args),
            nested_summary=nested,
        )
    if args.summarize and not args.json:
        summary = await asyncio.to_thread(
            summarize_directory,
            Path(args.out),
            include_uid=args.include_uid,
            csv_dialect=args.csv_dialect,
        )
        status = max(status, summary)
    return status


_FETCH_EXAMPLES = """\
examples:
  uitpas-async reports fetch --sandbox 5
  uitpas-async reports fetch --env prod --balies balies.csv --period 2024-Q1 --summarize
  uitpas-async reports fetch --env prod --balie KEY-1 --balie KEY-2 --out q1 --json

A balies file holds one key a line, or CSV (",", ";" or tab) with the key first and
the balie's name second; a header row and # comments are skipped. UTF-8 or cp1252.
"""


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``periods``, ``price``, ``report`` and ``reports fetch|summarize``."""
    periods = commands.add_parser(
        "periods",
        parents=[common],
        help="list a balie's completed periods (pasteable into --period)",
        description="List a balie's completed financial reporting periods, newest first. "
        "The first column is what --period takes.",
        epilog="example:\n  uitpas-async periods --env prod --balie KEY --json\n",
    )
    periods.add_argument("--balie", action="append", metavar="KEY", help="balie consumer key")
    periods.add_argument("--json", action="store_true", help="print the periods as JSON")
    v4.add_api_arguments(periods)
    v4.add_organizer_arguments(periods, many=False)
    periods.set_defaults(handler=_cmd_periods)

    price = commands.add_parser(
        "price",
        parents=[common],
        help="price of a UiTPAS card",
        description="Ask what a UiTPAS card costs for a passholder and a reason.",
        epilog="example:\n  uitpas-async price 0934000185108 --reason CARD_UPGRADE "
        "--date-of-birth 2010-01-01 --sandbox\n",
    )
    price.add_argument("uitpas_number", metavar="CARD_NUMBER", help="the UiTPAS card number")
    price.add_argument(
        "--reason",
        type=price_reason,
        default=PriceReason.FIRST_CARD,
        metavar="REASON",
        help=f"why the card is sold, in any case: {_REASONS} (default: FIRST_CARD)",
    )
    price.add_argument(
        "--date-of-birth",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="the passholder's date of birth (prices depend on age)",
    )
    price.add_argument("--postal-code", metavar="CODE", help="the passholder's postal code")
    price.add_argument(
        "--voucher-number", metavar="NUMBER", help="a voucher that changes the price"
    )
    price.add_argument("--balie", action="append", metavar="KEY", help="balie consumer key")
    price.add_argument("--json", action="store_true", help="print the price as JSON")
    price.set_defaults(handler=_cmd_price)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="create, poll and download one balie's report",
        description="Create, poll and download one balie's report into "
        "OUT/<balie>/<file>_<period>, as reports fetch does.",
        epilog="example:\n  uitpas-async report --env prod --balie KEY --period 2024-Q1\n",
    )
    report.add_argument("--balie", action="append", metavar="KEY", help="balie consumer key")
    report.add_argument("--period", default="latest", help=_PERIOD_HELP)
    report.add_argument(
        "--out", default=DEFAULT_OUT_DIR, metavar="DIR", help="destination directory"
    )
    v4.add_api_arguments(report)
    v4.add_organizer_arguments(report, many=False)
    report.set_defaults(handler=_cmd_report)

    reports_commands = add_command_group(
        commands,
        "reports",
        help="bulk report jobs: fetch, summarize",
        description="Bulk report jobs.",
        dest="reports_command",
    )
    fetch = reports_commands.add_parser(
        "fetch",
        parents=[common],
        help="fetch the reports of many balies at once (resumable)",
        description="Create, poll and download the financial report of every balie, "
        "concurrently. Writes OUT/<balie>/<report>_<period>.zip and adds a line per "
        "report to OUT/manifest.jsonl (other runs' lines, other periods and providers "
        "stay). Run it again with the same journal to resume after a crash or Ctrl-C: "
        "done reports are kept and started ones polled, not created again.\n\n"
        "Exit status 0: all done; 1: some failed; 2: usage or configuration error, or "
        "the first calls showed that nothing can work; 130: interrupted.",
        epilog=_FETCH_EXAMPLES,
    )
    fetch.add_argument(
        "--balie", action="append", metavar="KEY", help="balie consumer key (repeatable)"
    )
    fetch.add_argument("--balies", metavar="FILE", help="file of balie keys (see below)")
    fetch.add_argument("--period", default="latest", help=_PERIOD_HELP)
    v4.add_api_arguments(fetch)
    v4.add_organizer_arguments(fetch, many=True)
    add_batch_arguments(
        fetch,
        out_dir=DEFAULT_OUT_DIR,
        max_in_flight=DEFAULT_MAX_IN_FLIGHT,
        rate_help="requests per second, at most (default: no limit)",
    )
    add_summarize_flags(fetch)
    fetch.set_defaults(handler=_cmd_reports_fetch)
    add_summarize_command(reports_commands, common)
