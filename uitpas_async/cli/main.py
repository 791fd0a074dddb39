"""The ``uitpas-async`` command: prices, periods, one report, or every balie's report at once.

Exit status: 0 when everything asked for was done, 1 when some reports failed,
2 for usage or configuration errors (missing credentials, bad period, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from uitpas_async import __version__
from uitpas_async.cli.finam import add_commands as add_finam_commands
from uitpas_async.cli.login import add_commands as add_login_commands
from uitpas_async.cli.summarize import (
    add_summarize_command,
    add_summarize_flags,
    summarize_directory,
)
from uitpas_async.engine.config import Limits, PollPolicy
from uitpas_async.engine.errors import ConfigurationError, InvalidArgumentError, UitpasError
from uitpas_async.engine.jobs import JobEvent, JobState
from uitpas_async.engine.orchestrator import ReportOrchestrator, ReportResult
from uitpas_async.engine.periods import validate_period
from uitpas_async.xml_api.backend import ReportRequest, UitpasBackend
from uitpas_async.xml_api.client import UitpasClient
from uitpas_async.xml_api.credential_store import resolve_credentials
from uitpas_async.xml_api.models import ENVIRONMENTS, PriceReason

__all__ = ["main", "parse_period"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_OUT_DIR = "uitpas-reports"
DEFAULT_SANDBOX_BALIES = 20
#: Sandbox reports take about this long, so a demo run finishes in seconds.
SANDBOX_GENERATION_MEDIAN = 1.0
SANDBOX_POLL = PollPolicy(initial_delay=0.5, multiplier=1.5, max_interval=5.0, timeout=300.0)
MANIFEST_NAME = "manifest.jsonl"

_QUARTER_RE = re.compile(r"^(?P<year>\d{4})-?Q(?P<quarter>[1-4])$", re.IGNORECASE)


# -- arguments ---------------------------------------------------------------------


def parse_period(text: str) -> tuple[date, date] | None:
    """Parse ``latest`` (None), ``2024-Q1`` or ``2024-01-01..2024-03-31``.

    Raises:
        InvalidArgumentError: none of those forms, or end before start.
    """
    value = text.strip()
    if value.lower() == "latest":
        return None
    quarter = _QUARTER_RE.match(value)
    if quarter:
        year, number = int(quarter["year"]), int(quarter["quarter"])
        start = date(year, 3 * number - 2, 1)
        end = (date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)) - timedelta(
            days=1
        )
        return start, end
    first, separator, last = value.partition("..")
    if separator:
        try:
            start, end = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
        except ValueError as exc:
            raise InvalidArgumentError(f"not a date range: {text!r} ({exc})") from exc
        return validate_period(start, end)
    raise InvalidArgumentError(
        f"unknown period {text!r}: use latest, 2024-Q1 or 2024-01-01..2024-03-31"
    )


def read_balies(path: Path) -> list[tuple[str, str | None]]:
    """Read balie keys from a file: one key a line, or CSV ``key,name``; ``#`` starts a comment.

    Raises:
        ConfigurationError: the file cannot be read or holds no keys.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigurationError(f"cannot read balies file {path}: {exc.strerror}") from exc
    balies: list[tuple[str, str | None]] = []
    for row in csv.reader(line for line in text.splitlines() if not line.lstrip().startswith("#")):
        cells = [cell.strip() for cell in row]
        if not cells or not cells[0]:
            continue
        if not balies and cells[0].lower() in ("key", "balie", "balieconsumerkey"):
            continue  # a header row
        balies.append((cells[0], cells[1] if len(cells) > 1 and cells[1] else None))
    if not balies:
        raise ConfigurationError(f"no balie keys in {path}")
    return balies


def _base_url(args: argparse.Namespace) -> str:
    if args.base_url:
        return str(args.base_url)
    if args.env:
        return ENVIRONMENTS[args.env]
    return os.environ.get("UITPAS_BASE_URL") or ENVIRONMENTS["test"]


