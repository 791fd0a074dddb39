"""Read downloaded financial reports (zips of ``.xls``/``.xlsx``) into typed lines, safely.

A report is a zip holding one workbook per government. Each workbook has one sheet: a
header block ("ONKOSTENNOTA", a date, blank form fields), a header row with the columns
in :data:`COLUMNS`, one row per ticket sold at kansentarief, and a ``Total <government>``
row with the summed contribution. The header row is found by its column names, never by
its position, so the header block may change freely.

The archive comes from a server, so it is treated as hostile: every member is checked
*before* anything is decompressed (paths, encryption, nesting, declared sizes), then read
in memory with a running byte count. Nothing is ever written to disk. One byte budget
covers the archive's members and what the ``.xlsx`` among them expand to; each workbook
is capped on its own too. A sheet is read only as far as the layout needs (its first
:data:`MAX_COLUMNS` columns), whatever size it declares: ``.xls`` rows are not padded to
the declared dimensions and each sheet is released once read, ``.xlsx`` dimensions are
ignored, and rows read and seconds spent per report are capped (:class:`ArchiveLimits`).

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

import io
import logging
import stat
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any, TypeAlias

import attrs

from uitpas_async.engine.errors import ConfigurationError, UitpasError
from uitpas_async.reports.columns import REPORT_COLUMNS

__all__ = [
    "COLUMNS",
    "DEFAULT_LIMITS",
    "ArchiveLimits",
    "ArchivePathError",
    "ArchiveTooLargeError",
    "CorruptArchiveError",
    "EncryptedArchiveError",
    "FinancialReport",
    "GovernmentTotal",
    "NestedArchiveError",
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

logger = logging.getLogger(__name__)

COLUMNS = REPORT_COLUMNS
#: Default cap on the bytes of one report: the archive file and all its members expanded.
#: The real fixture expands to 48 KiB; a year of a big city is a few MiB.
DEFAULT_MAX_TOTAL_BYTES = 64 * 1024 * 1024
#: Default cap on the members of one report (one per government; Flanders has ~300).
DEFAULT_MAX_MEMBERS = 1000
#: Default cap on one workbook: an .xls member, or what an .xlsx member expands to.
#: xlrd holds about 5 times an .xls in memory; real workbooks are well under 1 MiB.
DEFAULT_MAX_WORKBOOK_BYTES = 16 * 1024 * 1024
#: Default cap on the rows read from one report, all sheets, blank ones included.
#: A line costs about 1.5 KiB once parsed; a big city's year is some 20 thousand.
DEFAULT_MAX_ROWS = 100_000
#: Default cap on the seconds spent reading one report's sheets.
DEFAULT_MAX_SECONDS = 20.0
#: Columns read from each row: the layout's 13, with room for extra columns before them.
MAX_COLUMNS = 64
#: Rows between two looks at the clock.
_CLOCK_EVERY_ROWS = 512
#: Bytes read from a member at a time, so a lying header is caught within one chunk.
_CHUNK = 64 * 1024
_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")
#: Bit 0 of a zip member's general-purpose flags: the member is encrypted (APPNOTE 4.4.4).
_ENCRYPTED_FLAG = 0x1
#: Excel's day zero per workbook date mode: 1900 system (as used after Feb 1900) and 1904.
_EPOCHS = {0: datetime(1899, 12, 30), 1: datetime(1904, 1, 1)}
_ARCHIVE_SUFFIXES = frozenset(
    {".zip", ".jar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".cab", ".zst"}
)
#: Leading bytes of archive formats, to catch a nested archive under an innocent name.
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound document
#: xlrd's cell types (xlrd.XL_CELL_*), copied so the hot loop needs no import.
_XL_EMPTY, _XL_TEXT, _XL_NUMBER, _XL_DATE, _XL_BOOLEAN, _XL_ERROR, _XL_BLANK = range(7)

#: A cell after reading: empty, text, a number, or a date-time the workbook marked as such.
_Cell: TypeAlias = str | float | datetime | None


# -- errors ------------------------------------------------------------------------


class ReportFileError(UitpasError):
    """A downloaded report file cannot be used."""

    code = "REPORT_FILE"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        #: The report file (or the name it was given) the error is about.
        self.path = path


class CorruptArchiveError(ReportFileError):
    """The report is truncated, not a zip, or holds a workbook that cannot be read."""

    code = "CORRUPT_REPORT"


class UnsafeArchiveError(ReportFileError):
    """The archive was refused before extraction because it could harm the reader."""

    code = "UNSAFE_ARCHIVE"


class ArchivePathError(UnsafeArchiveError):
    """A member's path is absolute, climbs out with ``..``, or is a link."""

    code = "ARCHIVE_PATH"


