"""Hostile servers and files, damaged state on disk: each ends typed, bounded, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import sqlite3
import stat
import threading
import tracemalloc
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import aiohttp
import attrs
import pytest
from aiohttp import web
from hostile_files import EMPTY_REPORT_ROWS, xls_bytes, xlsx_with_sheet_xml

from uitpas_async import (
    Credentials,
    PollPolicy,
    ReportOrchestrator,
    ReportRequest,
    RetryPolicy,
    Timeouts,
    UitpasClient,
    UitpasError,
)
from uitpas_async.cli.output import result_record, write_manifest
from uitpas_async.engine.backend import JobRequest, StartedReport
from uitpas_async.engine.errors import (
    JournalError,
    JournalMismatchError,
    MalformedResponseError,
    ServerError,
    UnexpectedError,
)
from uitpas_async.engine.filenames import escape_for_terminal
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.journal import Journal
from uitpas_async.engine.manifest import MANIFEST_NAME
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.orchestrator import ReportResult
from uitpas_async.reports import (
    ArchiveLimits,
    ArchiveTooLargeError,
    ReportFileError,
    SheetTooLargeError,
    parse_financial_report,
)
from uitpas_async.xml_api.sandbox import FaultRule, Sandbox, SandboxConfig

START, END = date(2024, 1, 1), date(2024, 3, 31)
FAST_RETRY = RetryPolicy(attempts=5, initial_backoff=0.01, max_backoff=0.05, max_retry_after=0.05)
FAST_POLL = PollPolicy(initial_delay=0.02, multiplier=1.5, max_interval=0.2, timeout=60.0)
#: Bytes an answer may take in memory while being refused, far below what the bombs expand to.
MEMORY_CEILING = 48 * 1024 * 1024
#: A liveness guard, not a timing: a hostile file must not hang its reader.
GUARD_SECONDS = 120


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _peak_bytes(work: Callable[[], object]) -> tuple[int, object]:
    """Run ``work`` and return the peak Python memory it allocated, and what it returned."""
    tracemalloc.start()
    try:
        try:
            outcome: object = work()
        except Exception as exc:  # the outcome is checked by the caller
            outcome = exc
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def _in_thread(work: Callable[[], object]) -> object:
    """Run ``work`` in a thread, failing the test if it is still running after the guard."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GUARD_SECONDS)
    assert not thread.is_alive(), "the reader hung on a hostile file"
    return outcome[0]


# -- hostile servers ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def raw_server(answer: bytes) -> AsyncIterator[str]:
    """Serve ``answer`` verbatim to every request (after reading its head); yield the base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/uitid/rest"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def web_server(handler: Callable[[web.Request], object]) -> AsyncIterator[str]:
    """Serve one aiohttp handler on every path; yield the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/uitid/rest"
    finally:
        await runner.cleanup()


def _client(base_url: str, credentials: Credentials, **options: object) -> UitpasClient:
    return UitpasClient(base_url, credentials, retry=RetryPolicy.none(), **options)  # type: ignore[arg-type]


async def test_latin1_content_disposition_is_decoded(
    tmp_path: Path, credentials: Credentials
) -> None:
    """A filename of raw ISO-8859-1 bytes is stored as the Latin-1 name it meant."""
    report = _zip({"a.txt": b"x"})
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n"
        b"Content-Disposition: attachment; filename=Caf\xe9 Z\xfcrich.zip\r\n"
        b"Content-Length: " + str(len(report)).encode() + b"\r\nConnection: close\r\n\r\n" + report
    )
    async with raw_server(answer) as base_url, _client(base_url, credentials) as client:
        stored = await client.download_financial_report("7", tmp_path, balie_consumer_key="B1")
    assert stored.filename == "Café Zürich.zip"
    assert stored.path.read_bytes() == report


