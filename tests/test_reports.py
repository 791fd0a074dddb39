"""Reading financial reports: the real fixture, sandbox reports, hostile archives, drift."""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from uitpas_async.errors import UitpasError
from uitpas_async.reports.reader import (
    COLUMNS,
    ArchiveLimits,
    ArchivePathError,
    ArchiveTooLargeError,
    CorruptArchiveError,
    EncryptedArchiveError,
    FinancialReport,
    NestedArchiveError,
    ReportFileError,
    ReportLayoutError,
    ReportLayoutWarning,
    TotalMismatchError,
    UnsafeArchiveError,
    aggregate_reports,
    parse_financial_report,
    read_financial_report,
)
from uitpas_async.sandboxkit.report_content import generate_sheets, report_zip

FIXTURE = "real-financial-report.zip"

#: What the real fixture holds, read once by hand with xlrd and pinned here:
#: government -> (lines, sum of TOTALPRICE, sum of CONTRIBUTION = the Total row).
FIXTURE_TOTALS = {
    "Lokale overheid Aalst": (71, Decimal("1567.00"), Decimal("744.50")),
    "Lokale overheid Brussel": (22, Decimal("310.00"), Decimal("218.75")),
    "Lokale overheid Holsbeek": (5, Decimal("125.00"), Decimal("61.00")),
    "Lokale overheid Petit-Fays": (1, Decimal("10.00"), Decimal("3.50")),
    "Lokale overheid Tienen": (1, Decimal("10.00"), Decimal("3.50")),
}

HEADER_BLOCK: list[list[Any]] = [
    ["ONKOSTENNOTA", None, None, "Datum: 02/04/2024"],
    [],
    ["Naam vereniging: "],
    ["IBAN \u2013 Rekeningnummer: "],
    [],
]


# -- builders ----------------------------------------------------------------------


def line_row(
    government: str = "Lokale overheid Gent",
    *,
    price: Any = 20.0,
    contribution: Any = 10.0,
    sold: Any = datetime(2024, 1, 5, 14, 30, 0),
) -> list[Any]:
    """Return one table row in the server's column order."""
    return [
        "CC Test ",
        government,
        sold,
        "0f1e2d3c-uid",
        "Gent",
        "UiTPAS Gent",
        "bon",
        None,
        "Theater",
        datetime(2024, 2, 1),
        None,
        price,
        contribution,
    ]


def total_row(government: str = "Lokale overheid Gent", total: Any = 10.0) -> list[Any]:
    """Return the ``Total <government>`` row: label under OVERHEID, sum under CONTRIBUTION."""
    return [None, f"Total {government}", *([None] * 10), total]


def xlsx(rows: Sequence[Sequence[Any]], *, sheet: str = "Overview", epoch: Any = None) -> bytes:
    """Return an .xlsx workbook holding ``rows``, written with openpyxl."""
    book = openpyxl.Workbook()
    if epoch is not None:
        book.epoch = epoch
    worksheet = book.active
    worksheet.title = sheet
    for row in rows:
        worksheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def sheet_rows(
    header: Sequence[str] = COLUMNS,
    lines: Sequence[list[Any]] | None = None,
    total: list[Any] | None = None,
) -> list[list[Any]]:
    """Return a whole sheet: header block, header row, lines, Total row."""
    return [
        *HEADER_BLOCK,
        list(header),
        *(lines if lines is not None else [line_row()]),
        total if total is not None else total_row(),
    ]


