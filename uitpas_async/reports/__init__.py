"""UiTPAS financial reports as files: read a downloaded zip into typed lines and totals.

The reader is :mod:`uitpas_async.reports.reader` (its docstring draws its error tree);
the report's column layout, shared with the sandboxes that write it, is
:mod:`uitpas_async.reports.columns`.
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