async def test_gzip_bomb_on_an_xml_answer_is_refused_within_the_cap(
    credentials: Credentials,
) -> None:
    """A 64 MiB gzip bomb behind a small Content-Length is refused without expanding it."""
    bomb = gzip.compress(b"<a>" + b" " * (64 * 1024 * 1024) + b"</a>", compresslevel=9)

    async def handler(request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/xml"}
        return web.Response(body=bomb, headers=headers)

    async with web_server(handler) as base_url, _client(base_url, credentials) as client:
        tracemalloc.start()
        try:
            with pytest.raises(MalformedResponseError):
                await client.get_financial_report_periods(balie_consumer_key="B1")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(bomb) < 1024 * 1024
    assert peak < MEMORY_CEILING


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is known for known in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


async def test_malformed_answer_chains_no_signed_header(credentials: Credentials) -> None:
    """The aiohttp error behind a MalformedResponseError holds no Authorization header."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n<response/>"
    async with raw_server(answer) as base_url, _client(base_url, credentials) as client:
        with pytest.raises(MalformedResponseError) as caught:
            await client.get_financial_report_periods(balie_consumer_key="B1")
    chain = _chain(caught.value)
    assert any(isinstance(item, aiohttp.ClientResponseError) for item in chain)
    text = " ".join(repr(item) + repr(item.args) for item in chain)
    for secret in ("oauth_signature", "Authorization", credentials.token, "OAuth "):
        assert secret not in text
    assert "ClientResponseError" in caught.value.message


# -- hostile workbooks -------------------------------------------------------------


def test_xls_padded_to_its_declared_corner_stays_small() -> None:
    """Three .xls sheets with a cell at row 65536, column 256 are read without padding."""
    corner = [(0, 0, 1.0), (65535, 255, 2.0)]
    book = xls_bytes([(f"Sheet{i}", corner) for i in range(3)])
    data = _zip({"Lokale overheid Gent.xls": book})
    assert len(data) < 8 * 1024
    peak, outcome = _peak_bytes(lambda: parse_financial_report(data))
    assert isinstance(outcome, ReportFileError)
    assert peak < 2 * MEMORY_CEILING


def test_xlsx_declared_dimension_is_not_walked() -> None:
    """An .xlsx declaring A1:XFD1048576 is read as the one row it holds."""
    book = xlsx_with_sheet_xml('<dimension ref="A1:XFD1048576"/>')
    outcome = _in_thread(lambda: parse_financial_report(_zip({"g.xlsx": book})))
    assert isinstance(outcome, ReportFileError)
    assert not isinstance(outcome, SheetTooLargeError)
    assert "no header row" in outcome.message


def test_xlsx_far_row_stops_at_the_row_cap() -> None:
    """A row numbered 1048576 makes a million blank rows: the report stops at its row cap."""
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    book = xlsx_with_sheet_xml(far, at="</sheetData>")
    outcome = _in_thread(lambda: parse_financial_report(_zip({"g.xlsx": book})))
    assert isinstance(outcome, SheetTooLargeError)


def test_xlsx_members_share_one_budget() -> None:
    """Two .xlsx whose parts each fit the budget but not together are refused."""
    padding = " " * 600_000
    book = xlsx_with_sheet_xml(f"<!--{padding}-->", rows=EMPTY_REPORT_ROWS)
    limits = ArchiveLimits(max_total_bytes=1_000_000)
    outcome = _in_thread(
        lambda: parse_financial_report(_zip({"a.xlsx": book, "b.xlsx": book}), limits=limits)
    )
    assert isinstance(outcome, ArchiveTooLargeError)
    one = _in_thread(lambda: parse_financial_report(_zip({"a.xlsx": book}), limits=limits))
    assert not isinstance(one, Exception)


def test_summarize_turns_a_hostile_report_into_a_problem_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """reports summarize on a far-row .xlsx ends with an escaped problem line, exit 1, 0700."""
    from uitpas_async.cli.main import main

    report = tmp_path / "B1" / "r.zip"
    report.parent.mkdir()
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    report.write_bytes(_zip({"\x1b]0;pwned\x07.xlsx": xlsx_with_sheet_xml(far, at="</sheetData>")}))
    record = {
        "balie": "B1",
        "name": None,
        "start": "2024-01-01",
        "end": "2024-03-31",
        "state": "done",
        "report_id": "1",
        "path": str(report),
        "sha256": hashlib.sha256(report.read_bytes()).hexdigest(),
        "bytes": report.stat().st_size,
    }
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(record) + "\n")
    status = _in_thread(lambda: main(["reports", "summarize", str(tmp_path)]))
    assert status == 1
    out = capfd.readouterr().out
    assert "SHEET_TOO_LARGE" in out or "rows in the report" in out
    assert "\x1b" not in out
    assert "\\x1b]0;pwned\\x07" in out
    assert stat.S_IMODE((tmp_path / "summary").stat().st_mode) == 0o700


def test_escape_for_terminal_neutralises_control_sequences() -> None:
    """OSC, CSI, bidi overrides and C1 controls are printed as escapes, text kept."""
    hostile = "Caf\u00e9 \x1b]0;owned\x07 \x9b31m \u202etxt.exe"
    shown = escape_for_terminal(hostile)
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\x9b" not in shown
    assert "\u202e" not in shown
    assert shown.startswith("Café \\x1b]0;owned\\x07")


# -- the orchestrator against faults and damaged state ------------------------------


@attrs.define
class DiskBackend:
    """Reports that are ready at once and downloaded as small real files."""

    provider: str = "fake"
    created: list[str] = attrs.Factory(list)
    explode_on: set[str] = attrs.Factory(set)
    fail_after_create: bool = False

    async def resolve_request(self, request: JobRequest) -> JobRequest:
        return request

    async def start_report(self, request: JobRequest) -> StartedReport:
        self.created.append(request.job_key)
        if self.fail_after_create:
            raise ServerError("report.create: HTTP 503", status=503)
        return StartedReport(str(len(self.created)), START, END)

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        return True

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        if request.label in self.explode_on:
            "Café".encode("ascii")  # a bug of the kind a hostile name once caused
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / f"{report_id}.zip"
        data = f"report {report_id}".encode()
        path.write_bytes(data)
        return DownloadedReport(
            report_id,
            path,
            path.name,
            "application/zip",
            len(data),
            hashlib.sha256(data).hexdigest(),
        )

    def is_report_gone(self, error: UitpasError) -> bool:
        return False


def _requests(count: int) -> list[ReportRequest]:
    return [ReportRequest(f"B{i:02d}", START, END) for i in range(count)]


def _orchestrator(backend: DiskBackend, out: Path, **options: object) -> ReportOrchestrator:
    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    options.setdefault("poll", PollPolicy(initial_delay=0.01))
    return ReportOrchestrator(
        backend,
        out,
        sleep=no_sleep,
        rng=random.Random(1),
        **options,  # type: ignore[arg-type]
    )


async def test_a_non_package_exception_fails_one_job_not_the_batch(tmp_path: Path) -> None:
    """A UnicodeEncodeError in one download fails that job as UNEXPECTED; nine are done."""
    backend = DiskBackend(explode_on={"B03"})
    results = await _orchestrator(backend, tmp_path / "out").run(_requests(10))
    assert sum(result.ok for result in results) == 9
    [failed] = [result for result in results if not result.ok]
    assert isinstance(failed.error, UnexpectedError)
    assert failed.error.kind == "UnicodeEncodeError"


def _write_manifest(results: list[ReportResult], out: Path, *, job_keys: bool = True) -> None:
    """Write the manifest as the CLI does; without job keys as an older version did."""

    def record(result: ReportResult) -> dict[str, object]:
        line = result_record(result)
        if not job_keys:
            del line["job_key"]
        return line

    write_manifest(results, out / MANIFEST_NAME, record, provider="uitpas")


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
async def test_new_journal_reconciles_with_the_manifest(tmp_path: Path, damage: str) -> None:
    """An emptied or deleted journal beside a manifest (with or without job keys) redoes nothing."""
    out = tmp_path / "out"
    backend = DiskBackend()
    first = await _orchestrator(backend, out).run(_requests(5))
    _write_manifest(first, out, job_keys=damage == "emptied")
    journal = out / "journal.sqlite"
    for side in (journal, out / "journal.sqlite-wal", out / "journal.sqlite-shm"):
        with contextlib.suppress(FileNotFoundError):
            side.unlink()
    if damage == "emptied":
        journal.write_bytes(b"")
    again = DiskBackend()
    results = await _orchestrator(again, out).run(_requests(5))
    assert all(result.ok for result in results)
    assert again.created == []
    assert [r.report.path for r in results if r.report] == [
        r.report.path for r in first if r.report
    ]


async def test_new_journal_beside_unknown_reports_refuses(tmp_path: Path) -> None:
    """Reports on disk that no manifest line vouches for stop the run, saying what to do."""
    out = tmp_path / "out"
    first = await _orchestrator(DiskBackend(), out).run(_requests(3))
    _write_manifest(first, out)
    tampered = first[1].report
    assert tampered is not None
    tampered.path.write_bytes(b"changed")
    (out / "journal.sqlite").unlink()
    again = DiskBackend()
    with pytest.raises(JournalMismatchError) as caught:
        await _orchestrator(again, out).run(_requests(3))
    assert again.created == []
    assert "B01" in caught.value.message
    assert "move them out" in caught.value.message


async def test_impossible_journal_row_is_one_journal_error(tmp_path: Path) -> None:
    """A row with an impossible state raises JournalError, and the journal is left as it was."""
    out = tmp_path / "out"
    await _orchestrator(DiskBackend(), out).run(_requests(2))
    db = sqlite3.connect(out / "journal.sqlite")
    db.execute("UPDATE jobs SET state = 'exploded' WHERE job_key LIKE 'B01|%'")
    db.commit()
    db.close()
    with pytest.raises(JournalError) as caught:
        await _orchestrator(DiskBackend(), out).run(_requests(2))
    assert "exploded" in caught.value.message
    with Journal(out / "journal.sqlite") as journal:
        entry = journal.get("fake", "B00|2024-01-01|2024-03-31")
        assert entry is not None
        assert entry.state is JobState.DONE


async def test_corrupt_journal_is_one_journal_error(tmp_path: Path) -> None:
    """A journal file of garbage raises JournalError, a ConfigurationError."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "journal.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError):
        await _orchestrator(DiskBackend(), out).run(_requests(1))


