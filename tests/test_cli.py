"""The uitpas-async command line, run in-process against its built-in sandbox."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from uitpas_async import InvalidArgumentError
from uitpas_async.cli import main, parse_period
from uitpas_async.cli.args import read_balies

MANIFEST_FIELDS = {
    "balie",
    "start",
    "end",
    "state",
    "report_id",
    "path",
    "sha256",
    "bytes",
    "error_code",
    "error_message",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latest", None),
        ("2024-Q1", (date(2024, 1, 1), date(2024, 3, 31))),
        ("2024q2", (date(2024, 4, 1), date(2024, 6, 30))),
        ("2023-Q4", (date(2023, 10, 1), date(2023, 12, 31))),
        ("2024-01-01..2024-03-31", (date(2024, 1, 1), date(2024, 3, 31))),
    ],
)
def test_period_forms(text: str, expected: tuple[date, date] | None) -> None:
    """The three period forms of --period parse to dates."""
    assert parse_period(text) == expected


@pytest.mark.parametrize(
    "text", ["2024-Q5", "2024-13", "2024-03-31..2024-01-01", "2024-02-30..2024-03-01", ""]
)
def test_bad_periods(text: str) -> None:
    """Unknown forms, impossible dates and reversed ranges are refused."""
    with pytest.raises(InvalidArgumentError):
        parse_period(text)


def test_balies_file_forms(tmp_path: Path) -> None:
    """A balies file may be plain keys or CSV key,name, with a header and comments."""
    plain = tmp_path / "plain.txt"
    plain.write_text("# our balies\nKEY-1\n\nKEY-2\n")
    assert read_balies(plain) == [("KEY-1", None), ("KEY-2", None)]
    named = tmp_path / "named.csv"
    named.write_text('key,name\nKEY-1,"CC De Werf, Aalst"\nKEY-2,\n')
    assert read_balies(named) == [("KEY-1", "CC De Werf, Aalst"), ("KEY-2", None)]


def test_missing_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without credentials a command says what to set, exits 2, and shows no traceback."""
    for name in ("UITPAS_CONSUMER_KEY", "UITPAS_CONSUMER_SECRET", "UITPAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UITPAS_TOKEN_SECRET", "x")
    assert main(["periods", "--balie", "K"]) == 2
    err = capsys.readouterr().err
    assert "UITPAS_CONSUMER_KEY" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_period_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --period exits 2 with a message naming the accepted forms."""
    arguments = ["reports", "fetch", "--sandbox", "2", "--period", "2024-Q9"]
    code = main([*arguments, "--out", str(tmp_path)])
    assert code == 2
    assert "2024-Q1" in capsys.readouterr().err


def test_reports_fetch_against_the_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The main job: every sandbox balie's latest report, a manifest line each, exit 0."""
    out = tmp_path / "reports"
    assert main(["reports", "fetch", "--sandbox", "6", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 6
    for line in lines:
        assert set(line) >= MANIFEST_FIELDS
        assert line["state"] == "done"
        path = Path(line["path"])
        assert path.is_file()
        assert path.parent == out / line["balie"]
        assert path.stat().st_size == line["bytes"]
    captured = capsys.readouterr()
    assert "done 6, failed 0" in captured.out
    # Without a terminal, progress is plain lines, one per finished report.
    assert captured.err.count("[") >= 6


def test_reports_fetch_exit_1_when_some_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown balie fails alone with its code; the exit status says some failed."""
    out = tmp_path / "reports"
    arguments = ["reports", "fetch", "--sandbox", "2", "--balie", "NOT-A-BALIE"]
    code = main([*arguments, "--period", "2024-Q1", "--out", str(out)])
    assert code == 1
    [line] = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert line["state"] == "failed"
    assert line["error_code"] == "UNKNOWN_BALIE_CONSUMERKEY"
    assert "NOT-A-BALIE" in capsys.readouterr().out


def test_single_report_periods_and_price(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one-balie commands work against the sandbox with no configuration."""
    assert main(["report", "--sandbox", "--period", "2024-Q1", "--out", str(tmp_path)]) == 0
    assert ".zip" in capsys.readouterr().out
    assert main(["periods", "--sandbox"]) == 0
    assert "T00:00:00" in capsys.readouterr().out
    assert main(["price", "0934000185108", "--sandbox", "--date-of-birth", "2010-01-01"]) == 0
    assert "price:" in capsys.readouterr().out
