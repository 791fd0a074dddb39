"""``uitpas-async reports summarize DIR``: total what each government owes, per period.

Reads ``DIR/manifest.jsonl`` (written by ``reports fetch``) and every done report it
lists, then writes, each atomically and owner-only (see
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
import json
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from uitpas_async.cli import summary_tables
from uitpas_async.cli.args import positive_int
from uitpas_async.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, MANIFEST_NAME
from uitpas_async.cli.summary_files import (
    CSV_DIALECTS,
    DEFAULT_CSV_DIALECT,
    write_summary_files,
)
from uitpas_async.cli.summary_tables import (
    SummaryEntry,
    SummaryProblem,
    SummaryTables,
    build_tables,
    period_label,
)
from uitpas_async.engine.filenames import escape_for_terminal
from uitpas_async.reports.reader import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    ArchiveTooLargeError,
    FinancialReport,
    GovernmentTotal,
    ReportFileError,
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
    records: list[dict[str, Any]] = []
    problems: list[SummaryProblem] = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(SummaryProblem("manifest", "", str(path), f"line {number}: {exc}"))
                continue
            if not isinstance(record, dict):
                problems.append(
                    SummaryProblem("manifest", "", str(path), f"line {number}: not an object")
                )
                continue
            records.append(record)
    return records, problems


def _locate(directory: Path, recorded: str) -> Path:
    """Find a manifest path: as written, or under DIR when DIR was moved or named otherwise."""
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [path, directory / path]
    # fetch lays reports out as OUT/<balie>/<file>; that survives moving OUT.
    candidates.append(directory / path.parent.name / path.name)
    return next((candidate for candidate in candidates if candidate.is_file()), candidates[-1])


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
) -> int:
    """Summarize the reports of ``directory/manifest.jsonl``; return the exit status.

    ``stream`` defaults to ``sys.stdout`` as it is at the call, not at import.
    """
    stream = stream if stream is not None else sys.stdout
    directory = Path(directory)
    manifest = directory / MANIFEST_NAME
    if not manifest.is_file():
        print(f"uitpas-async: no {MANIFEST_NAME} in {directory} (run reports fetch)", file=stream)
        return EXIT_USAGE
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

    _print_table(tables, stream)
    sheets = sum(len(entry.report.sheets) for entry in entries)
    # Balie, member and file names come from servers: printed escaped.
    for note in notes:
        print(f"warning: {escape_for_terminal(note)}", file=stream)
    for problem in problems:
        where = " ".join(part for part in (problem.balie, problem.report) if part)
        line = f"{problem.kind.upper()}: {where}: {problem.detail}"
        print(escape_for_terminal(line), file=stream)
    mismatches = sum(problem.kind == "mismatch" for problem in problems)
    print(
        f"{len(entries)} reports, {sheets} sheets, {mismatches} Total mismatches, "
        f"{len(problems) - mismatches} other problems; written to {out}",
        file=stream,
    )
    if not include_uid:
        print("UIDs left out (pass --include-uid to write them)", file=stream)
    return EXIT_FAILED if problems else EXIT_OK


async def _cmd_summarize(args: argparse.Namespace) -> int:
    limits = ArchiveLimits(max_total_bytes=args.max_report_bytes)
    # Reading workbooks is CPU work; a thread keeps the event loop of main() responsive.
    return await asyncio.to_thread(
        summarize_directory,
        Path(args.dir),
        include_uid=args.include_uid,
        limits=limits,
        csv_dialect=args.csv_dialect,
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
    # only, so it takes none of them, but keeps -v for main()'s logging setup.
    del common
    summarize = reports_commands.add_parser(
        "summarize",
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
    summarize.add_argument(
        "--csv-dialect",
        choices=sorted(CSV_DIALECTS),
        default=DEFAULT_CSV_DIALECT,
        help="how the CSVs are written: rfc4180 (commas, decimal points; for programs) or "
        "excel-nl (semicolons, decimal commas; what Excel in Belgium opens directly); "
        "summary.xlsx is the same either way; default %(default)s",
    )
    summarize.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    summarize.set_defaults(handler=_cmd_summarize)