class ArchiveTooLargeError(UnsafeArchiveError):
    """The archive, its member count or its expanded size passes the configured limit."""

    code = "ARCHIVE_TOO_LARGE"


class SheetTooLargeError(ArchiveTooLargeError):
    """A report has more rows than ArchiveLimits allow, or takes too long to read."""

    code = "SHEET_TOO_LARGE"


class EncryptedArchiveError(UnsafeArchiveError):
    """A member is encrypted; reports never are."""

    code = "ARCHIVE_ENCRYPTED"


class NestedArchiveError(UnsafeArchiveError):
    """A member is itself an archive; reports hold workbooks only."""

    code = "ARCHIVE_NESTED"


class ReportLayoutError(ReportFileError):
    """A sheet does not have the report's layout: no header row, no Total row, a bad cell."""

    code = "REPORT_LAYOUT"

    def __init__(self, message: str, *, path: str, member: str, sheet: str) -> None:
        super().__init__(f"{member}: sheet {sheet!r}: {message}", path=path)
        #: The workbook inside the zip.
        self.member = member
        #: The sheet inside the workbook.
        self.sheet = sheet


class TotalMismatchError(ReportFileError):
    """One or more sheets state a Total that differs from the sum of their lines."""

    code = "TOTAL_MISMATCH"

    def __init__(self, mismatches: Sequence[TotalMismatch], *, path: str) -> None:
        super().__init__("; ".join(str(item) for item in mismatches), path=path)
        #: Every sheet that did not add up.
        self.mismatches = tuple(mismatches)


#: Builds the layout error of the sheet being read, from a message.
_Fail: TypeAlias = Callable[[str], ReportLayoutError]


class ReportLayoutWarning(UserWarning):
    """A sheet parsed, but differs from the known layout (extra columns, unknown members)."""


# -- models ------------------------------------------------------------------------


@attrs.frozen
class ArchiveLimits:
    """How much one report archive may hold before it is refused."""

    #: Bytes of the archive file, and (separately) of all members expanded, the
    #: parts inside each .xlsx included.
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    #: Members in the archive.
    max_members: int = DEFAULT_MAX_MEMBERS
    #: Bytes of one workbook: an .xls member, or all the parts of an .xlsx expanded.
    max_workbook_bytes: int = DEFAULT_MAX_WORKBOOK_BYTES
    #: Rows read from all the sheets of the report together.
    max_rows: int = DEFAULT_MAX_ROWS
    #: Seconds spent reading the report's sheets.
    max_seconds: float = DEFAULT_MAX_SECONDS


DEFAULT_LIMITS = ArchiveLimits()


@attrs.define
class _Budget:
    """What one report may still expand to, and how many rows and seconds it has left."""

    source: str
    limits: ArchiveLimits
    bytes_left: int
    rows_left: int
    deadline: float

    @classmethod
    def of(cls, source: str, limits: ArchiveLimits) -> _Budget:
        return cls(
            source,
            limits,
            limits.max_total_bytes,
            limits.max_rows,
            time.monotonic() + limits.max_seconds,
        )

    def spend_bytes(self, count: int, what: str) -> None:
        if count > self.bytes_left:
            raise ArchiveTooLargeError(
                f"{what} expands past what is left of the {self.limits.max_total_bytes}-byte limit",
                path=self.source,
            )
        self.bytes_left -= count

    def rows(self, rows: Iterable[list[_Cell]], what: str) -> Iterator[list[_Cell]]:
        """Yield ``rows``, stopping the report once it is past its rows or its seconds."""
        for row in rows:
            self.rows_left -= 1
            if self.rows_left < 0:
                raise SheetTooLargeError(
                    f"{what}: more than {self.limits.max_rows} rows in the report",
                    path=self.source,
                )
            if self.rows_left % _CLOCK_EVERY_ROWS == 0 and time.monotonic() > self.deadline:
                raise SheetTooLargeError(
                    f"{what}: not read within {self.limits.max_seconds:g}s", path=self.source
                )
            yield row