@contextlib.asynccontextmanager
async def _connection(
    args: argparse.Namespace, *, sandbox_balies: int = DEFAULT_SANDBOX_BALIES
) -> AsyncIterator[tuple[UitpasClient, list[tuple[str, str | None]]]]:
    """Yield a client (and the sandbox's balies, if any) for the command's target."""
    limits = Limits(rate_limit=getattr(args, "rate", None))
    if args.sandbox is None:
        base_url = _base_url(args)
        # The four UITPAS_* variables win; otherwise what `uitpas-async login` saved.
        credentials = resolve_credentials(base_url).credentials
        async with UitpasClient(base_url, credentials, limits=limits) as client:
            yield client, []
        return
    from uitpas_async.xml_api.sandbox import Sandbox, SandboxConfig

    count = args.sandbox if isinstance(args.sandbox, int) and args.sandbox > 0 else sandbox_balies
    config = SandboxConfig(
        balies=count, generation_median=SANDBOX_GENERATION_MEDIAN, generation_sigma=0.5
    )
    async with (
        Sandbox(config) as sandbox,
        UitpasClient(
            sandbox.base_url, sandbox.credentials, limits=limits, poll=SANDBOX_POLL
        ) as client,
    ):
        _say(f"sandbox: {sandbox.base_url} with {len(sandbox.balies)} balies", err=True)
        yield client, [(balie.key, balie.name) for balie in sandbox.balies]


def _say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _first_balie(args: argparse.Namespace, sandbox_balies: list[tuple[str, str | None]]) -> str:
    if args.balie:
        return str(args.balie[0] if isinstance(args.balie, list) else args.balie)
    if sandbox_balies:
        return sandbox_balies[0][0]
    raise ConfigurationError("name a balie with --balie KEY")


# -- commands ----------------------------------------------------------------------


async def _cmd_periods(args: argparse.Namespace) -> int:
    async with _connection(args) as (client, sandbox_balies):
        balie = _first_balie(args, sandbox_balies)
        periods = await client.get_financial_report_periods(balie_consumer_key=balie)
    for period in periods:
        _say(f"{period.start.isoformat()}  {period.end.isoformat()}")
    return EXIT_OK


async def _cmd_price(args: argparse.Namespace) -> int:
    async with _connection(args) as (client, sandbox_balies):
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
    _say(f"price: {price.price}  reason: {reason}  kansenstatuut: {price.kansenstatuut}")
    if price.card_system is not None:
        _say(f"card system: {price.card_system.name} ({price.card_system.id})")
    if ages.age_from is not None or ages.age_to is not None:
        _say(f"ages: {ages.age_from if ages.age_from is not None else ''}-{ages.age_to or ''}")
    return EXIT_OK


async def _cmd_report(args: argparse.Namespace) -> int:
    period = parse_period(args.period)
    async with _connection(args) as (client, sandbox_balies):
        balie = _first_balie(args, sandbox_balies)
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
    _say(f"{report.path}  {report.size} bytes  sha256 {report.sha256}")
    return EXIT_OK


def _requests(
    args: argparse.Namespace, sandbox_balies: list[tuple[str, str | None]]
) -> list[ReportRequest]:
    balies: list[tuple[str, str | None]] = [(key, None) for key in args.balie or []]
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


def result_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest fields every provider shares: period, state, file, error."""
    report = result.report
    return {
        "start": result.start.isoformat() if result.start else None,
        "end": result.end.isoformat() if result.end else None,
        "state": result.state.value,
        "report_id": result.report_id,
        "path": str(report.path) if report else None,
        "sha256": report.sha256 if report else None,
        "bytes": report.size if report else None,
        "error_code": result.error.code if result.error else None,
        "error_message": result.error.message if result.error else None,
    }


def manifest_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest line of one UiTPAS result."""
    request = result.request
    return {
        "balie": request.balie_consumer_key,
        "name": request.name,
        **result_record(result),
    }