async def test_creates_that_fail_after_making_reports_are_not_resent(tmp_path: Path) -> None:
    """5 creates that answer 503 after making the report: 5 creates, 5 possible duplicates."""
    config = SandboxConfig(
        balies=5,
        generation_median=0.05,
        faults=[FaultRule("server_error", endpoint="create", after_effect=True)],
    )
    async with Sandbox(config) as sandbox:
        requests = [ReportRequest(balie.key, START, END) for balie in sandbox.balies]
        async with UitpasClient(
            sandbox.base_url, sandbox.credentials, retry=FAST_RETRY, poll=FAST_POLL
        ) as client:
            orchestrator = ReportOrchestrator(client, tmp_path / "out")
            results = await orchestrator.run(requests)
            created = sandbox.stats.reports_created
    assert created == 5
    assert not any(result.ok for result in results)
    assert orchestrator.possible_duplicate_creates == 5
    assert len(orchestrator.journal_possible_duplicates) == 5
    # A later run of the same journal makes none, and still shows the five.
    later = _orchestrator(DiskBackend(), tmp_path / "out")
    assert all(result.ok for result in await later.run(_requests(2)))
    assert later.possible_duplicate_creates == 0
    assert len(later.journal_possible_duplicates) == 5


async def test_client_resends_are_counted_as_possible_duplicates(tmp_path: Path) -> None:
    """With retry_unsafe_creates on the client, each resend after a 5xx is a possible duplicate."""
    config = SandboxConfig(
        balies=2,
        generation_median=0.05,
        faults=[FaultRule("bad_gateway", endpoint="create", count=2, after_effect=True)],
    )
    unsafe = attrs.evolve(FAST_RETRY, retry_unsafe_creates=True)
    async with Sandbox(config) as sandbox:
        requests = [ReportRequest(balie.key, START, END) for balie in sandbox.balies]
        async with UitpasClient(
            sandbox.base_url, sandbox.credentials, retry=unsafe, poll=FAST_POLL
        ) as client:
            orchestrator = ReportOrchestrator(client, tmp_path / "out")
            results = await orchestrator.run(requests)
        duplicates = sandbox.stats.duplicate_creates
    assert all(result.ok for result in results)
    assert orchestrator.possible_duplicate_creates == 2
    assert duplicates <= 2