@attrs.frozen
class ReportLine:
    """One ticket sold at kansentarief, as one row of a report sheet."""

    #: INRICHTER: the organiser (balie) that sold the ticket.
    organiser: str
    #: OVERHEID: the government that refunds the contribution.
    government: str
    #: DATUM: when the ticket was sold, local time as the sheet states it (no offset given).
    sold_at: datetime
    #: UID: identifies a passholder; kept out of reprs, and out of outputs unless asked for.
    uid: str = attrs.field(repr=False)
    #: GEMEENTE: the passholder's municipality.
    municipality: str
    #: KANSENSTATUUT: the card system whose kansenstatuut applied.
    card_system: str
    #: TICKETSALECOUPON, or None when empty.
    coupon: str | None
    #: GROUPPASS, or None when empty.
    group_pass: str | None
    #: EVENT: the event's title.
    event: str
    #: DATE_FROM, or None for events without dates ("Altijd open").
    event_from: date | None
    #: DATE_TO, or None.
    event_to: date | None
    #: TOTALPRICE, in euro, rounded to cents.
    total_price: Decimal
    #: CONTRIBUTION: what the government refunds, in euro, rounded to cents.
    contribution: Decimal


@attrs.frozen
class ReportSheet:
    """One government's sheet: its lines and the Total it states."""

    #: The workbook's name inside the zip.
    member: str
    #: The sheet's name in the workbook ("Overview").
    sheet: str
    #: The government named by the ``Total <government>`` row.
    government: str
    lines: tuple[ReportLine, ...]
    #: The CONTRIBUTION of the Total row, rounded to cents.
    stated_total: Decimal

    @property
    def contributions_total(self) -> Decimal:
        """Return the sum of the lines' contributions (what the Total row should state)."""
        return sum((line.contribution for line in self.lines), _ZERO)

    @property
    def lines_total(self) -> Decimal:
        """Return :attr:`contributions_total` (deprecated: the name did not say what it sums)."""
        warnings.warn(
            "ReportSheet.lines_total is deprecated; use contributions_total",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.contributions_total

    @property
    def total_price(self) -> Decimal:
        """Return the sum of the lines' total prices."""
        return sum((line.total_price for line in self.lines), _ZERO)

    @property
    def balanced(self) -> bool:
        """Return whether the stated Total equals the sum of the lines."""
        return self.stated_total == self.contributions_total


@attrs.frozen
class TotalMismatch:
    """A sheet whose stated Total differs from the sum of its lines."""

    member: str
    sheet: str
    government: str
    stated: Decimal
    computed: Decimal

    def __str__(self) -> str:
        return (
            f"{self.member} ({self.government}): Total row says {self.stated}, "
            f"lines add up to {self.computed} (difference {self.computed - self.stated})"
        )


@attrs.frozen
class FinancialReport:
    """A downloaded report: one sheet per government."""

    #: The file it was read from (or the name given to the bytes).
    source: str
    sheets: tuple[ReportSheet, ...]

    @property
    def lines(self) -> tuple[ReportLine, ...]:
        """Return every line of every sheet, in order."""
        return tuple(line for sheet in self.sheets for line in sheet.lines)

    @property
    def mismatches(self) -> tuple[TotalMismatch, ...]:
        """Return the sheets whose Total row differs from the sum of their lines."""
        return tuple(
            TotalMismatch(s.member, s.sheet, s.government, s.stated_total, s.contributions_total)
            for s in self.sheets
            if not s.balanced
        )

    def verify(self) -> None:
        """Raise TotalMismatchError unless every sheet's Total equals its lines' sum."""
        mismatches = self.mismatches
        if mismatches:
            raise TotalMismatchError(mismatches, path=self.source)


@attrs.frozen
class GovernmentTotal:
    """What one government owes for one balie, summed over reports."""

    balie: str
    government: str
    #: Number of lines (tickets).
    lines: int
    total_price: Decimal
    contribution: Decimal
    #: Sum of the sheets' own Total rows, to compare with ``contribution``.
    stated_total: Decimal

    @property
    def balanced(self) -> bool:
        """Return whether the stated Totals equal the sum of the lines."""
        return self.stated_total == self.contribution


def aggregate_reports(
    reports: Iterable[tuple[str, FinancialReport]],
) -> tuple[GovernmentTotal, ...]:
    """Total ``(balie, report)`` pairs per balie and government, sorted by both."""
    sums: dict[tuple[str, str], tuple[int, Decimal, Decimal, Decimal]] = {}
    for balie, report in reports:
        for sheet in report.sheets:
            key = (balie, sheet.government)
            count, price, contribution, stated = sums.get(key, (0, _ZERO, _ZERO, _ZERO))
            sums[key] = (
                count + len(sheet.lines),
                price + sheet.total_price,
                contribution + sheet.contributions_total,
                stated + sheet.stated_total,
            )
    return tuple(
        GovernmentTotal(balie, government, *values)
        for (balie, government), values in sorted(sums.items())
    )


# -- the archive -------------------------------------------------------------------


def read_financial_report(
    path: str | Path, *, limits: ArchiveLimits = DEFAULT_LIMITS
) -> FinancialReport:
    """Read a report zip from disk, in memory.

    Raises:
        ReportFileError: unreadable, unsafe, or not laid out like a report (see the tree).
    """
    path = Path(path)
    name = str(path)
    try:
        with path.open("rb") as handle:
            # One byte more than allowed tells "at the limit" from "past it".
            data = handle.read(limits.max_total_bytes + 1)
    except OSError as exc:
        raise ReportFileError(f"cannot read: {exc.strerror or exc}", path=name) from exc
    return parse_financial_report(data, source=name, limits=limits)


def parse_financial_report(
    data: bytes, *, source: str = "<bytes>", limits: ArchiveLimits = DEFAULT_LIMITS
) -> FinancialReport:
    """Parse the bytes of a report zip.

    Raises:
        ReportFileError: unsafe, corrupt, or not laid out like a report.
    """
    if len(data) > limits.max_total_bytes:
        raise ArchiveTooLargeError(
            f"archive is over the {limits.max_total_bytes}-byte limit", path=source
        )
    sheets: list[ReportSheet] = []
    budget = _Budget.of(source, limits)
    for member, content in _read_members(data, source=source, limits=limits, budget=budget):
        suffix = PurePosixPath(member).suffix.lower()
        if suffix == ".xls":
            _check_workbook_size(len(content), source=source, member=member, limits=limits)
            sheets.extend(_read_xls(content, source=source, member=member, budget=budget))
        elif suffix == ".xlsx":
            _check_xlsx_container(content, source=source, member=member, budget=budget)
            sheets.extend(_read_xlsx(content, source=source, member=member, budget=budget))
        else:
            warnings.warn(
                f"{source}: ignoring {member!r}: not a workbook", ReportLayoutWarning, stacklevel=2
            )
    if not sheets:
        raise CorruptArchiveError("no .xls or .xlsx workbook in the archive", path=source)
    logger.debug("read %s: %d sheets", source, len(sheets))
    return FinancialReport(source, tuple(sheets))


def _open_zip(data: bytes, *, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        # ZipFile finds the central directory at the end, so a truncated download
        # and an HTML error page fail here alike.
        raise CorruptArchiveError(f"not a zip, or truncated ({exc})", path=source) from exc


def _check_member_names(
    infos: Sequence[zipfile.ZipInfo], *, source: str, limits: ArchiveLimits, what: str
) -> None:
    """Refuse unsafe members by their central-directory entries alone, before any reading."""
    if len(infos) > limits.max_members:
        raise ArchiveTooLargeError(
            f"{what} has {len(infos)} members, over the limit of {limits.max_members}",
            path=source,
        )
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if (
            name.startswith(("/", "\\"))
            or (len(name) > 1 and name[1] == ":")  # a Windows drive: C:...
            or ".." in parts
            or "\x00" in name
        ):
            raise ArchivePathError(f"{what} member {name!r} leaves the folder", path=source)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchivePathError(f"{what} member {name!r} is a symbolic link", path=source)
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise EncryptedArchiveError(f"{what} member {name!r} is encrypted", path=source)
        # Two members with one name could make one government count twice, or hide one.
        if name in seen:
            raise UnsafeArchiveError(f"{what} holds {name!r} twice", path=source)
        seen.add(name)
        declared += info.file_size
    if declared > limits.max_total_bytes:
        raise ArchiveTooLargeError(
            f"{what} declares {declared} bytes expanded, over the limit of "
            f"{limits.max_total_bytes}",
            path=source,
        )


def _read_members(
    data: bytes, *, source: str, limits: ArchiveLimits, budget: _Budget
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, bytes)`` of each file member, all checks passed, bounded in total."""
    with _open_zip(data, source=source) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        _check_member_names(infos, source=source, limits=limits, what="archive")
        for info in infos:
            if PurePosixPath(info.filename).suffix.lower() in _ARCHIVE_SUFFIXES:
                raise NestedArchiveError(
                    f"member {info.filename!r} is an archive inside the archive", path=source
                )
        for info in infos:
            content = _read_bounded(archive, info, budget.bytes_left, source=source)
            budget.spend_bytes(len(content), f"member {info.filename!r}")
            suffix = PurePosixPath(info.filename).suffix.lower()
            # An .xlsx is a zip by design; anything else starting like an archive is nested.
            if suffix != ".xlsx" and content.startswith(_ARCHIVE_MAGIC):
                raise NestedArchiveError(
                    f"member {info.filename!r} is an archive inside the archive", path=source
                )
            yield info.filename, content


def _read_bounded(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, *, source: str
) -> bytes:
    """Read one member, counting bytes as they come: declared sizes can lie."""
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                if size > budget:
                    raise ArchiveTooLargeError(
                        f"member {info.filename!r} expands past the limit", path=source
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise CorruptArchiveError(
            f"member {info.filename!r} cannot be read ({exc})", path=source
        ) from exc
    except RuntimeError as exc:  # zipfile's "password required", if a flag was hidden
        raise EncryptedArchiveError(f"member {info.filename!r}: {exc}", path=source) from exc
    return b"".join(chunks)


def _check_workbook_size(size: int, *, source: str, member: str, limits: ArchiveLimits) -> None:
    if size > limits.max_workbook_bytes:
        raise ArchiveTooLargeError(
            f"{member}: {size} bytes, over the {limits.max_workbook_bytes}-byte workbook limit",
            path=source,
        )


def _check_xlsx_container(content: bytes, *, source: str, member: str, budget: _Budget) -> None:
    """Apply the archive checks to an .xlsx's own zip before openpyxl opens it.

    What its parts declare comes out of what is left of the report's budget, and
    must fit the workbook limit.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as inner:
            infos = inner.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise CorruptArchiveError(f"{member}: not a valid .xlsx ({exc})", path=source) from exc
    # Python's zipfile stops each member at its declared size (and then fails its CRC),
    # so checking the declared sizes bounds what openpyxl can expand.
    limits = budget.limits
    _check_member_names(infos, source=source, limits=limits, what=member)
    declared = sum(info.file_size for info in infos)
    _check_workbook_size(declared, source=source, member=member, limits=limits)
    budget.spend_bytes(declared, member)


# -- the sheets --------------------------------------------------------------------


def _xlrd() -> Any:
    # Imported on first use: the readers are the optional "cli" extra, and the
    # client itself never needs them.
    try:
        import xlrd  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigurationError(
            "reading .xls reports needs xlrd: pip install uitpas-async[cli]"
        ) from exc
    return xlrd


def _openpyxl() -> Any:
    try:
        import openpyxl  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigurationError(
            "reading .xlsx reports needs openpyxl: pip install uitpas-async[cli]"
        ) from exc
    return openpyxl


def _read_xls(content: bytes, *, source: str, member: str, budget: _Budget) -> list[ReportSheet]:
    xlrd = _xlrd()
    if not content.startswith(_XLS_MAGIC):
        raise CorruptArchiveError(f"{member}: not a legacy .xls workbook", path=source)
    try:
        # xlrd prints its own warnings to logfile (stdout by default): swallow them.
        # ragged_rows: a row is as long as its cells, not padded to the sheet's declared
        # (or merged-cell) width; on_demand: one sheet in memory at a time.
        book = xlrd.open_workbook(
            file_contents=content, logfile=io.StringIO(), on_demand=True, ragged_rows=True
        )
    except Exception as exc:  # xlrd raises XLRDError, CompDocError, struct.error, ...
        raise CorruptArchiveError(f"{member}: unreadable .xls ({exc})", path=source) from exc
    epoch = _epoch(book.datemode, source=source, member=member)
    sheets = []
    try:
        for index in range(book.nsheets):
            try:
                sheet = book.sheet_by_index(index)
            except Exception as exc:  # a sheet's records are parsed only now
                raise CorruptArchiveError(
                    f"{member}: unreadable .xls sheet {index} ({exc})", path=source
                ) from exc
            rows = (_xls_row(sheet, number, epoch) for number in range(sheet.nrows))
            bounded = budget.rows(rows, f"{member}: sheet {sheet.name!r}")
            sheets.append(
                _parse_sheet(bounded, epoch=epoch, source=source, member=member, sheet=sheet.name)
            )
            book.unload_sheet(index)
    finally:
        book.release_resources()
    return sheets


def _xls_row(sheet: Any, number: int, epoch: datetime) -> list[_Cell]:
    # row_types/row_values skip building a Cell object per cell: the hot loop of a summary.
    cells: list[_Cell] = []
    kinds = sheet.row_types(number, 0, MAX_COLUMNS)
    for kind, value in zip(kinds, sheet.row_values(number, 0, MAX_COLUMNS), strict=True):
        if kind == _XL_TEXT:
            cells.append(value)
        elif kind == _XL_NUMBER:
            cells.append(float(value))
        elif kind == _XL_DATE:
            cells.append(_from_serial(float(value), epoch))
        elif kind in (_XL_EMPTY, _XL_BLANK):
            cells.append(None)
        else:  # boolean or error: neither belongs in a report's table
            cells.append(str(value))
    return cells


def _read_xlsx(content: bytes, *, source: str, member: str, budget: _Budget) -> list[ReportSheet]:
    openpyxl = _openpyxl()
    try:
        book = openpyxl.load_workbook(
            io.BytesIO(content), read_only=True, data_only=True, keep_links=False
        )
    except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, XML errors
        raise CorruptArchiveError(f"{member}: unreadable .xlsx ({exc})", path=source) from exc
    epoch = _EPOCHS[1 if book.epoch == openpyxl.utils.datetime.CALENDAR_MAC_1904 else 0]
    sheets = []
    try:
        for worksheet in book.worksheets:
            # The declared <dimension> is the server's word: a sheet claiming a million
            # rows by 16384 columns would otherwise be walked cell by cell.
            worksheet.reset_dimensions()
            rows = (
                [_xlsx_cell(value) for value in row]
                for row in worksheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
            )
            bounded = budget.rows(rows, f"{member}: sheet {worksheet.title!r}")
            sheets.append(
                _parse_sheet(
                    bounded, epoch=epoch, source=source, member=member, sheet=worksheet.title
                )
            )
    except ReportFileError:
        raise
    except Exception as exc:  # a malformed part surfaces only while iterating
        raise CorruptArchiveError(f"{member}: unreadable .xlsx ({exc})", path=source) from exc
    finally:
        book.close()
    return sheets


def _xlsx_cell(value: object) -> _Cell:
    if value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, datetime):
        return _whole_second(value)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return float(value)
    return str(value)


def _epoch(datemode: int, *, source: str, member: str) -> datetime:
    if datemode not in _EPOCHS:
        raise CorruptArchiveError(f"{member}: unknown date mode {datemode}", path=source)
    return _EPOCHS[datemode]


def _whole_second(moment: datetime) -> datetime:
    # Serials are floats: 42270.60494212963 is 14:31:07 give or take microseconds of
    # noise. The server writes whole seconds, so round to them.
    rounded = moment.replace(microsecond=0)
    return rounded + timedelta(seconds=1) if moment.microsecond >= 500_000 else rounded


def _from_serial(serial: float, epoch: datetime) -> datetime:
    return _whole_second(epoch + timedelta(days=serial))


def _normal(value: _Cell) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def _parse_sheet(
    rows: Iterable[list[_Cell]], *, epoch: datetime, source: str, member: str, sheet: str
) -> ReportSheet:
    """Find the header row by its names, read lines up to the Total row."""

    def fail(message: str) -> ReportLayoutError:
        return ReportLayoutError(message, path=source, member=member, sheet=sheet)

    iterator = iter(rows)
    positions: dict[str, int] | None = None
    best: tuple[int, int, set[str]] = (0, 0, set())  # (known names, row number, missing)
    header_row = 0
    for header_row, row in enumerate(iterator, start=1):
        names = [_normal(cell) for cell in row]
        found = set(COLUMNS).intersection(names)
        if found == set(COLUMNS):
            positions = {name: names.index(name) for name in COLUMNS}
            extra = [str(row[i]).strip() for i, n in enumerate(names) if n and n not in COLUMNS]
            if extra:
                warnings.warn(
                    f"{source}: {member}: sheet {sheet!r}: ignoring extra columns "
                    + ", ".join(extra),
                    ReportLayoutWarning,
                    stacklevel=4,
                )
            break
        if len(found) > best[0]:
            best = (len(found), header_row, set(COLUMNS) - found)
    if positions is None:
        hint = ""
        if best[0] >= 3:  # enough known names to call it a header row that drifted
            hint = f" (row {best[1]} lacks {', '.join(sorted(best[2]))})"
        raise fail(f"no header row with the columns {', '.join(COLUMNS)}{hint}")

    lines: list[ReportLine] = []
    stated: Decimal | None = None
    government = ""
    for row_number, row in enumerate(iterator, start=header_row + 1):
        if all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in row):
            continue
        first_text = next((c.strip() for c in row if isinstance(c, str) and c.strip()), "")
        if stated is not None:
            # Lines after the Total row are outside the total an accountant signs.
            raise fail(f"row {row_number}: data after the Total row")
        if first_text.lower().startswith("total "):
            government = first_text[len("total ") :].strip()
            stated = _money(_cell(row, positions["CONTRIBUTION"]), row_number, "Total", fail)
            continue
        lines.append(_parse_line(row, positions, row_number, epoch, fail))
    if stated is None:
        raise fail("no 'Total <government>' row after the lines")
    for line in lines:
        if line.government != government:
            raise fail(f"a line of {line.government!r} in the sheet of {government!r}")
    return ReportSheet(member, sheet, government, tuple(lines), stated)