def write_manifest(
    results: Sequence[ReportResult],
    path: Path,
    record: Callable[[ReportResult], dict[str, Any]] = manifest_record,
) -> None:
    """Write ``manifest.jsonl`` atomically: one JSON object per request."""
    descriptor, temporary = tempfile.mkstemp(prefix=".manifest-", dir=path.parent)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(record(result), ensure_ascii=False) + "\n")
    os.replace(temporary, path)


class _Progress:
    """Counts jobs per state from orchestrator events; draws a bar or prints plain lines."""

    def __init__(self, total: int, *, stream: TextIO) -> None:
        self.total = total
        self.counts: Counter[JobState] = Counter({JobState.QUEUED: total})
        self._stream = stream
        self._bar: Any = None
        self._task: Any = None
        if stream.isatty():
            with contextlib.suppress(ImportError):
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                self._bar = Progress(
                    TextColumn("reports"),
                    BarColumn(bar_width=24),
                    MofNCompleteColumn(),
                    TextColumn("{task.description}"),
                    transient=False,
                )
                self._task = self._bar.add_task(self._describe(), total=total)

    def _describe(self) -> str:
        return "  ".join(
            f"{state.value} {self.counts[state]}" for state in JobState if self.counts[state]
        )

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: JobEvent) -> None:
        self.counts[event.previous] -= 1
        self.counts[event.state] += 1
        finished = self.counts[JobState.DONE] + self.counts[JobState.FAILED]
        if self._bar is not None:
            self._bar.update(self._task, completed=finished, description=self._describe())
        elif event.state.finished:
            label = event.request.label
            detail = (
                str(event.report.path)
                if event.report
                else (f"{event.error.code}: {event.error.message}" if event.error else "")
            )
            print(
                f"[{finished}/{self.total}] {event.state.value:<6} {label}  {detail}",
                file=self._stream,
                flush=True,
            )


def _summary(results: Sequence[ReportResult], stream: TextIO) -> None:
    counts = Counter(result.state.value for result in results)
    errors = Counter(result.error.code for result in results if result.error is not None)
    rows = [("done", counts["done"]), ("failed", counts["failed"])]
    rows += [(f"  {code}", count) for code, count in errors.most_common()]
    width = max(len(label) for label, _ in rows)
    print(f"{'state':<{width}}  reports", file=stream)
    for label, count in rows:
        print(f"{label:<{width}}  {count:>7}", file=stream)
    print(
        f"done {counts['done']}, failed {counts['failed']}, of {len(results)} reports",
        file=stream,
    )
    for result in results:
        if not result.ok and result.error is not None:
            label = result.request.label
            print(f"  failed {label}: {result.error.code}: {result.error.message}", file=stream)