def zip_of(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """Return a zip holding ``members`` (names kept as given, even hostile ones)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            archive.writestr(info, data, compress_type=compression)
    return buffer.getvalue()


def set_encrypted_flag(data: bytes) -> bytes:
    """Set bit 0 (encrypted) in every local and central header, as a ZipCrypto zip has it."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (found := out.find(signature, start)) != -1:
            (flags,) = struct.unpack_from("<H", out, found + offset)
            struct.pack_into("<H", out, found + offset, flags | 0x1)
            start = found + 4
    return bytes(out)


def shrink_declared_size(data: bytes, size: int) -> bytes:
    """Make every central-directory entry lie that its member expands to ``size`` bytes."""
    out = bytearray(data)
    start = 0
    while (found := out.find(b"PK\x01\x02", start)) != -1:
        struct.pack_into("<I", out, found + 24, size)  # uncompressed size
        start = found + 4
    return bytes(out)


def symlink_zip() -> bytes:
    """Return a zip whose one member is a symbolic link."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link.xls")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def duplicate_zip() -> bytes:
    """Return a zip holding one member name twice."""
    book = xlsx(sheet_rows())
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("Gent.xlsx", book)
            archive.writestr("Gent.xlsx", book)
    return buffer.getvalue()


def one_sheet(report: FinancialReport) -> Any:
    """Return the only sheet of a report."""
    assert len(report.sheets) == 1
    return report.sheets[0]


# -- the real fixture --------------------------------------------------------------


@pytest.fixture
def real_report(fixture_file: Callable[[str], Path]) -> FinancialReport:
    """Return the real report, read from ../shared/fixtures (skips when absent)."""
    return read_financial_report(fixture_file(FIXTURE))


def test_fixture_has_five_governments_that_add_up(real_report: FinancialReport) -> None:
    """The real report: five .xls sheets, each Total equal to the sum of its lines."""
    assert len(real_report.sheets) == 5
    assert {sheet.government for sheet in real_report.sheets} == set(FIXTURE_TOTALS)
    assert real_report.mismatches == ()
    real_report.verify()
    for sheet in real_report.sheets:
        assert sheet.member.endswith("_20151007_1404.xls")
        assert sheet.sheet == "Overview"
        assert sheet.stated_total == sheet.contributions_total


@pytest.mark.parametrize(("government", "expected"), sorted(FIXTURE_TOTALS.items()))
def test_fixture_totals_are_pinned(
    real_report: FinancialReport, government: str, expected: tuple[int, Decimal, Decimal]
) -> None:
    """Each government's lines, total price and contribution are the numbers read by hand."""
    (sheet,) = [s for s in real_report.sheets if s.government == government]
    lines, total_price, contribution = expected
    assert (len(sheet.lines), sheet.total_price, sheet.contributions_total) == expected
    assert sheet.stated_total == contribution
    assert all(line.government == government for line in sheet.lines)
    assert len(sheet.lines) == lines
    assert sheet.total_price == total_price


def test_fixture_lines_are_typed(real_report: FinancialReport) -> None:
    """Serial dates become datetimes (date mode 1900), empty DATE_FROM is None, money is cents."""
    tienen = next(s for s in real_report.sheets if s.government == "Lokale overheid Tienen")
    (line,) = tienen.lines
    assert line.sold_at == datetime(2015, 9, 23, 14, 31, 7)
    assert line.organiser == "CC De Werf"  # the server's trailing space is gone
    assert line.uid == "e1e2b335-e756-4e72-bb0f-3d163a583b35"
    assert (line.municipality, line.card_system) == ("Tienen", "UiTPAS Regio Aalst")
    assert (line.coupon, line.group_pass, line.event) == (
        "CC de Werf bon sept",
        None,
        "Altijd open",
    )
    assert (line.event_from, line.event_to) == (None, None)
    assert (line.total_price, line.contribution) == (Decimal("10.00"), Decimal("3.50"))
    assert str(line.contribution) == "3.50"
    aalst = next(s for s in real_report.sheets if s.government == "Lokale overheid Aalst")
    assert aalst.lines[0].event_from == date(2013, 10, 5)
    assert aalst.lines[0].sold_at == datetime(2015, 8, 12, 12, 35, 55)


def test_uid_is_kept_out_of_reprs(real_report: FinancialReport) -> None:
    """A line's repr (and so any log of it) never shows the passholder's UID."""
    line = real_report.lines[0]
    assert line.uid
    assert line.uid not in repr(line)
    assert line.uid not in repr(real_report)


def test_aggregate_sums_per_balie_and_government(real_report: FinancialReport) -> None:
    """Aggregating two reports of one balie and one of another sums per (balie, government)."""
    totals = aggregate_reports([("b1", real_report), ("b1", real_report), ("b2", real_report)])
    assert len(totals) == 10
    by_key = {(t.balie, t.government): t for t in totals}
    aalst = by_key["b1", "Lokale overheid Aalst"]
    assert (aalst.lines, aalst.total_price, aalst.contribution) == (
        142,
        Decimal("3134.00"),
        Decimal("1489.00"),
    )
    assert aalst.stated_total == aalst.contribution
    assert aalst.balanced
    assert by_key["b2", "Lokale overheid Tienen"].lines == 1


# -- sandbox reports ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_sandbox_reports_parse_and_cross_check(seed: int) -> None:
    """The sandbox's .xlsx reports parse to exactly the rows it generated."""
    sheets = generate_sheets(seed, "key", "CC Sandbox", date(2024, 1, 1), date(2024, 3, 31))
    report = parse_financial_report(report_zip(sheets, datetime(2024, 4, 2, 10, 0)))
    assert report.mismatches == ()
    assert [s.government for s in report.sheets] == [g.government for g in sheets]
    for parsed, generated in zip(report.sheets, sheets, strict=True):
        assert parsed.stated_total == generated.total
        assert len(parsed.lines) == len(generated.rows)
        for line, row in zip(parsed.lines, generated.rows, strict=True):
            assert line.sold_at == row.sold_at
            assert line.uid == row.uid
            assert (line.event_from, line.event_to) == (row.event_from, row.event_to)
            assert (line.total_price, line.contribution) == (row.total_price, row.contribution)
            assert line.coupon == (row.coupon or None)


async def test_sandbox_download_parses(tmp_path: Path) -> None:
    """A report fetched from the running sandbox with the client parses and adds up."""
    from uitpas_async import UitpasClient
    from uitpas_async.xml_api.sandbox import Sandbox, SandboxConfig

    async with Sandbox(SandboxConfig(balies=1, generation_median=0.05)) as sandbox:
        client = UitpasClient(sandbox.base_url, sandbox.credentials)
        async with client:
            downloaded = await client.fetch_financial_report(
                date(2024, 1, 1),
                date(2024, 3, 31),
                tmp_path,
                balie_consumer_key=sandbox.balies[0].key,
            )
    report = read_financial_report(downloaded.path)
    assert report.sheets
    assert report.mismatches == ()


# -- workbooks of our own: date modes, money, drift --------------------------------


def test_xlsx_serials_use_the_workbooks_date_mode() -> None:
    """A bare serial in DATUM is read with the workbook's epoch: 1904 shifts it by 1462 days."""
    serial = 45296.6041666667  # 2024-01-05 14:30 in the 1900 system
    rows = sheet_rows(lines=[line_row(sold=serial)])
    in_1900 = one_sheet(parse_financial_report(zip_of({"g.xlsx": xlsx(rows)}))).lines[0]
    in_1904 = one_sheet(
        parse_financial_report(zip_of({"g.xlsx": xlsx(rows, epoch=CALENDAR_MAC_1904)}))
    ).lines[0]
    assert in_1900.sold_at == datetime(2024, 1, 5, 14, 30)
    assert in_1904.sold_at == datetime(2028, 1, 6, 14, 30)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (2.675, Decimal("2.68")),  # float rounding would give 2.67; half-up on the decimal
        (0.125, Decimal("0.13")),
        (10, Decimal("10.00")),
        ("7.5", Decimal("7.50")),
        (-3.5, Decimal("-3.50")),  # a refund line stays negative
    ],
)
def test_money_is_decimal_rounded_half_up_to_cents(cell: Any, expected: Decimal) -> None:
    """TOTALPRICE is a Decimal with two places, rounded half up."""
    rows = sheet_rows(lines=[line_row(price=cell)])
    line = one_sheet(parse_financial_report(zip_of({"g.xlsx": xlsx(rows)}))).lines[0]
    assert line.total_price == expected
    assert line.total_price.as_tuple().exponent == -2