@contextlib.asynccontextmanager
async def trickling_server() -> AsyncIterator[str]:
    """Answer a download with a big Content-Length, then a few bytes now and then."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n"
                b"Content-Length: 100000000\r\n\r\n"
            )
            for _ in range(100_000):
                writer.write(b"PK" * 8)
                await writer.drain()
                await asyncio.sleep(0.02)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/uitid/rest"
    finally:
        server.close()


@attrs.define
class TricklingBackend(DiskBackend):
    """Creates and polls in memory; downloads for real, from a server that trickles."""

    client: UitpasClient | None = None

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        assert self.client is not None
        return await self.client.download_financial_report(
            report_id, dest_dir, balie_consumer_key=request.label
        )


async def test_a_trickling_download_meets_the_job_deadline(
    tmp_path: Path, credentials: Credentials
) -> None:
    """A download that would take hours fails DOWNLOAD_TIMEOUT at the job's deadline."""
    async with (
        trickling_server() as base_url,
        UitpasClient(
            base_url, credentials, retry=FAST_RETRY, timeouts=Timeouts(download=250.0)
        ) as client,
    ):
        backend = TricklingBackend(client=client)
        orchestrator = _orchestrator(
            backend, tmp_path / "out", poll=PollPolicy(initial_delay=0.01, download_timeout=0.5)
        )
        [result] = await orchestrator.run(_requests(1))
    assert result.state is JobState.FAILED
    assert result.error is not None
    assert result.error.code == "DOWNLOAD_TIMEOUT"
    assert not list((tmp_path / "out").glob("*/.uitpas-partial-*"))