async def _cmd_reports_fetch(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    journal = Path(args.journal) if args.journal else out_dir / "journal.sqlite"
    async with _connection(args) as (client, sandbox_balies):
        requests = _requests(args, sandbox_balies)
        with _Progress(len(requests), stream=sys.stderr) as progress:
            orchestrator = ReportOrchestrator(
                client,
                out_dir,
                journal=journal,
                max_in_flight=args.max_in_flight,
                on_event=progress,
            )
            results = await orchestrator.run(requests)
    write_manifest(results, out_dir / MANIFEST_NAME)
    _summary(results, sys.stdout)
    if orchestrator.possible_duplicate_creates:
        _say(
            f"note: {orchestrator.possible_duplicate_creates} create(s) may have started a "
            f"second report on the server (journal {journal}, table events)"
        )
    _say(f"manifest: {out_dir / MANIFEST_NAME}")
    status = EXIT_OK if all(result.ok for result in results) else EXIT_FAILED
    if args.summarize:
        summary = await asyncio.to_thread(
            summarize_directory, out_dir, include_uid=args.include_uid
        )
        status = max(status, summary)
    return status


async def _cmd_sandbox(args: argparse.Namespace) -> int:
    from uitpas_async.xml_api.sandbox import SandboxConfig, serve

    config = SandboxConfig(
        balies=args.balies, generation_median=args.median, generation_sigma=args.sigma
    )

    def ready(sandbox: Any) -> None:
        credentials = sandbox.credentials
        _say(f"UITPAS_BASE_URL={sandbox.base_url}")
        _say(f"UITPAS_CONSUMER_KEY={credentials.consumer_key}")
        _say(f"UITPAS_CONSUMER_SECRET={credentials.consumer_secret}")
        _say(f"UITPAS_TOKEN={credentials.token}")
        _say(f"UITPAS_TOKEN_SECRET={credentials.token_secret}")
        _say("balies:")
        for balie in sandbox.balies:
            _say(f"  {balie.key}  {balie.name}")
        _say("serving until interrupted (Ctrl-C)", err=True)

    await serve(config, args.host, args.port, ready=ready)
    return EXIT_OK


# -- parser ------------------------------------------------------------------------


def _sandbox_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("the sandbox needs at least one balie")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``uitpas-async``."""
    common = argparse.ArgumentParser(add_help=False)
    target = common.add_argument_group("target")
    target.add_argument("--env", choices=sorted(ENVIRONMENTS), help="UiTPAS environment")
    target.add_argument("--base-url", help="API prefix URL (default: $UITPAS_BASE_URL or test)")
    target.add_argument(
        "--sandbox",
        nargs="?",
        type=_sandbox_count,
        const=DEFAULT_SANDBOX_BALIES,
        default=None,
        metavar="N",
        help="run against an in-process sandbox (with N balies) instead; no configuration needed",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log every request")

    parser = argparse.ArgumentParser(
        prog="uitpas-async",
        description="Fetch UiTPAS financial reports and prices. Credentials come from "
        "UITPAS_CONSUMER_KEY, UITPAS_CONSUMER_SECRET, UITPAS_TOKEN and UITPAS_TOKEN_SECRET "
        "when all four are set, else from `uitpas-async login` for the environment.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    periods = commands.add_parser("periods", parents=[common], help="list a balie's periods")
    periods.add_argument("--balie", action="append", help="balie consumer key")
    periods.set_defaults(handler=_cmd_periods)

    price = commands.add_parser("price", parents=[common], help="price of a UiTPAS card")
    price.add_argument("uitpas_number")
    price.add_argument(
        "--reason", default=PriceReason.FIRST_CARD.value, help="FIRST_CARD, CARD_UPGRADE, ..."
    )
    price.add_argument("--date-of-birth", type=_iso_date)
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
    fetch.add_argument("--out", default=DEFAULT_OUT_DIR, help="destination directory")
    fetch.add_argument("--journal", help="journal file (default: OUT/journal.sqlite)")
    fetch.add_argument(
        "--max-in-flight", type=_positive_int, default=50, help="reports generating at once"
    )
    fetch.add_argument("--rate", type=_positive_float, help="requests per second, at most")
    add_summarize_flags(fetch)
    fetch.set_defaults(handler=_cmd_reports_fetch)
    add_summarize_command(reports_commands, common)

    add_finam_commands(commands, common)
    add_login_commands(commands, common, base_url_of=_base_url)

    sandbox = commands.add_parser("sandbox", help="serve the sandbox and print its credentials")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--balies", type=_sandbox_count, default=DEFAULT_SANDBOX_BALIES)
    sandbox.add_argument("--median", type=_positive_float, default=5.0, help="generation seconds")
    sandbox.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma")
    sandbox.set_defaults(handler=_cmd_sandbox, sandbox=None, verbose=False)
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
        _say(f"uitpas-async: {exc.message}", err=True)
        return EXIT_USAGE
    except UitpasError as exc:
        _say(f"uitpas-async: {type(exc).__name__}: {exc.message}", err=True)
        return EXIT_FAILED
    except OSError as exc:
        # The output directory or the manifest cannot be written: a setup problem.
        _say(f"uitpas-async: cannot write {exc.filename or 'output'}: {exc.strerror}", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("uitpas-async: interrupted; run the same command again to resume", err=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
