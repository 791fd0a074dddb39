"""``uitpas-async reports summarize DIR``: total what each government owes, per period.

Reads ``DIR/manifest.jsonl`` (which every ``reports fetch`` into DIR adds to) and every
done UiTPAS report it lists that lies inside DIR (a path outside DIR is refused, never
read), then writes, each atomically and owner-only (see
:mod:`uitpas_async.cli.summary_files`):

- ``DIR/summary/lines.csv``: every line, with its balie and period;
- ``DIR/summary/totals.csv``: per period, government and balie: lines, total price,
  contribution, the sheets' own stated Total and whether the two agree; after each
  government's balies, its total over all balies;
- ``DIR/summary/problems.csv``: every report that could not be used or did not add up;
- ``DIR/summary/summary.xlsx``: the same tables as a workbook a finance officer opens
  (per government and period, a chart, per balie, every line, problems),

and prints what each government is owed per period. The UID column identifies a
passholder, so it is left out of every output unless ``--include-uid`` is given. Exit
status 0: every sheet cross-checks; 1: a Total mismatch, an unreadable or unfetched
report (each named); 2: no manifest.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import warnings
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import attrs

from uitpas_async.cli import summary_tables
from uitpas_async.cli.args import global_options, positive_int
from uitpas_async.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, MANIFEST_NAME, print_json
from uitpas_async.cli.summary_files import (
    CSV_DIALECTS,
    DEFAULT_CSV_DIALECT,
    write_summary_files,
)
from uitpas_async.cli.summary_tables import (
    PeriodTotal,
    SummaryEntry,
    SummaryProblem,
    SummaryTables,
    build_tables,
    period_label,
)
from uitpas_async.engine.filenames import escape_for_terminal
from uitpas_async.engine.manifest import read_manifest
from uitpas_async.reports.reader import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    ArchiveTooLargeError,
    FinancialReport,
    GovernmentTotal,
    ReportFileError,
    parse_financial_report,
)
from uitpas_async.v4.backend import PROVIDER as V4_PROVIDER
from uitpas_async.xml_api.backend import UitpasBackend

__all__ = [
    "LINE_COLUMNS",
    "TOTAL_COLUMNS",
    "add_csv_dialect_flag",
    "add_summarize_command",
    "add_summarize_flags",
    "summarize_directory",
    "summary_document",
]

SUMMARY_DIR = "summary"
#: Providers whose reports are UiTPAS financial reports (the XML API and API 4.0).
UITPAS_PROVIDERS = frozenset({UitpasBackend.provider, V4_PROVIDER})
UID_HELP = (
    "also write each line's UID; it identifies a passholder, so every output leaves it "
    "out unless this flag is given"
)

#: Columns of lines.csv; ``uid`` only with include_uid.
LINE_COLUMNS = tuple(column.name for column in summary_tables.LINE_COLUMNS)
#: Columns of totals.csv: per period, government and balie, then each government's total.
TOTAL_COLUMNS = tuple(column.name for column in summary_tables.TOTAL_COLUMNS)
PROBLEM_COLUMNS = tuple(column.name for column in summary_tables.PROBLEM_COLUMNS)


# -- reading -----------------------------------------------------------------------


def _read_manifest(path: Path) -> tuple[list[dict[str, Any]], list[SummaryProblem]]:
    read = read_manifest(path)
    problems = [SummaryProblem("manifest", "", str(path), problem) for problem in read.problems]
    # Other providers' lines (Finam, ...) share the manifest; they are not UiTPAS reports.
    records = [
        record
        for record in read.records
        if record.get("provider", UitpasBackend.provider) in UITPAS_PROVIDERS and "balie" in record
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


def _print_table(tables: SummaryTables, stream: TextIO) -> None:
    """Print what each government is owed per period, and the grand total."""
    header = ("government", "period", "balies", "lines", "total price", "contribution", "check")

    def cells(total: GovernmentTotal) -> tuple[str, str, str]:
        return (str(total.lines), str(total.total_price), str(total.contribution))

    rows = [
        (
            row.government,
            period_label(row.start, row.end),
            str(row.balies),
            *cells(row.total),
            "ok" if row.total.balanced else f"MISMATCH: Total rows say {row.total.stated_total}",
        )
        for row in tables.government_totals
    ]
    rows.append(("all", "", str(tables.balie_count), *cells(tables.grand_total), ""))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {2, 3, 4, 5}  # numbers line up on the right

    def show(row: Sequence[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return escape_for_terminal("  ".join(cells).rstrip())

    print(show(header), file=stream)
    for row in rows:
        print(show(row), file=stream)


# -- the command -------------------------------------------------------------------


def _collect(
    directory: Path, records: Iterable[dict[str, Any]], limits: ArchiveLimits
) -> tuple[list[SummaryEntry], list[SummaryProblem], list[str]]:
    entries: list[SummaryEntry] = []
    problems: list[SummaryProblem] = []
    layout_warnings: dict[str, int] = {}
    for record in records:
        balie = str(record.get("balie") or "")
        if record.get("state") != "done":
            detail = (
                f"{record.get('state')}: {record.get('error_code')}: {record.get('error_message')}"
            )
            problems.append(SummaryProblem("not-fetched", balie, "", detail))
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                path, report = _read_entry(record, directory, limits)
            except ReportFileError as exc:
                problems.append(
                    SummaryProblem(
                        "unreadable", balie, str(record.get("path")), f"{exc.code}: {exc}"
                    )
                )
                continue
        for warning in caught:
            # The same drift in 1,000 reports is one message with a count, not 1,000 lines.
            text = str(warning.message).split(": ", 1)[-1]
            layout_warnings[text] = layout_warnings.get(text, 0) + 1
        entry = SummaryEntry(
            balie,
            str(record.get("name") or ""),
            str(record.get("start") or ""),
            str(record.get("end") or ""),
            path,
            report,
        )
        entries.append(entry)
        for mismatch in report.mismatches:
            problems.append(SummaryProblem("mismatch", balie, str(path), str(mismatch)))
    notes = [f"{text} (in {count} reports)" for text, count in layout_warnings.items()]
    return entries, problems, notes


def summarize_directory(
    directory: Path,
    *,
    include_uid: bool = False,
    stream: TextIO | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    csv_dialect: str = DEFAULT_CSV_DIALECT,
    as_json: bool = False,
) -> int:
    """Summarize the reports of ``directory/manifest.jsonl``; return the exit status.

    ``stream`` defaults to ``sys.stdout`` as it is at the call, not at import.
    ``as_json`` prints the totals and problems as one JSON document instead of a table.
    """
    stream = stream if stream is not None else sys.stdout
    if as_json:
        status, document = summary_document(
            directory, include_uid=include_uid, limits=limits, csv_dialect=csv_dialect
        )
        print_json(document, stream)
        return status
    summary = _summarize(Path(directory), include_uid, limits, csv_dialect)
    if isinstance(summary, str):
        print(f"uitpas-async: {summary}", file=stream)
        return EXIT_USAGE
    _print_table(summary.tables, stream)
    # Balie, member and file names come from servers: printed escaped.
    for note in summary.notes:
        print(f"warning: {escape_for_terminal(note)}", file=stream)
    for problem in summary.problems:
        where = " ".join(part for part in (problem.balie, problem.report) if part)
        line = f"{problem.kind.upper()}: {where}: {problem.detail}"
        print(escape_for_terminal(line), file=stream)
    mismatches = sum(problem.kind == "mismatch" for problem in summary.problems)
    print(
        f"{summary.reports} reports, {summary.sheets} sheets, {mismatches} Total mismatches, "
        f"{len(summary.problems) - mismatches} other problems; written to {summary.out}",
        file=stream,
    )
    if not include_uid:
        print("UIDs left out (pass --include-uid to write them)", file=stream)
    return summary.status


def summary_document(
    directory: Path,
    *,
    include_uid: bool = False,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    csv_dialect: str = DEFAULT_CSV_DIALECT,
) -> tuple[int, dict[str, Any]]:
    """Summarize as :func:`summarize_directory` does; return the status and the JSON document.

    ``reports fetch --summarize --json`` nests the document in its own, so stdout
    holds one JSON document.
    """
    summary = _summarize(Path(directory), include_uid, limits, csv_dialect)
    if isinstance(summary, str):
        return EXIT_USAGE, {"error": summary}
    return summary.status, _summary_data(summary)


@attrs.frozen
class _Summary:
    """What summarizing a directory found and wrote."""

    tables: SummaryTables
    problems: Sequence[SummaryProblem]
    notes: Sequence[str]
    reports: int
    sheets: int
    out: Path

    @property
    def status(self) -> int:
        return EXIT_FAILED if self.problems else EXIT_OK


def _summarize(
    directory: Path, include_uid: bool, limits: ArchiveLimits, csv_dialect: str
) -> _Summary | str:
    """Read the manifest's reports, write ``summary/``; return what was found, or why not."""
    manifest = directory / MANIFEST_NAME
    if not manifest.is_file():
        return f"no {MANIFEST_NAME} in {directory} (run reports fetch)"
    records, problems = _read_manifest(manifest)
    entries, report_problems, notes = _collect(directory, records, limits)
    problems += report_problems
    names = {record.get("balie"): record.get("name") for record in records}
    tables = build_tables(
        entries,
        problems,
        include_uid=include_uid,
        names={str(key): str(name) for key, name in names.items() if key and name},
    )
    out = directory / SUMMARY_DIR
    write_summary_files(out, tables, dialect=csv_dialect)
    sheets = sum(len(entry.report.sheets) for entry in entries)
    return _Summary(tables, problems, notes, len(entries), sheets, out)