def test_header_found_by_names_not_position() -> None:
    """A longer header block, and reordered columns, still parse."""
    order = list(reversed(COLUMNS))
    line = dict(zip(COLUMNS, line_row(), strict=True))
    total = dict(zip(COLUMNS, total_row(), strict=True))
    rows = [
        *HEADER_BLOCK,
        ["Extra uitleg", "in", "het", "kopblok"],
        [],
        order,
        [line[name] for name in order],
        [total[name] for name in order],
    ]
    sheet = one_sheet(parse_financial_report(zip_of({"g.xlsx": xlsx(rows)})))
    assert sheet.government == "Lokale overheid Gent"
    assert sheet.lines[0].contribution == Decimal("10.00")
    assert sheet.balanced


def test_renamed_header_names_file_and_sheet() -> None:
    """A renamed column is a layout error naming the archive, workbook, sheet and the column."""
    header = [name if name != "CONTRIBUTION" else "BIJDRAGE" for name in COLUMNS]
    data = zip_of({"Lokale overheid Gent_20240402.xlsx": xlsx(sheet_rows(header), sheet="Blad1")})
    with pytest.raises(ReportLayoutError) as caught:
        parse_financial_report(data, source="reports/gent.zip")
    error = caught.value
    assert (error.member, error.sheet, error.path) == (
        "Lokale overheid Gent_20240402.xlsx",
        "Blad1",
        "reports/gent.zip",
    )
    for part in (
        "reports/gent.zip",
        "Lokale overheid Gent_20240402.xlsx",
        "'Blad1'",
        "CONTRIBUTION",
    ):
        assert part in str(error)
    assert error.code == "REPORT_LAYOUT"
    assert isinstance(error, UitpasError)


