"""``uitpas-async reports summarize DIR``: total what each government owes, per balie.

Reads ``DIR/manifest.jsonl`` (which every ``reports fetch`` into DIR adds to) and every
done UiTPAS report it lists that lies inside DIR (a path outside DIR is refused, never
read), then writes, each atomically:

- ``DIR/summary/lines.csv``: every line, with its balie and period;
- ``DIR/summary/totals.csv``: per balie, period and government, lines, total price,
  contribution, the sheets' own stated Total and whether the two agree;
- ``DIR/summary/problems.csv``: every report that could not be used or did not add up,

and prints a short table. The UID column identifies a passholder, so it is left out of
every output unless ``--include-uid`` is given. Exit status 0: every sheet cross-checks;
1: a Total mismatch, an unreadable or unfetched report (each named); 2: no manifest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import attrs

from uitpas_async.cli.args import global_options, positive_int
from uitpas_async.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, MANIFEST_NAME, print_json
from uitpas_async.engine.manifest import read_manifest
from uitpas_async.engine.periods import period_label
from uitpas_async.reports.reader import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    ArchiveTooLargeError,
    FinancialReport,
    GovernmentTotal,
    ReportFileError,
    ReportLine,
    aggregate_reports,
    parse_financial_report,
)

__all__ = [
    "LINE_COLUMNS",
    "TOTAL_COLUMNS",
    "add_summarize_command",
    "add_summarize_flags",
    "summarize_directory",
]

SUMMARY_DIR = "summary"
LINES_NAME = "lines.csv"
TOTALS_NAME = "totals.csv"
PROBLEMS_NAME = "problems.csv"
UID_HELP = (
    "also write each line's UID; it identifies a passholder, so every output leaves it "
    "out unless this flag is given"
)

#: Columns of lines.csv; ``uid`` only with include_uid.
LINE_COLUMNS = (
    "balie",
    "balie_name",
    "period_start",
    "period_end",
    "report",
    "workbook",
    "government",
    "organiser",
    "sold_at",
    "uid",
    "municipality",
    "card_system",
    "coupon",
    "group_pass",
    "event",
    "event_from",
    "event_to",
    "total_price",
    "contribution",
)
TOTAL_COLUMNS = (
    "balie",
    "balie_name",
    "period_start",
    "period_end",
    "government",
    "lines",
    "total_price",
    "contribution",
    "stated_total",
    "check",
)
PROBLEM_COLUMNS = ("kind", "balie", "report", "detail")
#: Characters that make a spreadsheet read a text cell as a formula (CSV injection):
#: event and organiser names come from thousands of organisers, and accountants open
#: these files in Excel.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@attrs.frozen
class _Entry:
    """One done report of the manifest, read."""

    balie: str
    name: str
    start: str
    end: str
    path: Path
    report: FinancialReport


@attrs.frozen
class _Problem:
    """Something that keeps the summary from being complete and correct."""

    #: ``mismatch``, ``unreadable``, ``not-fetched`` or ``manifest``.
    kind: str
    balie: str
    report: str
    detail: str


# -- reading -----------------------------------------------------------------------


def _read_manifest(path: Path) -> tuple[list[dict[str, Any]], list[_Problem]]:
    read = read_manifest(path)
    problems = [_Problem("manifest", "", str(path), problem) for problem in read.problems]
    # Other providers' lines (Finam, ...) share the manifest; they are not UiTPAS reports.
    records = [
        record
        for record in read.records
        if record.get("provider", "uitpas") == "uitpas" and "balie" in record
    ]
    return records, problems


def _inside(directory: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False


def _locate(directory: Path, recorded: str) -> Path:
    """Find a manifest path inside DIR: as written, or under DIR when DIR was moved.

    Raises:
        ReportFileError: the manifest names a file outside DIR (it is never read).
    """
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [path, directory / path]
    # fetch lays reports out as OUT/<balie>/<file>; that survives moving OUT.
    candidates.append(directory / path.parent.name / path.name)
    inside = [candidate for candidate in candidates if _inside(directory, candidate)]
    found = next((candidate for candidate in inside if candidate.is_file()), None)
    if found is not None:
        return found
    if path.is_file():
        raise ReportFileError(f"outside {directory}: not summarized", path=recorded)
    return inside[-1] if inside else directory / path.name


def _read_entry(
    record: dict[str, Any], directory: Path, limits: ArchiveLimits
) -> tuple[Path, FinancialReport]:
    """Read one listed report, checking its bytes against the manifest's SHA-256."""
    path = _locate(directory, str(record.get("path") or ""))
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_total_bytes + 1)
    except OSError as exc:
        raise ReportFileError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc
    if len(data) > limits.max_total_bytes:
        raise ArchiveTooLargeError(
            f"archive is over the {limits.max_total_bytes}-byte limit", path=str(path)
        )
    expected = record.get("sha256")
    # A file changed since the download is not the report the server sent.
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise ReportFileError("SHA-256 differs from the manifest's", path=str(path))
    return path, parse_financial_report(data, source=str(path), limits=limits)


