"""``summary.xlsx`` read back: its totals agree with the CSVs and the real report's pins."""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import openpyxl
import pytest

from uitpas_async.cli.main import main
from uitpas_async.cli.summarize import summarize_directory
from uitpas_async.cli.summary_files import EURO_FORMAT
from uitpas_async.cli.summary_tables import period_label
from uitpas_async.reports import read_financial_report
from uitpas_async.sandboxkit.report_content import GovernmentSheet, generate_sheets, report_zip

FIXTURE = "real-financial-report.zip"
#: The real report's totals per government: lines and contribution, pinned by hand.
FIXTURE_TOTALS = {
    "Lokale overheid Aalst": (71, Decimal("744.50")),
    "Lokale overheid Brussel": (22, Decimal("218.75")),
    "Lokale overheid Holsbeek": (5, Decimal("61.00")),
    "Lokale overheid Petit-Fays": (1, Decimal("3.50")),
    "Lokale overheid Tienen": (1, Decimal("3.50")),
}
FIXTURE_LINES, FIXTURE_CONTRIBUTION = 100, Decimal("1031.25")
Q1 = (date(2024, 1, 1), date(2024, 3, 31))
Q2 = (date(2024, 4, 1), date(2024, 6, 30))
SHEETS = ["Per government", "Chart", "Per balie", "Lines", "Problems"]