def test_missing_header_row_is_an_error() -> None:
    """A sheet with no header row at all is a layout error."""
    rows = [*HEADER_BLOCK, line_row(), total_row()]
    with pytest.raises(ReportLayoutError, match="no header row"):
        parse_financial_report(zip_of({"g.xlsx": xlsx(rows)}), source="g.zip")


def test_extra_column_warns_and_still_parses() -> None:
    """An added column is ignored with a warning that names it."""
    rows = sheet_rows(
        [*COLUMNS, "OPMERKING"],
        [[*line_row(), "nieuw"]],
        [*total_row(), None],
    )
    with pytest.warns(ReportLayoutWarning, match="extra columns OPMERKING"):
        report = parse_financial_report(zip_of({"g.xlsx": xlsx(rows)}), source="g.zip")
    assert one_sheet(report).lines[0].contribution == Decimal("10.00")


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (sheet_rows()[:-1], "no 'Total <government>' row"),
        ([*sheet_rows(), line_row()], "data after the Total row"),
        (sheet_rows(lines=[line_row(contribution="tien")]), "CONTRIBUTION is not an amount"),
        (sheet_rows(lines=[line_row(price=None)]), "TOTALPRICE is empty"),
        (sheet_rows(lines=[line_row(sold=None)]), "DATUM is empty"),
        (sheet_rows(lines=[line_row(sold="gisteren")]), "DATUM is not a date"),
        (sheet_rows(total=total_row(total=None)), "Total is empty"),
        (
            sheet_rows(lines=[line_row("Lokale overheid Aalst")]),
            "a line of 'Lokale overheid Aalst'",
        ),
    ],
    ids=[
        "no-total-row",
        "rows-after-total",
        "text-amount",
        "empty-price",
        "empty-date",
        "text-date",
        "empty-total",
        "other-government",
    ],
)
def test_bad_sheets_are_layout_errors(rows: list[list[Any]], match: str) -> None:
    """Sheets an accountant could not defend are refused, with the row and column named."""
    with pytest.raises(ReportLayoutError, match=match):
        parse_financial_report(zip_of({"g.xlsx": xlsx(rows)}))


def test_wrong_total_is_reported_not_corrected() -> None:
    """A Total row that disagrees with the lines is kept as stated and listed as a mismatch."""
    rows = sheet_rows(total=total_row(total=12.5))
    report = parse_financial_report(zip_of({"g.xlsx": xlsx(rows)}), source="g.zip")
    sheet = one_sheet(report)
    assert (sheet.stated_total, sheet.contributions_total, sheet.balanced) == (
        Decimal("12.50"),
        Decimal("10.00"),
        False,
    )
    (mismatch,) = report.mismatches
    assert (mismatch.stated, mismatch.computed) == (Decimal("12.50"), Decimal("10.00"))
    assert "Lokale overheid Gent" in str(mismatch)
    assert "12.50" in str(mismatch)
    with pytest.raises(TotalMismatchError) as caught:
        report.verify()
    assert caught.value.mismatches == (mismatch,)


def test_blank_form_fields_and_rows_do_not_matter() -> None:
    """Blank rows between lines and filled-in form fields in the header block are ignored."""
    rows = sheet_rows(lines=[line_row(), [], [None, "  "], line_row()], total=total_row(total=20))
    rows[2] = ["Naam vereniging: CC Test vzw"]
    sheet = one_sheet(parse_financial_report(zip_of({"g.xlsx": xlsx(rows)})))
    assert len(sheet.lines) == 2
    assert sheet.balanced


def test_non_workbook_member_is_ignored_with_a_warning() -> None:
    """A stray text file beside the workbooks is skipped, with a warning."""
    data = zip_of({"g.xlsx": xlsx(sheet_rows()), "README.txt": b"hallo"})
    with pytest.warns(ReportLayoutWarning, match="README.txt"):
        report = parse_financial_report(data)
    assert len(report.sheets) == 1


# -- hostile archives --------------------------------------------------------------

GOOD_BOOK = xlsx(sheet_rows())
SMALL = ArchiveLimits(max_total_bytes=256 * 1024, max_members=5)