# -- writing -----------------------------------------------------------------------


def _safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _text(value: str | None) -> str:
    return "" if value is None else _safe(value)


@contextlib.contextmanager
def _atomic_csv(path: Path, header: Sequence[str]) -> Iterator[Any]:
    """Yield a csv writer on a temporary file that replaces ``path`` only when complete."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
    try:
        # utf-8-sig: Excel, where accountants open these, reads UTF-8 only with a BOM.
        with os.fdopen(descriptor, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            yield writer
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _line_row(entry: _Entry, workbook: str, line: ReportLine, include_uid: bool) -> list[str]:
    row = [
        _text(entry.balie),
        _text(entry.name),
        entry.start,
        entry.end,
        _text(entry.path.name),
        _text(workbook),
        _text(line.government),
        _text(line.organiser),
        line.sold_at.isoformat(sep=" "),
    ]
    if include_uid:
        row.append(_text(line.uid))
    row += [
        _text(line.municipality),
        _text(line.card_system),
        _text(line.coupon),
        _text(line.group_pass),
        _text(line.event),
        line.event_from.isoformat() if line.event_from else "",
        line.event_to.isoformat() if line.event_to else "",
        str(line.total_price),
        str(line.contribution),
    ]
    return row


#: A government's total for one balie in one period: (start, end, total).
_PeriodTotal = tuple[str, str, GovernmentTotal]


def _totals_per_period(entries: Sequence[_Entry]) -> list[_PeriodTotal]:
    """Total per period (oldest first), then per balie and government."""
    periods = sorted({(entry.start, entry.end) for entry in entries})
    return [
        (start, end, total)
        for start, end in periods
        for total in aggregate_reports(
            (entry.balie, entry.report)
            for entry in entries
            if (entry.start, entry.end) == (start, end)
        )
    ]


def _period(start: str, end: str) -> str:
    try:
        return period_label(date.fromisoformat(start), date.fromisoformat(end))
    except ValueError:
        return f"{start}..{end}"


def _write_outputs(
    out: Path,
    entries: Sequence[_Entry],
    totals: Sequence[_PeriodTotal],
    names: dict[str, str],
    problems: Sequence[_Problem],
    include_uid: bool,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    columns = [c for c in LINE_COLUMNS if include_uid or c != "uid"]
    with _atomic_csv(out / LINES_NAME, columns) as writer:
        for entry in entries:
            for sheet in entry.report.sheets:
                for line in sheet.lines:
                    writer.writerow(_line_row(entry, sheet.member, line, include_uid))
    with _atomic_csv(out / TOTALS_NAME, TOTAL_COLUMNS) as writer:
        for start, end, total in totals:
            writer.writerow(
                [
                    _text(total.balie),
                    _text(names.get(total.balie, "")),
                    start,
                    end,
                    _text(total.government),
                    total.lines,
                    total.total_price,
                    total.contribution,
                    total.stated_total,
                    "ok" if total.balanced else "MISMATCH",
                ]
            )
    # Always written, empty when all is well, so an old file never tells an old story.
    with _atomic_csv(out / PROBLEMS_NAME, PROBLEM_COLUMNS) as writer:
        for problem in problems:
            writer.writerow(
                [problem.kind, _text(problem.balie), _text(problem.report), _text(problem.detail)]
            )


def _print_table(totals: Sequence[_PeriodTotal], names: dict[str, str], stream: TextIO) -> None:
    header = ("period", "balie", "government", "lines", "total price", "contribution", "check")
    rows = [
        (
            _period(start, end),
            names.get(total.balie) or total.balie,
            total.government,
            str(total.lines),
            str(total.total_price),
            str(total.contribution),
            "ok" if total.balanced else f"MISMATCH: Total rows say {total.stated_total}",
        )
        for start, end, total in totals
    ]
    for start, end in dict.fromkeys((start, end) for start, end, _ in totals):
        # One total per period: periods are never added up into one sum.
        these = [total for s, e, total in totals if (s, e) == (start, end)]
        rows.append(
            (
                _period(start, end),
                "all",
                "",
                str(sum(total.lines for total in these)),
                str(sum((total.total_price for total in these), Decimal("0.00"))),
                str(sum((total.contribution for total in these), Decimal("0.00"))),
                "",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {3, 4, 5}  # numbers line up on the right

    def show(row: Sequence[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    print(show(header), file=stream)
    for row in rows:
        print(show(row), file=stream)


# -- the command -------------------------------------------------------------------


def _collect(
    directory: Path, records: Iterable[dict[str, Any]], limits: ArchiveLimits
) -> tuple[list[_Entry], list[_Problem], list[str]]:
    entries: list[_Entry] = []
    problems: list[_Problem] = []
    layout_warnings: dict[str, int] = {}
    for record in records:
        balie = str(record.get("balie") or "")
        if record.get("state") != "done":
            detail = (
                f"{record.get('state')}: {record.get('error_code')}: {record.get('error_message')}"
            )
            problems.append(_Problem("not-fetched", balie, "", detail))
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                path, report = _read_entry(record, directory, limits)
            except ReportFileError as exc:
                problems.append(
                    _Problem("unreadable", balie, str(record.get("path")), f"{exc.code}: {exc}")
                )
                continue
        for warning in caught:
            # The same drift in 1,000 reports is one message with a count, not 1,000 lines.
            text = str(warning.message).split(": ", 1)[-1]
            layout_warnings[text] = layout_warnings.get(text, 0) + 1
        entry = _Entry(
            balie,
            str(record.get("name") or ""),
            str(record.get("start") or ""),
            str(record.get("end") or ""),
            path,
            report,
        )
        entries.append(entry)
        for mismatch in report.mismatches:
            problems.append(_Problem("mismatch", balie, str(path), str(mismatch)))
    notes = [f"{text} (in {count} reports)" for text, count in layout_warnings.items()]
    return entries, problems, notes


def summarize_directory(
    directory: Path,
    *,
    include_uid: bool = False,
    stream: TextIO | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    as_json: bool = False,
) -> int:
    """Summarize the reports of ``directory/manifest.jsonl``; return the exit status.

    ``as_json`` prints the totals and problems as one JSON document instead of a table.
    """
    directory = Path(directory)
    stream = stream or sys.stdout  # looked up now, so a redirected stdout is honoured
    manifest = directory / MANIFEST_NAME
    if not manifest.is_file():
        print(f"uitpas-async: no {MANIFEST_NAME} in {directory} (run reports fetch)", file=stream)
        return EXIT_USAGE
    records, problems = _read_manifest(manifest)
    entries, report_problems, notes = _collect(directory, records, limits)
    problems += report_problems
    totals = _totals_per_period(entries)
    names = {entry.balie: entry.name for entry in entries if entry.name}
    out = directory / SUMMARY_DIR
    _write_outputs(out, entries, totals, names, problems, include_uid)
    sheets = sum(len(entry.report.sheets) for entry in entries)
    if as_json:
        print_json(_summary_data(totals, names, problems, notes, len(entries), sheets, out), stream)
        return EXIT_FAILED if problems else EXIT_OK

    _print_table(totals, names, stream)
    for note in notes:
        print(f"warning: {note}", file=stream)
    for problem in problems:
        where = " ".join(part for part in (problem.balie, problem.report) if part)
        print(f"{problem.kind.upper()}: {where}: {problem.detail}", file=stream)
    mismatches = sum(problem.kind == "mismatch" for problem in problems)
    print(
        f"{len(entries)} reports, {sheets} sheets, {mismatches} Total mismatches, "
        f"{len(problems) - mismatches} other problems; written to {out}",
        file=stream,
    )
    if not include_uid:
        print("UIDs left out (pass --include-uid to write them)", file=stream)
    return EXIT_FAILED if problems else EXIT_OK


def _summary_data(
    totals: Sequence[_PeriodTotal],
    names: dict[str, str],
    problems: Sequence[_Problem],
    notes: Sequence[str],
    reports: int,
    sheets: int,
    out: Path,
) -> dict[str, Any]:
    """Return what ``--json`` prints: totals per period, problems, counts (money as text)."""
    periods: dict[tuple[str, str], list[GovernmentTotal]] = {}
    for start, end, total in totals:
        periods.setdefault((start, end), []).append(total)
    return {
        "reports": reports,
        "sheets": sheets,
        "periods": [
            {
                "period": _period(start, end),
                "start": start,
                "end": end,
                "lines": sum(total.lines for total in these),
                "total_price": str(sum((t.total_price for t in these), Decimal("0.00"))),
                "contribution": str(sum((t.contribution for t in these), Decimal("0.00"))),
                "totals": [
                    {
                        "balie": total.balie,
                        "balie_name": names.get(total.balie),
                        "government": total.government,
                        "lines": total.lines,
                        "total_price": str(total.total_price),
                        "contribution": str(total.contribution),
                        "stated_total": str(total.stated_total),
                        "check": "ok" if total.balanced else "MISMATCH",
                    }
                    for total in these
                ],
            }
            for (start, end), these in periods.items()
        ],
        "problems": [attrs.asdict(problem) for problem in problems],
        "warnings": list(notes),
        "written_to": str(out),
    }


async def _cmd_summarize(args: argparse.Namespace) -> int:
    limits = ArchiveLimits(max_total_bytes=args.max_report_bytes)
    # Reading workbooks is CPU work; a thread keeps the event loop of main() responsive.
    return await asyncio.to_thread(
        summarize_directory,
        Path(args.dir),
        include_uid=args.include_uid,
        limits=limits,
        as_json=args.json,
    )


def add_summarize_flags(fetch: argparse.ArgumentParser) -> None:
    """Add ``--summarize`` and ``--include-uid`` to ``reports fetch``."""
    fetch.add_argument(
        "--summarize",
        action="store_true",
        help="after fetching, total the reports as 'reports summarize OUT' does",
    )
    fetch.add_argument("--include-uid", action="store_true", help=UID_HELP)


def add_summarize_command(reports_commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``reports summarize DIR`` to the ``reports`` subcommands."""
    # ``common`` holds target options (--env, --sandbox, ...); summarize reads files
    # only, so it takes none of them, only -v and -q.
    del common
    summarize = reports_commands.add_parser(
        "summarize",
        parents=[global_options()],
        help="total downloaded reports per balie and government",
        description="Read DIR/manifest.jsonl and every done report it lists; write "
        "DIR/summary/lines.csv (every line, with its balie and period), "
        "DIR/summary/totals.csv (per balie and government: lines, total price, "
        "contribution, the sheets' stated Total, check) and DIR/summary/problems.csv, "
        "and print a table. Every sheet's Total row is checked against its lines. "
        "Privacy: the UID column identifies a passholder and is left out of every "
        "output unless --include-uid is given. Exit status 0: all sheets cross-check; "
        "1: a Total mismatch, or an unreadable or unfetched report; 2: no manifest.",
        epilog="example:\n  uitpas-async reports summarize uitpas-reports --json\n",
    )
    summarize.add_argument("dir", metavar="DIR", help="the --out directory of reports fetch")
    summarize.add_argument("--include-uid", action="store_true", help=UID_HELP)
    summarize.add_argument(
        "--max-report-bytes",
        type=positive_int,
        default=DEFAULT_LIMITS.max_total_bytes,
        metavar="N",
        help="refuse a report zip larger than N bytes, or expanding past N (zip bombs); "
        "default %(default)s",
    )
    summarize.add_argument("--json", action="store_true", help="print the summary as JSON")
    summarize.set_defaults(handler=_cmd_summarize)
