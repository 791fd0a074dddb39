"""Write the summary's tables: CSVs (RFC 4180, or Belgian Excel's) and ``summary.xlsx``.

Every file is written to an owner-only (0600) temporary file beside its final name and
renamed into place when complete, so an interrupted run never leaves half a file, and the
folder is created owner-only (0700): the lines name passholders' municipalities and,
with ``--include-uid``, the passholders themselves.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import attrs

from uitpas_async.cli.summary_tables import Cell, Column, Kind, SummaryTables, Table

__all__ = [
    "CSV_DIALECTS",
    "DEFAULT_CSV_DIALECT",
    "DIRECTORY_MODE",
    "LINES_NAME",
    "PROBLEMS_NAME",
    "TOTALS_NAME",
    "WORKBOOK_NAME",
    "CsvDialect",
    "write_summary_files",
]

LINES_NAME = "lines.csv"
TOTALS_NAME = "totals.csv"
PROBLEMS_NAME = "problems.csv"
WORKBOOK_NAME = "summary.xlsx"
DIRECTORY_MODE = 0o700
#: Characters that make a spreadsheet read a text cell as a formula (CSV injection):
#: event and organiser names come from thousands of organisers, and accountants open
#: these files in Excel.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Euro with two decimals; [$€-813] is the euro of Dutch (Belgium), shown before the amount.
EURO_FORMAT = "[$€-813] #,##0.00;[$€-813] -#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
#: Characters an xlsx cell cannot hold (XML 1.0 forbids them); openpyxl refuses them.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: Widest a column is made, in characters, however long its text.
_MAX_WIDTH = 50
#: Rows looked at to size a column: enough to be representative, bounded for 100k lines.
_WIDTH_SAMPLE = 500
#: Height of the chart per government, and its bounds, in centimetres.
_CHART_CM_PER_BAR = 0.6
_CHART_MIN_CM, _CHART_MAX_CM = 7.5, 60.0


@attrs.frozen
class CsvDialect:
    """How the CSVs separate fields and write decimals."""

    name: str
    delimiter: str
    decimal: str


#: ``rfc4180``: commas and decimal points (the default, for programs); ``excel-nl``:
#: semicolons and decimal commas, what Excel in Belgium and the Netherlands opens directly.
CSV_DIALECTS = {
    "rfc4180": CsvDialect("rfc4180", ",", "."),
    "excel-nl": CsvDialect("excel-nl", ";", ","),
}
DEFAULT_CSV_DIALECT = "rfc4180"


def _safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(value: Cell, kind: Kind, dialect: CsvDialect) -> str:
    if value is None:
        return ""
    if kind is Kind.EURO and isinstance(value, Decimal):
        return str(value).replace(".", dialect.decimal)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return _safe(value)
    return str(value)


@contextlib.contextmanager
def _atomic(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Yield a temporary file (0600) that replaces ``path`` only when complete."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
    try:
        if "b" in mode:
            with os.fdopen(descriptor, mode) as handle:
                yield handle
        else:
            # utf-8-sig: Excel, where accountants open these, reads UTF-8 only with a BOM.
            with os.fdopen(descriptor, mode, encoding="utf-8-sig", newline="") as handle:
                yield handle
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _write_csv(path: Path, table: Table, dialect: CsvDialect) -> None:
    kinds = [column.kind for column in table.columns]
    with _atomic(path) as handle:
        # The csv module's default dialect is RFC 4180's: quotes doubled, CRLF line ends.
        writer = csv.writer(handle, delimiter=dialect.delimiter)
        writer.writerow(table.header)
        for row in table.rows:
            writer.writerow(
                [_csv_cell(value, kind, dialect) for value, kind in zip(row, kinds, strict=True)]
            )


# -- the workbook ------------------------------------------------------------------

_NUMBER_FORMATS = {
    Kind.EURO: EURO_FORMAT,
    Kind.DATE: DATE_FORMAT,
    Kind.DATETIME: DATETIME_FORMAT,
}


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    return str(get_column_letter(index))


def _widths(table: Table) -> list[int]:
    widths = [len(column.title) for column in table.columns]
    for row in table.rows[:_WIDTH_SAMPLE]:
        for index, value in enumerate(row):
            text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value or "")
            widths[index] = max(widths[index], len(text) + 2)
    return [min(width + 2, _MAX_WIDTH) for width in widths]


def _cell_factory(sheet: Any) -> Callable[[Cell, Kind, bool], Any]:
    from copy import copy

    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    bold = Font(bold=True)
    # One styled cell per kind; the others copy its style, far cheaper than setting the
    # number format on each of 100,000 lines' cells.
    styles = {}
    for kind, number_format in _NUMBER_FORMATS.items():
        template = WriteOnlyCell(sheet)
        template.number_format = number_format
        styles[kind] = template._style

    def make(value: Cell, kind: Kind, heading: bool) -> Any:
        if isinstance(value, str):
            value = _ILLEGAL_XML.sub("", value)
            # openpyxl reads a string that starts with "=" as a formula: an organiser's
            # event name must stay text.
            if not heading and not value.startswith("="):
                return value
        elif not heading and (value is None or kind not in styles):
            return value  # no format needed: openpyxl writes it as it is, and faster
        cell = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            cell.data_type = "s"
        elif kind in styles:
            cell._style = copy(styles[kind])
        if heading:
            cell.font = bold
        return cell

    return make


def _write_sheet(workbook: Any, table: Table, footer: Sequence[Cell] = ()) -> None:
    """Add ``table`` as a sheet: bold frozen header, autofilter, typed cells, sized columns."""
    sheet = workbook.create_sheet(table.name)
    sheet.freeze_panes = "A2"
    last = _column_letter(len(table.columns))
    sheet.auto_filter.ref = f"A1:{last}{len(table.rows) + 1}"
    for index, width in enumerate(_widths(table), start=1):
        sheet.column_dimensions[_column_letter(index)].width = width
    make = _cell_factory(sheet)
    kinds = [column.kind for column in table.columns]
    sheet.append([make(column.title, Kind.TEXT, True) for column in table.columns])
    for row in table.rows:
        sheet.append([make(value, kind, False) for value, kind in zip(row, kinds, strict=True)])
    if footer:
        sheet.append([])  # a blank row keeps the total out of the filtered range
        sheet.append([make(value, kind, True) for value, kind in zip(footer, kinds, strict=False)])


def _grand_total(tables: SummaryTables) -> tuple[Cell, ...]:
    """Return the Total row under the per-government sheet."""
    total = tables.grand_total
    return (
        "Total",
        None,
        None,
        tables.balie_count,
        total.lines,
        total.total_price,
        total.contribution,
        total.stated_total,
    )


def _write_chart(workbook: Any, tables: SummaryTables) -> None:
    """Add a sheet with the contribution per government and period, and its bar chart."""
    from openpyxl.chart import BarChart, Reference  # type: ignore[import-untyped]
    from openpyxl.chart.label import DataLabelList  # type: ignore[import-untyped]

    periods = tables.chart_periods
    columns = (
        ("government", "Government", Kind.TEXT),
        *((period, period, Kind.EURO) for period in periods),
    )
    table = Table(
        "Chart",
        tuple(Column(name, title, kind) for name, title, kind in columns),
        tuple((government, *values) for government, values in tables.chart_rows),
    )
    _write_sheet(workbook, table)
    if not table.rows:
        return
    sheet = workbook["Chart"]
    chart = BarChart()
    chart.type = "bar"  # horizontal: government names are long
    chart.title = "Contribution per government"
    chart.y_axis.title = "Contribution (EUR)"
    chart.y_axis.numFmt = EURO_FORMAT
    chart.dataLabels = DataLabelList()
    chart.dataLabels.showVal = True
    count = len(table.rows)
    data = Reference(sheet, min_col=2, max_col=1 + len(periods), min_row=1, max_row=count + 1)
    categories = Reference(sheet, min_col=1, min_row=2, max_row=count + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(categories)
    chart.x_axis.scaling.orientation = "maxMin"  # the first government on top, as in the table
    # Said explicitly: Excel hides axes whose "delete" is left unset.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.height = min(max(_CHART_MIN_CM, count * len(periods) * _CHART_CM_PER_BAR), _CHART_MAX_CM)
    chart.width = 24
    sheet.add_chart(chart, f"{_column_letter(len(periods) + 3)}2")


def _write_workbook(path: Path, tables: SummaryTables) -> None:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    # Write-only: rows stream to the file, so 100,000 lines need little memory.
    workbook = Workbook(write_only=True)
    _write_sheet(workbook, tables.governments, _grand_total(tables))
    _write_chart(workbook, tables)
    _write_sheet(workbook, tables.balies)
    _write_sheet(workbook, tables.lines)
    _write_sheet(workbook, tables.problems)
    with _atomic(path, "wb") as handle:
        workbook.save(handle)


def write_summary_files(
    out: Path, tables: SummaryTables, *, dialect: str = DEFAULT_CSV_DIALECT
) -> None:
    """Write lines.csv, totals.csv, problems.csv and summary.xlsx into ``out``."""
    chosen = CSV_DIALECTS[dialect]
    out.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    _write_csv(out / LINES_NAME, tables.lines, chosen)
    _write_csv(out / TOTALS_NAME, tables.totals, chosen)
    # Always written, empty when all is well, so an old file never tells an old story.
    _write_csv(out / PROBLEMS_NAME, tables.problems, chosen)
    _write_workbook(out / WORKBOOK_NAME, tables)