def _bomb() -> bytes:
    # 4 MiB of zeros deflate to about 4 KiB: far over SMALL's limit once expanded.
    return zip_of({"Lokale overheid Gent.xls": bytes(4 * 1024 * 1024)})


HOSTILE: list[tuple[str, Callable[[], bytes], type[ReportFileError]]] = [
    ("zip-slip", lambda: zip_of({"../../evil.xls": b"x"}), ArchivePathError),
    ("zip-slip-inside", lambda: zip_of({"a/../../evil.xlsx": b"x"}), ArchivePathError),
    ("backslash-slip", lambda: zip_of({"..\\evil.xls": b"x"}), ArchivePathError),
    ("absolute-path", lambda: zip_of({"/etc/cron.d/evil.xls": b"x"}), ArchivePathError),
    ("windows-drive", lambda: zip_of({"C:/evil.xls": b"x"}), ArchivePathError),
    ("symlink", symlink_zip, ArchivePathError),
    ("bomb", _bomb, ArchiveTooLargeError),
    ("bomb-lying-size", lambda: shrink_declared_size(_bomb(), 1000), CorruptArchiveError),
    (
        "too-many-members",
        lambda: zip_of({f"g{i}.xlsx": GOOD_BOOK for i in range(6)}),
        ArchiveTooLargeError,
    ),
    (
        "archive-file-too-big",
        lambda: zip_of({"g.xls": bytes(300 * 1024)}, compression=0),
        ArchiveTooLargeError,
    ),
    ("encrypted", lambda: set_encrypted_flag(zip_of({"g.xlsx": GOOD_BOOK})), EncryptedArchiveError),
    (
        "nested-zip",
        lambda: zip_of({"inner.zip": zip_of({"g.xlsx": GOOD_BOOK})}),
        NestedArchiveError,
    ),
    (
        "nested-disguised",
        lambda: zip_of({"Lokale overheid Gent.xls": zip_of({"g.xlsx": GOOD_BOOK})}),
        NestedArchiveError,
    ),
    ("nested-gzip", lambda: zip_of({"g.xlsx.gz": b"\x1f\x8b..."}), NestedArchiveError),
    ("duplicate-member", duplicate_zip, UnsafeArchiveError),
    ("truncated", lambda: zip_of({"g.xlsx": GOOD_BOOK})[:-200], CorruptArchiveError),
    ("not-a-zip", lambda: b"<html><body>502 Bad Gateway</body></html>", CorruptArchiveError),
    ("empty-file", lambda: b"", CorruptArchiveError),
    ("no-workbook", lambda: zip_of({}), CorruptArchiveError),
    ("fake-xls", lambda: zip_of({"g.xls": b"not an OLE2 file"}), CorruptArchiveError),
    ("fake-xlsx", lambda: zip_of({"g.xlsx": b"PK\x03\x04 garbage"}), CorruptArchiveError),
]


@pytest.mark.parametrize(
    ("build", "error"), [(b, e) for _, b, e in HOSTILE], ids=[name for name, _, _ in HOSTILE]
)
def test_hostile_archives_are_refused(
    build: Callable[[], bytes], error: type[ReportFileError]
) -> None:
    """Each hostile archive raises its own typed error, naming the report."""
    with pytest.raises(error) as caught:
        parse_financial_report(build(), source="hostile.zip", limits=SMALL)
    assert type(caught.value) is error
    assert str(caught.value).startswith("hostile.zip: ")
    assert isinstance(caught.value, UitpasError)


def test_bomb_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """The declared sizes refuse a bomb before a single member is opened."""

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was opened")

    bomb = _bomb()
    monkeypatch.setattr(zipfile.ZipFile, "open", no_open)
    with pytest.raises(ArchiveTooLargeError, match="declares"):
        parse_financial_report(bomb, limits=SMALL)


def test_real_fixture_truncated_is_corrupt(fixture_file: Callable[[str], Path]) -> None:
    """The real report cut in half is a corrupt archive, not a crash."""
    data = fixture_file(FIXTURE).read_bytes()
    with pytest.raises(CorruptArchiveError, match="truncated"):
        parse_financial_report(data[: len(data) // 2], source="half.zip")


def test_missing_file_is_a_report_file_error(tmp_path: Path) -> None:
    """A report path that does not exist raises ReportFileError naming it."""
    with pytest.raises(ReportFileError, match=r"missing\.zip"):
        read_financial_report(tmp_path / "missing.zip")