async def test_lock_file_is_owner_only(tmp_path: Path) -> None:
    """The journal's lock file is 0600 while a run holds it, like the journal, and goes after."""
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        await _orchestrator(DiskBackend(), out).run(_requests(1))
        with Journal(out / "journal.sqlite"):
            lock_mode = stat.S_IMODE((out / "journal.sqlite.lock").stat().st_mode)
    finally:
        os.umask(old)
    assert lock_mode == 0o600
    assert stat.S_IMODE((out / "journal.sqlite").stat().st_mode) == 0o600
    assert not (out / "journal.sqlite.lock").exists()


# -- the command line ----------------------------------------------------------------


def test_cli_fetch_after_the_journal_is_emptied_keeps_the_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal truncated to 0 bytes: the rerun trusts the manifest, downloads nothing twice."""
    from uitpas_async.cli.main import main

    out = tmp_path / "out"
    assert main(["reports", "fetch", "--sandbox", "3", "--out", str(out)]) == 0
    (out / "journal.sqlite").write_bytes(b"")
    for side in ("journal.sqlite-wal", "journal.sqlite-shm"):
        with contextlib.suppress(FileNotFoundError):
            (out / side).unlink()
    capsys.readouterr()
    assert main(["reports", "fetch", "--sandbox", "3", "--out", str(out)]) == 0
    assert "done 3, failed 0" in capsys.readouterr().out
    folders = [folder for folder in out.iterdir() if folder.is_dir()]
    assert len(folders) == 3
    assert all(len(list(folder.iterdir())) == 1 for folder in folders)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """Return what the CLI wrote to stderr, checked to be one line (sandbox notes aside)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith("sandbox:")]) == 1
    return err


def test_cli_refuses_unknown_reports_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reports without manifest or journal: exit 2, one line saying how to go on."""
    from uitpas_async.cli.main import main

    out = tmp_path / "out"
    (out / "KEY").mkdir(parents=True)
    (out / "KEY" / "report.zip").write_bytes(b"PK")
    assert main(["reports", "fetch", "--sandbox", "2", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "move them out" in err


def test_cli_corrupt_journal_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal of garbage: exit 2 and one line, not a sqlite3 traceback."""
    from uitpas_async.cli.main import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "journal.sqlite").write_bytes(b"garbage!" * 512)
    assert main(["reports", "fetch", "--sandbox", "2", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "journal" in err


def test_cli_prints_server_names_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A balie key carrying an OSC sequence is echoed in failures escaped, never raw."""
    from uitpas_async.cli.main import main

    hostile = "\x1b]0;owned\x07KEY"
    arguments = ["reports", "fetch", "--sandbox", "1", "--balie", hostile, "--period", "2024-Q1"]
    assert main([*arguments, "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "\x07" not in captured.out + captured.err
