"""Read downloaded financial reports (zips of ``.xls``/``.xlsx``) into typed lines, safely.

A report is a zip holding one workbook per government. Each workbook has one sheet: a
header block ("ONKOSTENNOTA", a date, blank form fields), a header row with the columns
in :data:`COLUMNS`, one row per ticket sold at kansentarief, and a ``Total <government>``
row with the summed contribution. The header row is found by its column names, never by
its position, so the header block may change freely.

The archive comes from a server, so it is treated as hostile: every member is checked
*before* anything is decompressed (paths, encryption, nesting, declared sizes), then read
in memory with a running byte count. Nothing is ever written to disk.

Errors (all :class:`~uitpas_async.engine.errors.UitpasError`)::

    ReportFileError                  a report file cannot be used (has .path)
    ├── CorruptArchiveError              truncated, not a zip, unreadable workbook
    ├── UnsafeArchiveError               refused before extraction
    │   ├── ArchivePathError                 a member path leaves the folder (absolute, ..)
    │   ├── ArchiveTooLargeError             past ArchiveLimits (zip bomb)
    │   │   └── SheetTooLargeError                   too many rows, or too slow to read
    │   ├── EncryptedArchiveError            an encrypted member
    │   └── NestedArchiveError               an archive inside the archive
    ├── ReportLayoutError                no header row, no Total row, a bad cell (.member, .sheet)
    └── TotalMismatchError               a sheet's Total differs from its lines (.mismatches)

A Total mismatch is data, not an exception: :attr:`FinancialReport.mismatches` lists them
and :meth:`FinancialReport.verify` raises :class:`TotalMismatchError` for callers who want it.
"""

from __future__ import annotations

from uitpas_async.reports.columns import REPORT_COLUMNS
from uitpas_async.reports.reader import (
    COLUMNS,
    DEFAULT_LIMITS,
    ArchiveLimits,
    ArchivePathError,
    ArchiveTooLargeError,
    CorruptArchiveError,
    EncryptedArchiveError,
    FinancialReport,
    GovernmentTotal,
    NestedArchiveError,
    ReportFileError,
    ReportLayoutError,
    ReportLayoutWarning,
    ReportLine,
    ReportSheet,
    SheetTooLargeError,
    TotalMismatch,
    TotalMismatchError,
    UnsafeArchiveError,
    aggregate_reports,
    parse_financial_report,
    read_financial_report,
)

__all__ = [
    "ArchiveLimits",
    "ArchivePathError",
    "ArchiveTooLargeError",
    "COLUMNS",
    "CorruptArchiveError",
    "DEFAULT_LIMITS",
    "EncryptedArchiveError",
    "FinancialReport",
    "GovernmentTotal",
    "NestedArchiveError",
    "REPORT_COLUMNS",
    "ReportFileError",
    "ReportLayoutError",
    "ReportLayoutWarning",
    "ReportLine",
    "ReportSheet",
    "SheetTooLargeError",
    "TotalMismatch",
    "TotalMismatchError",
    "UnsafeArchiveError",
    "aggregate_reports",
    "parse_financial_report",
    "read_financial_report",
]