def _summary_data(summary: _Summary) -> dict[str, Any]:
    """Return what ``--json`` prints: totals per period and government, problems, counts.

    Money is text, so no float ever rounds a cent.
    """
    periods: dict[tuple[date | None, date | None], list[PeriodTotal]] = {}
    for row in summary.tables.government_totals:
        periods.setdefault((row.start, row.end), []).append(row)
    return {
        "reports": summary.reports,
        "sheets": summary.sheets,
        "periods": [
            {
                "period": period_label(start, end),
                "start": start.isoformat() if start else None,
                "end": end.isoformat() if end else None,
                "lines": sum(row.total.lines for row in rows),
                "total_price": str(sum((row.total.total_price for row in rows), Decimal("0.00"))),
                "contribution": str(sum((row.total.contribution for row in rows), Decimal("0.00"))),
                "governments": [
                    {
                        "government": row.government,
                        "balies": row.balies,
                        "lines": row.total.lines,
                        "total_price": str(row.total.total_price),
                        "contribution": str(row.total.contribution),
                        "stated_total": str(row.total.stated_total),
                        "check": "ok" if row.total.balanced else "MISMATCH",
                    }
                    for row in rows
                ],
            }
            for (start, end), rows in periods.items()
        ],
        "problems": [attrs.asdict(problem) for problem in summary.problems],
        "warnings": list(summary.notes),
        "written_to": str(summary.out),
    }


