"""The CLI's shared pieces: argument types, files of keys, and one provider-neutral fetch run."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from example_provider import LedgerBackend, LedgerServer, StatementRequest

from uitpas_async.cli.args import (
    positive_float,
    positive_int,
    positive_seconds,
    read_key_file,
    sandbox_count,
)
from uitpas_async.cli.batch import add_batch_arguments, fetch_batch
from uitpas_async.cli.output import result_record
from uitpas_async.engine.backend import JobRequest, StartedReport
from uitpas_async.engine.config import PollPolicy
from uitpas_async.engine.errors import ApiError, ConfigurationError
from uitpas_async.engine.orchestrator import ReportResult

MONTH = date(2026, 10, 1)
#: Statements are ready at once and polled almost at once: waiting is not the point here.
QUICK_POLL = PollPolicy(initial_delay=0.01, multiplier=1.0, max_interval=0.01, timeout=30.0)


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (positive_int, "3", 3),
        (positive_int, "0", "must be at least 1"),
        (positive_int, "abc", "not a whole number: 'abc'"),
        (positive_float, "0.5", 0.5),
        (positive_float, "0", "must be positive"),
        (positive_float, "nan", "must be positive"),
        (positive_float, "x", "not a number: 'x'"),
        (positive_seconds, "2", 2.0),
        (positive_seconds, "-1", "must be positive"),
        (positive_seconds, "soon", "not a number of seconds: 'soon'"),
        (sandbox_count, "1", 1),
        (sandbox_count, "0", "the sandbox needs at least one balie"),
        (sandbox_count, "many", "not a whole number: 'many'"),
    ],
)
def test_argument_types(parse: Any, text: str, expected: object) -> None:
    """Each argument type returns the value, or refuses with the message argparse prints."""
    if isinstance(expected, str):
        with pytest.raises(argparse.ArgumentTypeError, match=f"^{expected}$"):
            parse(text)
    else:
        assert parse(text) == expected


def test_read_key_file_skips_comments_blanks_and_a_first_header(tmp_path: Path) -> None:
    """Rows keep their cells; only a header before the first key is left out."""
    path = tmp_path / "keys.csv"
    path.write_text("\ufeff# comment\n\nKey , Name\n a , b \nkey\n,c\nd\n", encoding="utf-8")
    rows = read_key_file(path, kind="things", noun="thing keys", headers=("key",))
    assert rows == [["a", "b"], ["key"], ["d"]]


def test_read_key_file_names_the_kind_of_file(tmp_path: Path) -> None:
    """A missing or empty file is a ConfigurationError saying which kind of file."""
    with pytest.raises(ConfigurationError, match="cannot read things file"):
        read_key_file(tmp_path / "nope", kind="things", noun="thing keys", headers=())
    empty = tmp_path / "empty.txt"
    empty.write_text("# none\n")
    with pytest.raises(ConfigurationError, match="no thing keys in"):
        read_key_file(empty, kind="things", noun="thing keys", headers=())


class _QuickLedger(LedgerBackend):
    """The toy provider, polled quickly, refusing the statements of one account."""

    poll_policy = QUICK_POLL

    async def start_report(self, request: JobRequest) -> StartedReport:
        if isinstance(request, StatementRequest) and request.account == "closed":
            raise ApiError("ACCOUNT_CLOSED", "the account is closed", status=409)
        return await super().start_report(request)


def _record(result: ReportResult) -> dict[str, Any]:
    return {"account": result.request.account, **result_record(result)}


async def test_a_new_provider_fetch_command_is_a_few_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fetch_batch runs any backend's batch: progress, manifest by its record, summary, status."""
    backend = _QuickLedger(LedgerServer(time.monotonic, lambda account: 0.0))
    parser = argparse.ArgumentParser()
    add_batch_arguments(parser, out_dir=str(tmp_path / "out"), max_in_flight=2, rate_help="-")
    args = parser.parse_args([])

    @contextlib.asynccontextmanager
    async def connection() -> AsyncIterator[tuple[LedgerBackend, list[str]]]:
        yield backend, ["a", "closed", "b"]

    def requests(accounts: list[str]) -> list[StatementRequest]:
        return [StatementRequest(account, MONTH) for account in accounts]

    status = await fetch_batch(args, connection(), requests, record=_record)

    assert status == 1
    manifest = tmp_path / "out" / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [(line["account"], line["state"]) for line in lines] == [
        ("a", "done"),
        ("closed", "failed"),
        ("b", "done"),
    ]
    assert lines[1]["error_code"] == "ACCOUNT_CLOSED"
    assert (tmp_path / "out" / "journal.sqlite").is_file()
    out, err = capsys.readouterr()
    assert "done 2, failed 1, of 3 reports" in out
    assert "  failed closed: ACCOUNT_CLOSED: the account is closed" in out
    assert out.endswith(f"manifest: {manifest}\n")
    assert err.count("] done ") == 2
