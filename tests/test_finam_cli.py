"""``finam reports fetch``: arguments, the secret from the environment, a sandbox run."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest

from uitpas_async.cli.finam import add_commands, latest_period, read_accounts
from uitpas_async.errors import ConfigurationError, InvalidArgumentError


def _parser() -> argparse.ArgumentParser:
    """Build a parser the way ``uitpas_async.cli.main.build_parser`` wires ``add_commands``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url")
    common.add_argument("--sandbox", nargs="?", type=int, const=20, default=None)
    common.add_argument("-v", "--verbose", action="store_true")
    parser = argparse.ArgumentParser(prog="uitpas-async")
    commands = parser.add_subparsers(dest="command", required=True)
    add_commands(commands, common)
    return parser


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2024, 2, 15), (date(2023, 10, 1), date(2023, 12, 31))),
        (date(2024, 4, 1), (date(2024, 1, 1), date(2024, 3, 31))),
        (date(2024, 9, 30), (date(2024, 4, 1), date(2024, 6, 30))),
        (date(2024, 12, 31), (date(2024, 7, 1), date(2024, 9, 30))),
    ],
)
def test_latest_is_the_last_full_quarter(today: date, expected: tuple[date, date]) -> None:
    """``latest`` is the last full calendar quarter, which Finam's 92-day limit admits."""
    assert latest_period(today) == expected


def test_read_accounts(tmp_path: Path) -> None:
    """Accounts files: a header, comments and CSV columns are skipped."""
    path = tmp_path / "accounts.csv"
    path.write_text("account,name\n# comment\n123,main\n\n456\n")
    assert read_accounts(path) == ["123", "456"]
    path.write_text("# nothing\n")
    with pytest.raises(ConfigurationError):
        read_accounts(path)


async def test_missing_secret_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without FINAM_SECRET (and no --sandbox) the command stops with ConfigurationError."""
    monkeypatch.delenv("FINAM_SECRET", raising=False)
    args = _parser().parse_args(
        ["finam", "reports", "fetch", "--account", "1", "--out", str(tmp_path)]
    )
    with pytest.raises(ConfigurationError, match="FINAM_SECRET"):
        await args.handler(args)


async def test_range_over_92_days_is_refused(tmp_path: Path) -> None:
    """A period longer than Finam allows is an InvalidArgumentError (exit 2)."""
    args = _parser().parse_args(
        [
            "finam",
            "reports",
            "fetch",
            "--sandbox",
            "2",
            "--period",
            "2024-01-01..2024-06-30",
            "--out",
            str(tmp_path),
        ]
    )
    with pytest.raises(InvalidArgumentError):
        await args.handler(args)


async def test_fetch_against_the_sandbox(tmp_path: Path) -> None:
    """A sandbox run writes every report and a manifest line per account."""
    out = tmp_path / "out"
    args = _parser().parse_args(
        [
            "finam",
            "reports",
            "fetch",
            "--sandbox",
            "3",
            "--period",
            "2024-Q1",
            "--form",
            "short",
            "--out",
            str(out),
            "--rate",
            "1000",
        ]
    )
    # The sandbox's default generation time is a second; this test only checks the wiring.
    assert await args.handler(args) == 0
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert line["state"] == "done"
        assert line["form"] == "SHORT"
        assert line["content_type"] == "application/xml"
        assert (line["start"], line["end"]) == ("2024-01-01", "2024-03-31")
        assert Path(line["path"]).read_bytes().startswith(b"<?xml")