async def _cmd_summarize(args: argparse.Namespace) -> int:
    limits = ArchiveLimits(max_total_bytes=args.max_report_bytes)
    # Reading workbooks is CPU work; a thread keeps the event loop of main() responsive.
    return await asyncio.to_thread(
        summarize_directory,
        Path(args.dir),
        include_uid=args.include_uid,
        limits=limits,
        csv_dialect=args.csv_dialect,
        as_json=args.json,
    )


def add_csv_dialect_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--csv-dialect`` (``reports summarize``, and ``reports fetch --summarize``)."""
    parser.add_argument(
        "--csv-dialect",
        choices=sorted(CSV_DIALECTS),
        default=DEFAULT_CSV_DIALECT,
        help="how the CSVs are written: rfc4180 (commas, decimal points; for programs) or "
        "excel-nl (semicolons, decimal commas; what Excel in Belgium opens directly); "
        "summary.xlsx is the same either way; default %(default)s",
    )


def add_summarize_flags(fetch: argparse.ArgumentParser) -> None:
    """Add ``--summarize``, ``--include-uid`` and ``--csv-dialect`` to ``reports fetch``."""
    fetch.add_argument(
        "--summarize",
        action="store_true",
        help="after fetching, total the reports as 'reports summarize OUT' does",
    )
    fetch.add_argument("--include-uid", action="store_true", help=UID_HELP)
    add_csv_dialect_flag(fetch)


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
        "DIR/summary/totals.csv (per period, government and balie, and each "
        "government's total: lines, total price, contribution, the sheets' stated Total, "
        "check), DIR/summary/problems.csv and DIR/summary/summary.xlsx (the same tables "
        "as a workbook, with a chart of the contribution per government), and print "
        "what each government is owed per period. Every sheet's Total row is checked "
        "against its lines. "
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
    add_csv_dialect_flag(summarize)
    summarize.add_argument("--json", action="store_true", help="print the summary as JSON")
    summarize.set_defaults(handler=_cmd_summarize)