def add(
    directory: Path,
    balie: str,
    data: bytes,
    *,
    name: str,
    period: tuple[date, date] = Q1,
) -> None:
    """Store a report under ``DIR/<balie>/`` and append its manifest line, as fetch does."""
    path = directory / balie / f"financialOverview_{balie}_{period[0]:%Y%m}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    record = {
        "balie": balie,
        "name": name,
        "start": period[0].isoformat(),
        "end": period[1].isoformat(),
        "state": "done",
        "report_id": f"r-{balie}-{period[0]}",
        "path": str(path),
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "error_code": None,
        "error_message": None,
    }
    with (directory / "manifest.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def sandbox_report(seed: int, period: tuple[date, date] = Q1, *, event: str = "") -> bytes:
    """Return a sandbox report for ``period``; optionally its first event renamed."""
    sheets = generate_sheets(seed, f"key{seed}", "CC Sandbox", *period)
    if event:
        first = sheets[0]
        renamed = (attrs.evolve(first.rows[0], event=event), *first.rows[1:])
        sheets = (GovernmentSheet(first.government, renamed), *sheets[1:])
    return report_zip(sheets, datetime.combine(period[1], datetime.min.time()))


def summarize(directory: Path, **kwargs: Any) -> int:
    """Summarize quietly; return the exit status."""
    with open("/dev/null", "w", encoding="utf-8") as sink:
        return summarize_directory(directory, stream=sink, **kwargs)


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Return a CSV's rows as dicts."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def sheet_rows(workbook: Any, title: str) -> list[dict[str, Any]]:
    """Return a sheet's rows under its header as dicts, up to the first blank row."""
    rows = workbook[title].iter_rows(values_only=True)
    header = next(rows)
    out = []
    for row in rows:
        if all(value is None for value in row):
            break
        out.append(dict(zip(header, row, strict=True)))
    return out


def euro(value: Any) -> Decimal:
    """Return a workbook number as cents (openpyxl reads numbers back as float or int)."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def day(value: Any) -> str:
    """Return a workbook date (read back as a datetime) in the CSVs' ISO form."""
    assert isinstance(value, datetime)
    return value.date().isoformat()


@pytest.fixture
def real_dir(tmp_path: Path, fixture_file: Callable[[str], Path]) -> Path:
    """Return a fetch directory holding the real report for one balie, summarized."""
    add(tmp_path, "werf", fixture_file(FIXTURE).read_bytes(), name="CC De Werf")
    assert summarize(tmp_path) == 0
    return tmp_path


def load(directory: Path) -> Any:
    """Open ``summary/summary.xlsx`` (not read-only: freeze panes and charts are read too)."""
    return openpyxl.load_workbook(directory / "summary" / "summary.xlsx")


def test_real_report_workbook_matches_pins_and_csvs(real_dir: Path) -> None:
    """The real report: each government's lines and contribution as pinned, and as in the CSVs."""
    workbook = load(real_dir)
    assert workbook.sheetnames == SHEETS
    governments = sheet_rows(workbook, "Per government")
    assert {
        row["Government"]: (row["Lines"], euro(row["Contribution"])) for row in governments
    } == FIXTURE_TOTALS
    assert {(day(row["Period from"]), day(row["Period to"])) for row in governments} == {
        ("2024-01-01", "2024-03-31")
    }
    # The grand total row, under a blank row.
    last = [cell.value for cell in list(workbook["Per government"].iter_rows())[-1]]
    assert (last[0], last[4], euro(last[6])) == ("Total", FIXTURE_LINES, FIXTURE_CONTRIBUTION)

    totals = read_csv(real_dir / "summary" / "totals.csv")
    assert [
        (row["Government"], str(row["Lines"]), str(euro(row["Contribution"])), row["Check"])
        for row in governments
    ] == [
        (t["government"], t["lines"], t["contribution"], t["check"])
        for t in totals
        if not t["balie"]
    ]
    assert [
        (row["Balie"], row["Balie key"], row["Government"], str(euro(row["Total price"])))
        for row in sheet_rows(workbook, "Per balie")
    ] == [
        (t["balie_name"], t["balie"], t["government"], t["total_price"])
        for t in totals
        if t["balie"]
    ]

    lines = sheet_rows(workbook, "Lines")
    csv_lines = read_csv(real_dir / "summary" / "lines.csv")
    assert len(lines) == len(csv_lines) == FIXTURE_LINES
    assert sum(euro(row["Contribution"]) for row in lines) == FIXTURE_CONTRIBUTION
    assert [str(euro(row["Contribution"])) for row in lines] == [
        line["contribution"] for line in csv_lines
    ]
    assert sheet_rows(workbook, "Problems") == []


def test_workbook_agrees_with_the_reader(
    real_dir: Path, fixture_file: Callable[[str], Path]
) -> None:
    """Per government, the workbook says what the report reader sums from the sheets."""
    report = read_financial_report(fixture_file(FIXTURE))
    expected = {s.government: (len(s.lines), s.contributions_total) for s in report.sheets}
    rows = sheet_rows(load(real_dir), "Per government")
    assert {r["Government"]: (r["Lines"], euro(r["Contribution"])) for r in rows} == expected


def test_numbers_are_euro_dates_are_dates_and_headers_frozen(real_dir: Path) -> None:
    """Amounts carry the euro format, dates are real dates; every sheet freezes and filters."""
    workbook = load(real_dir)
    for title in SHEETS:
        sheet = workbook[title]
        assert sheet.freeze_panes == "A2", title
        assert sheet.auto_filter.ref is not None, title
        assert sheet.auto_filter.ref.startswith("A1:"), title
        assert all(cell.font.bold for cell in sheet[1]), title
    lines = workbook["Lines"]
    header = [cell.value for cell in lines[1]]
    first = dict(zip(header, lines[2], strict=True))
    assert first["Contribution"].number_format == EURO_FORMAT
    assert isinstance(first["Contribution"].value, int | float)
    assert first["Sold at"].value == datetime(2015, 9, 23, 14, 31, 7)
    assert first["Sold at"].is_date
    assert first["Period from"].is_date
    # The filter covers the header and every line, and nothing more.
    assert (
        lines.auto_filter.ref == f"A1:{lines.cell(1, len(header)).column_letter}{FIXTURE_LINES + 1}"
    )


def test_chart_shows_contribution_per_government(real_dir: Path) -> None:
    """The Chart sheet holds a bar chart over one row per government."""
    workbook = load(real_dir)
    sheet = workbook["Chart"]
    (chart,) = sheet._charts
    assert chart.tagname == "barChart"
    assert (chart.x_axis.delete, chart.y_axis.delete) == (False, False)  # Excel shows both
    rows = sheet_rows(workbook, "Chart")
    assert [row["Government"] for row in rows] == sorted(FIXTURE_TOTALS)
    assert {row["Government"]: euro(row["2024-Q1"]) for row in rows} == {
        government: contribution for government, (_, contribution) in FIXTURE_TOTALS.items()
    }


def test_periods_and_balies_sorted_by_name(tmp_path: Path) -> None:
    """Two quarters, three balies: rows per period, balies by name (not key), totals per period."""
    add(tmp_path, "aaa", sandbox_report(1), name="Zuiderpershuis")
    add(tmp_path, "zzz", sandbox_report(2), name="Arenberg")
    add(tmp_path, "mmm", sandbox_report(3, Q2), name="bibliotheek Mol")
    add(tmp_path, "aaa", sandbox_report(4, Q2), name="Zuiderpershuis", period=Q2)
    assert summarize(tmp_path) == 0
    workbook = load(tmp_path)

    balies = sheet_rows(workbook, "Per balie")
    names = [row["Balie"] for row in balies]
    assert names == sorted(names, key=str.casefold)
    assert (names[0], names[-1]) == ("Arenberg", "Zuiderpershuis")
    assert list(balies[0])[:2] == ["Balie", "Balie key"]

    governments = sheet_rows(workbook, "Per government")
    periods = {(day(r["Period from"]), day(r["Period to"])) for r in governments}
    assert periods == {
        (Q1[0].isoformat(), Q1[1].isoformat()),
        (Q2[0].isoformat(), Q2[1].isoformat()),
    }
    totals = read_csv(tmp_path / "summary" / "totals.csv")
    per_government = {
        (t["government"], t["period_start"]): (int(t["balies"]), Decimal(t["contribution"]))
        for t in totals
        if not t["balie"]
    }
    assert {
        (r["Government"], day(r["Period from"])): (r["Balies"], euro(r["Contribution"]))
        for r in governments
    } == per_government
    # Each government's total row sums its balies' rows of the same period.
    for (government, start), (count, contribution) in per_government.items():
        mine = [
            t
            for t in totals
            if t["balie"] and (t["government"], t["period_start"]) == (government, start)
        ]
        assert (len(mine), sum(Decimal(t["contribution"]) for t in mine)) == (count, contribution)

    chart = sheet_rows(workbook, "Chart")
    assert list(chart[0]) == ["Government", "2024-Q1", "2024-Q2"]
    grand = sum(Decimal(t["contribution"]) for t in totals if t["balie"])
    assert sum(euro(r["2024-Q1"]) + euro(r["2024-Q2"]) for r in chart) == grand


def test_excel_nl_dialect_uses_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    """``--csv-dialect excel-nl``: ';' between fields and ',' before the cents."""
    add(tmp_path, "werf", sandbox_report(5), name="CC De Werf; Zaal 1")
    assert main(["reports", "summarize", str(tmp_path), "--csv-dialect", "excel-nl"]) == 0
    text = (tmp_path / "summary" / "totals.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].count(";") == 10
    totals = read_csv(tmp_path / "summary" / "totals.csv", delimiter=";")
    assert totals[0]["balie_name"] == "CC De Werf; Zaal 1"  # quoted, so the ';' survives
    assert all("," in t["contribution"] and "." not in t["contribution"] for t in totals)
    lines = read_csv(tmp_path / "summary" / "lines.csv", delimiter=";")
    assert lines[0]["period_start"] == "2024-01-01"  # dates stay ISO
    # The workbook's numbers are numbers, whatever the CSV dialect.
    rows = sheet_rows(load(tmp_path), "Per balie")
    assert [str(euro(r["Contribution"])).replace(".", ",") for r in rows] == [
        t["contribution"] for t in totals if t["balie"]
    ]


def test_unknown_dialect_is_a_usage_error(tmp_path: Path) -> None:
    """An unknown ``--csv-dialect`` is refused before anything is read."""
    with pytest.raises(SystemExit) as caught:
        main(["reports", "summarize", str(tmp_path), "--csv-dialect", "excel-fr"])
    assert caught.value.code == 2


def test_formula_and_control_characters_stay_text(tmp_path: Path) -> None:
    """An event named like a formula stays text in the workbook; control characters go."""
    add(tmp_path, "werf", sandbox_report(6, event='=HYPERLINK("x")'), name="@C\x07C")
    assert summarize(tmp_path) == 0
    workbook = load(tmp_path)
    cells = [row for row in workbook["Lines"].iter_rows(min_row=2) if row[0].value == "@CC"]
    assert cells
    header = [cell.value for cell in workbook["Lines"][1]]
    events = [row[header.index("Event")] for row in cells]
    hostile = [cell for cell in events if str(cell.value).startswith("=")]
    assert [(cell.value, cell.data_type) for cell in hostile] == [('=HYPERLINK("x")', "s")]
    assert read_csv(tmp_path / "summary" / "lines.csv")[0]["balie_name"] == "'@C\x07C"


def test_period_label() -> None:
    """A calendar quarter reads as 2024-Q1; anything else as start..end."""
    assert period_label(*Q1) == "2024-Q1"
    assert period_label(date(2024, 10, 1), date(2024, 12, 31)) == "2024-Q4"
    assert period_label(date(2024, 1, 1), date(2024, 1, 31)) == "2024-01-01..2024-01-31"
    assert period_label(None, Q1[1]) == "unknown period"


def test_lines_total_is_a_deprecated_alias(fixture_file: Callable[[str], Path]) -> None:
    """``ReportSheet.lines_total`` still answers, with a DeprecationWarning naming the new name."""
    sheet = read_financial_report(fixture_file(FIXTURE)).sheets[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sheet.lines_total == sheet.contributions_total
    (warning,) = caught
    assert warning.category is DeprecationWarning
    assert "contributions_total" in str(warning.message)
