"""Tiny hostile files built in-test: a minimal BIFF8 .xls writer and an .xlsx with a lying size."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence

from uitpas_async.reports.columns import REPORT_COLUMNS
from uitpas_async.sandboxkit.spreadsheet import xlsx_bytes

#: A BIFF8 cell: (row, column, number).
XlsCell = tuple[int, int, float]


def _record(kind: int, data: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _bof(kind: int) -> bytes:
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, kind, 0x0DBB, 0x07CC, 0, 0x06))


def biff8_workbook(sheets: Sequence[tuple[str, Sequence[XlsCell]]]) -> bytes:
    """Return a BIFF8 Workbook stream: one sheet per (name, number cells), no strings."""
    xf = _record(0x00E0, struct.pack("<HHHBBBBIIH", 0, 0, 0xFFF5, 0x20, 0, 0, 0, 0, 0, 0x20C0))
    font = _record(
        0x0031, struct.pack("<HHHHHBBBB", 200, 0, 0x7FFF, 400, 0, 0, 0, 0, 0) + b"\x05\x00Arial"
    )
    globals_head = _bof(0x0005) + _record(0x0042, struct.pack("<H", 1200)) + font * 5 + xf * 16
    bodies = []
    for _name, cells in sheets:
        body = _bof(0x0010)
        maxrow = max((r for r, _, _ in cells), default=0) + 1
        maxcol = max((c for _, c, _ in cells), default=0) + 1
        body += _record(0x0200, struct.pack("<IIHHH", 0, maxrow, 0, maxcol, 0))
        for row, col, number in cells:
            body += _record(0x0203, struct.pack("<HHHd", row, col, 15, number))
        body += _record(0x000A)
        bodies.append(body)

    def boundsheets(offsets: Sequence[int]) -> bytes:
        out = b""
        for (name, _), offset in zip(sheets, offsets, strict=True):
            encoded = name.encode("latin-1")
            out += _record(
                0x0085, struct.pack("<IBB", offset, 0, 0) + bytes([len(encoded), 0]) + encoded
            )
        return out

    size = len(globals_head) + len(boundsheets([0] * len(sheets))) + len(_record(0x000A))
    offsets = []
    for body in bodies:
        offsets.append(size)
        size += len(body)
    return globals_head + boundsheets(offsets) + _record(0x000A) + b"".join(bodies)


def ole2(stream: bytes, name: str = "Workbook") -> bytes:
    """Wrap one stream in a minimal OLE2 compound document (regular sectors only)."""
    sector = 512
    stream = stream + b"\x00" * (-len(stream) % sector)
    if len(stream) < 4096:
        stream += b"\x00" * (4096 - len(stream))
    n_stream = len(stream) // sector
    # sectors: 0 = FAT, 1 = directory, 2.. = stream
    total = 2 + n_stream
    n_fat_entries = sector // 4
    assert total <= n_fat_entries
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [3 + i for i in range(n_stream - 1)] + [0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (n_fat_entries - len(fat))
    fat_bytes = struct.pack(f"<{n_fat_entries}I", *fat)

    def entry(name: str, kind: int, start: int, size: int, child: int = 0xFFFFFFFF) -> bytes:
        encoded = (name + "\x00").encode("utf-16-le")
        return (
            encoded.ljust(64, b"\x00")
            + struct.pack("<HBB", len(encoded), kind, 1)
            + struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFF, child)
            + b"\x00" * 16
            + struct.pack("<I", 0)
            + b"\x00" * 16
            + struct.pack("<IIHH", start, size, 0, 0)
        )

    root = entry("Root Entry", 5, 0xFFFFFFFE, 0, child=1)
    book = entry(name, 2, 2, len(stream))
    directory = (root + book).ljust(sector, b"\x00")
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\x00" * 6
        + struct.pack("<IIIIIIII", 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE)
        + struct.pack("<I", 0)
    )
    header += struct.pack("<109I", *([0] + [0xFFFFFFFF] * 108))
    # fix: header fields: num FAT sectors=1, first dir sector=1, ..., difat[0]=0
    header = header.ljust(sector, b"\xff")[:sector]
    return header + fat_bytes + directory + stream


def xls_bytes(sheets: Sequence[tuple[str, Sequence[XlsCell]]]) -> bytes:
    """Return a legacy .xls workbook holding number cells only."""
    return ole2(biff8_workbook(sheets))


#: A sheet of the report's layout with no lines: header row and a zero Total.
EMPTY_REPORT_ROWS: list[list[str | int | None]] = [
    list(REPORT_COLUMNS),
    ["Total Gent", *([None] * (len(REPORT_COLUMNS) - 2)), 0],
]


def xlsx_with_sheet_xml(
    edit: str, *, at: str = "<sheetData>", rows: Sequence[Sequence[str | int | None]] = (("x",),)
) -> bytes:
    """Return a one-sheet .xlsx whose sheet XML has ``edit`` inserted before ``at``."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes("Overview", rows)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("xl/worksheets/"):
                text = data.decode()
                text = text.replace(at, edit + at, 1) if at in text else text
                data = text.encode()
            target.writestr(info.filename, data)
    return out.getvalue()