def _cell(row: Sequence[_Cell], index: int) -> _Cell:
    return row[index] if index < len(row) else None


def _parse_line(
    row: Sequence[_Cell],
    positions: dict[str, int],
    row_number: int,
    epoch: datetime,
    fail: _Fail,
) -> ReportLine:
    def text(column: str) -> str | None:
        value = _cell(row, positions[column])
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a number typed into a text column: 2015, not 2015.0
        # The server pads names ("CC De Werf "): unstripped, they would split totals.
        return str(value).strip() or None

    def moment(column: str) -> datetime | None:
        value = _cell(row, positions[column])
        if value is None or (isinstance(value, str) and not value.strip()):
            return None  # DATE_FROM/DATE_TO are empty text for events without dates
        if isinstance(value, datetime):
            return value
        if isinstance(value, float):
            return _from_serial(value, epoch)
        raise fail(f"row {row_number}: {column} is not a date: {value!r}")

    sold_at = moment("DATUM")
    if sold_at is None:
        raise fail(f"row {row_number}: DATUM is empty")
    government = text("OVERHEID")
    if government is None:
        raise fail(f"row {row_number}: OVERHEID is empty")
    event_from, event_to = moment("DATE_FROM"), moment("DATE_TO")
    return ReportLine(
        organiser=text("INRICHTER") or "",
        government=government,
        sold_at=sold_at,
        uid=text("UID") or "",
        municipality=text("GEMEENTE") or "",
        card_system=text("KANSENSTATUUT") or "",
        coupon=text("TICKETSALECOUPON"),
        group_pass=text("GROUPPASS"),
        event=text("EVENT") or "",
        event_from=event_from.date() if event_from else None,
        event_to=event_to.date() if event_to else None,
        total_price=_money(_cell(row, positions["TOTALPRICE"]), row_number, "TOTALPRICE", fail),
        contribution=_money(
            _cell(row, positions["CONTRIBUTION"]), row_number, "CONTRIBUTION", fail
        ),
    )


def _money(value: _Cell, row_number: int, column: str, fail: _Fail) -> Decimal:
    if isinstance(value, float):
        # repr gives the shortest decimal that round-trips: 39.25, not 39.2499999...
        amount = Decimal(repr(value))
    elif isinstance(value, str) and value.strip():
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise fail(f"row {row_number}: {column} is not an amount: {value!r}") from None
    else:
        raise fail(f"row {row_number}: {column} is empty or not an amount")
    if not amount.is_finite():
        raise fail(f"row {row_number}: {column} is not an amount: {value!r}")
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)
