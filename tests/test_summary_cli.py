"""``reports summarize DIR``: CSVs, the table, cross-checks, privacy and exit status."""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import openpyxl
import pytest

from uitpas_async.cli.main import main
from uitpas_async.cli.summarize import (
    LINE_COLUMNS,
    TOTAL_COLUMNS,
    add_summarize_command,
    summarize_directory,
)
from uitpas_async.sandboxkit.report_content import (
    GovernmentSheet,
    generate_sheets,
    report_zip,
    sheet_rows,
)
from uitpas_async.sandboxkit.spreadsheet import xlsx_bytes

FIXTURE = "real-financial-report.zip"
#: A passholder UID from the real fixture's Tienen sheet.
FIXTURE_UID = "e1e2b335-e756-4e72-bb0f-3d163a583b35"
COMPLETED = datetime(2024, 4, 2, 10, 0)


def add_report(
    directory: Path,
    balie: str,
    data: bytes | None,
    *,
    name: str = "",
    state: str = "done",
    sha256: str | None = None,
) -> None:
    """Store a report as ``reports fetch`` does and append its manifest line."""
    path = directory / balie / f"financialOverview_{balie}.zip"
    if data is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    record = {
        "balie": balie,
        "name": name or None,
        "start": "2024-01-01",
        "end": "2024-03-31",
        "state": state,
        "report_id": "r-" + balie if state == "done" else None,
        "path": str(path) if state == "done" else None,
        "sha256": (sha256 or hashlib.sha256(data).hexdigest()) if data is not None else None,
        "bytes": len(data) if data is not None else None,
        "error_code": None if state == "done" else "ACCESS_DENIED",
        "error_message": None if state == "done" else "no permission",
    }
    with (directory / "manifest.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read_csv(path: Path) -> list[dict[str, str]]:
    """Return a CSV's rows as dicts (the files carry a BOM for Excel)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def output_text(path: Path) -> str:
    """Return a CSV's text, or every cell of a workbook joined, to search for a value."""
    if path.suffix != ".xlsx":
        return path.read_text(encoding="utf-8-sig")
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return "\n".join(
            str(value)
            for sheet in workbook.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
        )
    finally:
        workbook.close()


def sandbox_report(seed: int = 0, *, wrong_total: Decimal | None = None, event: str = "") -> bytes:
    """Return a sandbox report zip; optionally with a wrong Total row or a given event name."""
    sheets = generate_sheets(seed, f"key{seed}", "CC Sandbox", date(2024, 1, 1), date(2024, 3, 31))
    if event:
        row = sheets[0].rows[0]
        sheets = (
            GovernmentSheet(
                sheets[0].government,
                (attrs.evolve(row, event=event), *sheets[0].rows[1:]),
            ),
            *sheets[1:],
        )
    if wrong_total is None:
        return report_zip(sheets, COMPLETED)
    rows = sheet_rows(sheets[0], COMPLETED.date())
    rows[-1][-1] = wrong_total
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{sheets[0].government}.xlsx", xlsx_bytes("Overview", rows))
    return buffer.getvalue()


def run(directory: Path, **kwargs: Any) -> tuple[int, str]:
    """Summarize ``directory``; return the exit status and the printed text."""
    stream = io.StringIO()
    status = summarize_directory(directory, stream=stream, **kwargs)
    return status, stream.getvalue()


@pytest.fixture
def fixture_dir(tmp_path: Path, fixture_file: Callable[[str], Path]) -> Path:
    """Return a fetch directory holding the real report for one balie."""
    add_report(tmp_path, "werf", fixture_file(FIXTURE).read_bytes(), name="CC De Werf")
    return tmp_path


# -- the summary -------------------------------------------------------------------


def test_missing_manifest_exits_2(tmp_path: Path) -> None:
    """Without manifest.jsonl there is nothing to summarize: exit 2, and it says why."""
    status, text = run(tmp_path)
    assert status == 2
    assert "manifest.jsonl" in text
    assert not (tmp_path / "summary").exists()


def test_real_report_totals(fixture_dir: Path) -> None:
    """The real report: exit 0, totals.csv per government, lines.csv with every line."""
    status, text = run(fixture_dir)
    assert status == 0
    totals = read_csv(fixture_dir / "summary" / "totals.csv")
    assert list(totals[0]) == list(TOTAL_COLUMNS)
    expected = [
        ("Lokale overheid Aalst", "71", "1567.00", "744.50", "ok"),
        ("Lokale overheid Brussel", "22", "310.00", "218.75", "ok"),
        ("Lokale overheid Holsbeek", "5", "125.00", "61.00", "ok"),
        ("Lokale overheid Petit-Fays", "1", "10.00", "3.50", "ok"),
        ("Lokale overheid Tienen", "1", "10.00", "3.50", "ok"),
    ]
    balie_rows = [t for t in totals if t["balie"]]
    government_rows = [t for t in totals if not t["balie"]]
    for rows in (balie_rows, government_rows):
        assert [
            (t["government"], t["lines"], t["total_price"], t["contribution"], t["check"])
            for t in rows
        ] == expected
        periods = {(t["period_start"], t["period_end"]) for t in rows}
        assert periods == {("2024-01-01", "2024-03-31")}
    assert {(t["balie"], t["balie_name"]) for t in balie_rows} == {("werf", "CC De Werf")}
    assert {(t["balie_name"], t["balies"]) for t in government_rows} == {("all balies", "1")}
    lines = read_csv(fixture_dir / "summary" / "lines.csv")
    assert len(lines) == 100
    assert (lines[0]["period_start"], lines[0]["period_end"]) == ("2024-01-01", "2024-03-31")
    assert lines[0]["sold_at"] == "2015-09-23 14:31:07"
    assert "1031.25" in text  # the grand total of contributions
    assert "Lokale overheid Aalst" in text
    assert read_csv(fixture_dir / "summary" / "problems.csv") == []


def test_uid_left_out_unless_asked(fixture_dir: Path) -> None:
    """No output holds a UID by default; --include-uid adds the column."""
    status, text = run(fixture_dir)
    assert status == 0
    assert FIXTURE_UID not in text
    outputs = sorted((fixture_dir / "summary").iterdir())
    assert [output.suffix for output in outputs] == [".csv", ".csv", ".xlsx", ".csv"]
    for output in outputs:
        assert FIXTURE_UID not in output_text(output)
    assert "uid" not in read_csv(fixture_dir / "summary" / "lines.csv")[0]

    status, _ = run(fixture_dir, include_uid=True)
    lines = read_csv(fixture_dir / "summary" / "lines.csv")
    assert status == 0
    assert list(lines[0]) == list(LINE_COLUMNS)
    assert lines[0]["uid"] == FIXTURE_UID


def test_wrong_total_exits_1_and_is_named(tmp_path: Path) -> None:
    """A Total row that disagrees is shown as stated, flagged in every output, exit 1."""
    add_report(tmp_path, "good", sandbox_report(1))
    add_report(tmp_path, "bad", sandbox_report(2, wrong_total=Decimal("999.99")))
    status, text = run(tmp_path)
    assert status == 1
    assert "MISMATCH" in text
    assert "999.99" in text
    bad_rows = [t for t in read_csv(tmp_path / "summary" / "totals.csv") if t["balie"] == "bad"]
    assert [t["check"] for t in bad_rows] == ["MISMATCH"]
    assert bad_rows[0]["stated_total"] == "999.99"
    assert bad_rows[0]["contribution"] != "999.99"  # the lines' sum, never overwritten
    (problem,) = read_csv(tmp_path / "summary" / "problems.csv")
    assert (problem["kind"], problem["balie"]) == ("mismatch", "bad")
    assert "999.99" in problem["detail"]


@pytest.mark.parametrize(
    ("data", "sha256", "expected"),
    [
        (b"<html>502</html>", None, "CORRUPT_REPORT"),
        (b"PK\x03\x04 truncated", None, "CORRUPT_REPORT"),
        (None, None, "REPORT_FILE"),  # listed as done, but the file is gone
        (b"", "0" * 64, "REPORT_FILE"),  # changed since download: SHA-256 differs
    ],
    ids=["not-a-zip", "truncated", "missing-file", "sha256-differs"],
)
def test_unreadable_report_exits_1_and_is_named(
    tmp_path: Path, data: bytes | None, sha256: str | None, expected: str
) -> None:
    """A report that cannot be used is named with its error code; the others still total."""
    add_report(tmp_path, "good", sandbox_report(1))
    if data == b"":
        data = sandbox_report(3)
    add_report(tmp_path, "broken", data, sha256=sha256)
    status, text = run(tmp_path)
    assert status == 1
    assert "UNREADABLE: broken" in text
    assert expected in text
    totals = read_csv(tmp_path / "summary" / "totals.csv")
    assert {t["balie"] for t in totals} == {"good", ""}  # "": the governments' totals
    (problem,) = read_csv(tmp_path / "summary" / "problems.csv")
    assert (problem["kind"], problem["balie"]) == ("unreadable", "broken")


def test_hostile_report_is_refused_not_extracted(tmp_path: Path) -> None:
    """A zip-slip report is unreadable (exit 1) and nothing lands outside the directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../escaped.xls", b"x")
    add_report(tmp_path, "evil", buffer.getvalue())
    status, text = run(tmp_path)
    assert status == 1
    assert "ARCHIVE_PATH" in text
    assert not list(tmp_path.parent.glob("escaped.xls"))


def test_unfetched_report_makes_the_summary_incomplete(tmp_path: Path) -> None:
    """A failed fetch in the manifest is named, and the summary exits 1 as incomplete."""
    add_report(tmp_path, "good", sandbox_report(1))
    add_report(tmp_path, "denied", None, state="failed")
    status, text = run(tmp_path)
    assert status == 1
    assert "NOT-FETCHED: denied" in text
    assert "ACCESS_DENIED" in text


def test_formulas_in_text_are_neutralised(tmp_path: Path) -> None:
    """An event named like a formula is written with a quote, so Excel shows it as text."""
    add_report(tmp_path, "b", sandbox_report(1, event='=HYPERLINK("http://x","klik")'))
    status, _ = run(tmp_path)
    assert status == 0
    events = [line["event"] for line in read_csv(tmp_path / "summary" / "lines.csv")]
    assert '\'=HYPERLINK("http://x","klik")' in events
    assert not any(event.startswith("=") for event in events)


def test_moved_directory_still_finds_reports(tmp_path: Path) -> None:
    """Relative manifest paths from another working directory resolve under DIR."""
    source = tmp_path / "old"
    source.mkdir()
    add_report(source, "b", sandbox_report(1))
    moved = tmp_path / "new"
    shutil.move(source, moved)
    status, _ = run(moved)
    assert status == 0


def test_outputs_are_replaced_whole(fixture_dir: Path) -> None:
    """A second run replaces the CSVs and leaves no temporary files behind."""
    run(fixture_dir)
    run(fixture_dir)
    names = sorted(path.name for path in (fixture_dir / "summary").iterdir())
    assert names == ["lines.csv", "problems.csv", "summary.xlsx", "totals.csv"]


# -- the command -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Build a parser with ``reports summarize`` as cli.build_parser will wire it."""
    parser = argparse.ArgumentParser(prog="uitpas-async")
    commands = parser.add_subparsers(dest="command", required=True)
    reports = commands.add_parser("reports")
    add_summarize_command(
        reports.add_subparsers(dest="reports_command", required=True),
        argparse.ArgumentParser(add_help=False),
    )
    return parser


def test_help_says_uid_is_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    """``reports summarize --help`` says UIDs identify passholders and are left out."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reports", "summarize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--include-uid" in text
    assert "identifies a passholder" in text
    assert "left out of every output unless --include-uid" in text


def test_command_runs_the_summary(fixture_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The parsed command's handler summarizes DIR and returns its exit status."""
    args = build_parser().parse_args(["reports", "summarize", str(fixture_dir), "--include-uid"])
    assert asyncio.run(args.handler(args)) == 0
    assert "uid" in read_csv(fixture_dir / "summary" / "lines.csv")[0]


def test_fetch_then_summarize_end_to_end(tmp_path: Path) -> None:
    """``reports fetch --sandbox 4`` then summarize: every sheet adds up, exit 0."""
    out = tmp_path / "out"
    assert main(["reports", "fetch", "--sandbox", "4", "--out", str(out)]) == 0
    status, text = run(out)
    assert status == 0, text
    everything = read_csv(out / "summary" / "totals.csv")
    assert all(t["check"] == "ok" for t in everything)
    totals = [t for t in everything if t["balie"]]  # the others are the governments' totals
    lines = read_csv(out / "summary" / "lines.csv")
    assert len({t["balie"] for t in totals}) == 4
    assert sum(int(t["lines"]) for t in totals) == len(lines)
    assert sum(Decimal(t["contribution"]) for t in totals) == sum(
        Decimal(line["contribution"]) for line in lines
    )
    assert "uid" not in lines[0]


@pytest.mark.parametrize("api", ["xml", "4"])
def test_fetch_summarize_takes_the_csv_dialect(tmp_path: Path, api: str) -> None:
    """``reports fetch --summarize --csv-dialect excel-nl`` writes ';' and decimal commas."""
    out = tmp_path / "out"
    command = ["reports", "fetch", "--api", api, "--sandbox", "2", "--out", str(out)]
    assert main([*command, "--summarize", "--csv-dialect", "excel-nl"]) == 0
    text = (out / "summary" / "totals.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].count(";") == len(TOTAL_COLUMNS) - 1
    totals = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert totals
    assert all(t["check"] == "ok" for t in totals)
    assert all("," in t["contribution"] and "." not in t["contribution"] for t in totals)
