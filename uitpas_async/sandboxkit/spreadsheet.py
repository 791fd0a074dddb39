"""A minimal Office Open XML (.xlsx) writer on the standard library: one sheet, three cell kinds."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TypeAlias
from xml.sax.saxutils import escape, quoteattr

import attrs

__all__ = ["EXCEL_EPOCH", "Cell", "ExcelDate", "excel_serial", "xlsx_bytes"]

#: Day zero of Excel's 1900 date system as it is actually used (the 1900 leap-year bug
#: shifts it from 1899-12-31 to 1899-12-30 for every date after February 1900).
EXCEL_EPOCH = datetime(1899, 12, 30)
#: Built-in number format 16 ("d-mmm"), the one the real report's date cells use.
_DATE_FORMAT_ID = 16
#: Fixed timestamp for the workbook's own zip entries, so equal content gives equal bytes.
_ZIP_TIMESTAMP = (2000, 1, 1, 0, 0, 0)


@attrs.frozen
class ExcelDate:
    """A date or date-time cell, written as an Excel serial number with a date style."""

    value: date | datetime


#: A cell: text (inline string), a number, a date, or None for an empty cell.
Cell: TypeAlias = str | int | Decimal | ExcelDate | None


def excel_serial(value: date | datetime) -> Decimal:
    """Return the Excel serial number of a date or naive date-time (days since the epoch)."""
    moment = value if isinstance(value, datetime) else datetime.combine(value, datetime.min.time())
    delta = moment - EXCEL_EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    # Ten decimals is finer than a second (1/86400 = 0.0000115...).
    return (Decimal(seconds) / Decimal(86_400)).quantize(Decimal("1E-10")).normalize()


def _column(index: int) -> str:
    """Return the letters of a zero-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _cell_xml(ref: str, cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str):
        space = ' xml:space="preserve"' if cell != cell.strip() else ""
        return f'<c r="{ref}" t="inlineStr"><is><t{space}>{escape(cell)}</t></is></c>'
    if isinstance(cell, ExcelDate):
        return f'<c r="{ref}" s="1"><v>{excel_serial(cell.value)}</v></c>'
    return f'<c r="{ref}"><v>{cell}</v></c>'


def _sheet_xml(rows: Sequence[Sequence[Cell]]) -> str:
    lines = []
    for row_number, row in enumerate(rows, start=1):
        cells = "".join(
            _cell_xml(f"{_column(col)}{row_number}", cell) for col, cell in enumerate(row)
        )
        lines.append(f'<row r="{row_number}">{cells}</row>')
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{''.join(lines)}</sheetData></worksheet>"
    )


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)
# Style 0 is the default; style 1 applies the date format to serial numbers.
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="10"/><name val="Arial"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    f'<xf numFmtId="{_DATE_FORMAT_ID}" fontId="0" fillId="0" borderId="0" xfId="0" '
    'applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _workbook_xml(sheet_name: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name={quoteattr(sheet_name)} sheetId="1" r:id="rId1"/></sheets>'
        "</workbook>"
    )


def xlsx_bytes(sheet_name: str, rows: Sequence[Sequence[Cell]]) -> bytes:
    """Return a one-sheet workbook holding ``rows`` (row 1 first)."""
    parts = {
        "[Content_Types].xml": _CONTENT_TYPES,
        "_rels/.rels": _ROOT_RELS,
        "xl/workbook.xml": _workbook_xml(sheet_name),
        "xl/_rels/workbook.xml.rels": _WORKBOOK_RELS,
        "xl/styles.xml": _STYLES,
        "xl/worksheets/sheet1.xml": _sheet_xml(rows),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()
