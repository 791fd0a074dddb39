"""Report downloads against a real local HTTP server: stored whole, checked, or not at all."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import stat
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from uitpas_async import (
    ConnectionLostError,
    Credentials,
    DownloadError,
    Limits,
    ReportNotReadyError,
    ReportTooLargeError,
    RetryPolicy,
    UitpasClient,
    UnknownReportError,
)
from uitpas_async.engine.storage import TEMPORARY_PREFIX

ZIP_TYPE = "application/x-zip-compressed"
DOWNLOAD_ROUTE = "/uitid/rest/uitpas/report/financialoverview/organiser/{report_id}/download"
REAL_NAME = "financialOverview_CC De Werf _20151007_1404.zip"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_zip(size: int = 150_000) -> bytes:
    """Return a valid zip of a few members, large enough to arrive in several chunks."""
    noise = random.Random(size).randbytes(size)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Lokale overheid Aalst_20151007_1404.xls", noise)
        archive.writestr("Lokale overheid Tienen_20151007_1404.xls", b"INRICHTER;OVERHEID\n" * 50)
    return buffer.getvalue()


def corrupt_zip() -> bytes:
    """Return a zip whose single stored member fails its CRC check."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("report.xls", b"A" * 4096)
    return buffer.getvalue().replace(b"A" * 64, b"B" * 64, 1)


def disposition(filename: str) -> dict[str, str]:
    """Return the real server's unquoted Content-Disposition header."""
    return {"Content-Disposition": f"attachment; filename={filename}"}


def serve(body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> Handler:
    """Return a handler that answers with a fixed body and headers (Content-Length set)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        """Answer with the fixed body."""
        return web.Response(
            body=body, status=status, headers={"Content-Type": ZIP_TYPE, **(headers or {})}
        )

    return handler


def serve_chunked(body: bytes, headers: dict[str, str] | None = None) -> Handler:
    """Return a handler that streams a body without declaring its length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        """Stream the body in chunks."""
        response = web.StreamResponse(headers={"Content-Type": ZIP_TYPE, **(headers or {})})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 32 * 1024):
            await response.write(body[start : start + 32 * 1024])
        await response.write_eof()
        return response

    return handler


class ReportServer:
    """A local UiTPAS download endpoint whose answer is set per report id."""

    def __init__(self) -> None:
        #: The handler answering each report id.
        self.handlers: dict[str, Handler] = {}
        #: Requests received per report id.
        self.hits: Counter[str] = Counter()
        #: The prefix clients use, set once the server listens.
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer a download with the handler set for its report id."""
        report_id = request.match_info["report_id"]
        self.hits[report_id] += 1
        assert request.headers["Authorization"].startswith("OAuth ")
        return await self.handlers[report_id](request)


@pytest.fixture
async def server() -> AsyncIterator[ReportServer]:
    """Run a real HTTP server on 127.0.0.1 for the download endpoint."""
    reports = ReportServer()
    app = web.Application()
    app.router.add_get(DOWNLOAD_ROUTE, reports.handle)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    reports.base_url = str(test_server.make_url("/uitid/rest"))
    try:
        yield reports
    finally:
        await test_server.close()


def make_client(
    base_url: str, credentials: Credentials, sleep: Any, *, limits: Limits | None = None
) -> UitpasClient:
    """Return a client on a local prefix that never really sleeps."""
    return UitpasClient(base_url, credentials, sleep=sleep, limits=limits or Limits())


async def download(
    base_url: str,
    credentials: Credentials,
    sleep: Any,
    report_id: str,
    dest_dir: Path,
    *,
    limits: Limits | None = None,
) -> Any:
    """Download one report with a fresh client."""
    async with make_client(base_url, credentials, sleep, limits=limits) as client:
        return await client.download_financial_report(report_id, dest_dir, balie_consumer_key="B1")


def names_in(directory: Path) -> list[str]:
    """Return the names in a directory (none if it does not exist)."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def partials_in(directory: Path) -> list[Path]:
    """Return the temporary partial downloads left in a directory."""
    return list(directory.glob(f"{TEMPORARY_PREFIX}*"))


# -- success --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected_name"),
    [
        (disposition(REAL_NAME), REAL_NAME),
        ({"Content-Disposition": 'attachment; filename="Q1 \\"final\\".zip"'}, "Q1 _final_.zip"),
        (
            {
                "Content-Disposition": 'attachment; filename="fallback.zip"; '
                "filename*=UTF-8''Rapport%20%C3%A9t%C3%A9.zip"
            },
            "Rapport été.zip",
        ),
        ({}, "financialOverview_report-19.zip"),
        ({"Content-Disposition": "attachment"}, "financialOverview_report-19.zip"),
    ],
    ids=["unquoted-with-spaces", "quoted-escaped", "rfc6266-star", "missing", "no-filename"],
)
@pytest.mark.parametrize("handler", [serve, serve_chunked], ids=["content-length", "chunked"])
async def test_download_stores_the_report(
    server: ReportServer,
    credentials: Credentials,
    fake_sleep: Any,
    tmp_path: Path,
    headers: dict[str, str],
    expected_name: str,
    handler: Callable[[bytes, dict[str, str]], Handler],
) -> None:
    """The zip is stored whole under its server-given name, owner-only, with its digest."""
    body = make_zip()
    server.handlers["19"] = handler(body, headers)
    dest = tmp_path / "new" / "reports"
    report = await download(server.base_url, credentials, fake_sleep, "19", dest)
    assert report.report_id == "19"
    assert report.filename == expected_name
    assert report.path == dest / expected_name
    assert report.path.read_bytes() == body
    assert report.size == len(body)
    assert report.sha256 == hashlib.sha256(body).hexdigest()
    assert report.content_type == ZIP_TYPE
    assert stat.S_IMODE(report.path.stat().st_mode) == 0o600
    assert names_in(dest) == [expected_name]
    assert server.hits["19"] == 1


async def test_download_of_the_real_report(
    server: ReportServer,
    credentials: Credentials,
    fake_sleep: Any,
    tmp_path: Path,
    fixture_file: Callable[[str], Path],
) -> None:
    """The real report, served with the real unquoted header, is stored under its real name."""
    body = fixture_file("real-financial-report.zip").read_bytes()
    server.handlers["19"] = serve(body, disposition(REAL_NAME))
    report = await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    assert report.path == tmp_path / REAL_NAME
    assert report.path.read_bytes() == body
    assert report.sha256 == hashlib.sha256(body).hexdigest()
    with zipfile.ZipFile(report.path) as archive:
        assert len(archive.namelist()) == 5
        assert all(name.endswith(".xls") for name in archive.namelist())


@pytest.mark.parametrize(
    "hostile",
    ["../../evil.zip", "..\\..\\evil.zip", "/tmp/evil.zip", "subdir/../../evil.zip"],
    ids=["posix-parent", "windows-parent", "absolute", "mixed"],
)
async def test_hostile_filename_stays_inside_dest_dir(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path, hostile: str
) -> None:
    """A filename with path parts is reduced to its last part inside dest_dir."""
    server.handlers["19"] = serve(make_zip(1000), disposition(hostile))
    dest = tmp_path / "a" / "b"
    report = await download(server.base_url, credentials, fake_sleep, "19", dest)
    assert report.path.parent == dest
    assert report.path.resolve().parent == dest.resolve()
    assert report.filename == "evil.zip"
    assert not (tmp_path / "evil.zip").exists()
    assert not (tmp_path / "a" / "evil.zip").exists()


async def test_same_filename_for_two_reports_keeps_both(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path
) -> None:
    """A second report with the same proposed name gets a distinct name; the first is kept."""
    first_body, second_body = make_zip(2000), make_zip(3000)
    server.handlers["19"] = serve(first_body, disposition(REAL_NAME))
    server.handlers["20"] = serve(second_body, disposition(REAL_NAME))
    first = await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    second = await download(server.base_url, credentials, fake_sleep, "20", tmp_path)
    assert first.path != second.path
    assert first.path.read_bytes() == first_body
    assert second.path.read_bytes() == second_body
    assert second.filename.endswith(".zip")
    assert "20" in second.filename
    assert len(names_in(tmp_path)) == 2


# -- failures leave nothing behind -----------------------------------------------------------


async def test_html_page_labelled_as_zip_is_refused(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path
) -> None:
    """A 200 HTML page served as a zip raises DownloadError and leaves no file."""
    page = b"<!DOCTYPE html><html><body>Even geduld...</body></html>"
    server.handlers["19"] = serve(page, disposition("report.zip"))
    with pytest.raises(DownloadError, match="zip"):
        await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    assert names_in(tmp_path) == []
    assert server.hits["19"] == 1


async def test_zip_with_a_corrupt_member_is_refused(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path
) -> None:
    """A zip whose member fails its CRC raises DownloadError and leaves no file."""
    server.handlers["19"] = serve(corrupt_zip(), disposition("report.zip"))
    with pytest.raises(DownloadError):
        await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    assert names_in(tmp_path) == []


async def test_xml_success_instead_of_a_zip_is_refused(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path
) -> None:
    """An ACTION_SUCCEEDED XML answer where a zip was expected raises DownloadError."""
    xml = b"<response><code>ACTION_SUCCEEDED</code><message>ok</message></response>"
    server.handlers["19"] = serve(xml, {"Content-Type": "application/xml"})
    with pytest.raises(DownloadError, match="XML"):
        await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    assert names_in(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "error_class"),
    [("INVALID_REPORT_STATUS", ReportNotReadyError), ("UNKNOWN_REPORT_ID", UnknownReportError)],
)
async def test_api_error_instead_of_a_zip(
    server: ReportServer,
    credentials: Credentials,
    fake_sleep: Any,
    tmp_path: Path,
    code: str,
    error_class: type[Exception],
) -> None:
    """A 400 XML error raises its ApiError (not ready, unknown) without retrying or writing."""
    xml = f"<response><code>{code}</code><message>Nog niet klaar</message></response>"
    server.handlers["19"] = serve(xml.encode(), {"Content-Type": "application/xml"}, status=400)
    with pytest.raises(error_class):
        await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    assert names_in(tmp_path) == []
    assert server.hits["19"] == 1


@pytest.mark.parametrize("handler", [serve, serve_chunked], ids=["declared", "streamed"])
async def test_report_over_the_size_cap_is_refused(
    server: ReportServer,
    credentials: Credentials,
    fake_sleep: Any,
    tmp_path: Path,
    handler: Callable[[bytes, dict[str, str]], Handler],
) -> None:
    """A report past Limits.max_download_bytes raises ReportTooLargeError and leaves no file."""
    server.handlers["19"] = handler(make_zip(), disposition("big.zip"))
    limits = Limits(max_download_bytes=50_000)
    with pytest.raises(ReportTooLargeError):
        await download(server.base_url, credentials, fake_sleep, "19", tmp_path, limits=limits)
    assert names_in(tmp_path) == []
    assert server.hits["19"] == 1


@pytest.fixture
async def truncating_server() -> AsyncIterator[tuple[str, list[int]]]:
    """Run a raw server that declares a longer body than it sends, then hangs up."""
    body = make_zip()
    connections: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send the head and half the body, then close the connection."""
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {ZIP_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Content-Disposition: attachment; filename=cut.zip\r\n"
            "\r\n"
        )
        writer.write(head.encode() + body[: len(body) // 2])
        await writer.drain()
        writer.close()

    raw_server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = raw_server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/uitid/rest", connections
    finally:
        raw_server.close()
        await raw_server.wait_closed()


async def test_truncated_download_leaves_no_file(
    truncating_server: tuple[str, list[int]],
    credentials: Credentials,
    fake_sleep: Any,
    tmp_path: Path,
) -> None:
    """A body cut short of its Content-Length raises a typed error and leaves no file."""
    base_url, connections = truncating_server
    with pytest.raises((ConnectionLostError, DownloadError)):
        await download(base_url, credentials, fake_sleep, "19", tmp_path)
    assert names_in(tmp_path) == []
    # A lost connection is transient, so every attempt was made, each cleaned up.
    assert len(connections) == RetryPolicy().attempts


async def test_failed_download_keeps_an_earlier_report(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path
) -> None:
    """A failed download under an existing name never touches the file already there."""
    body = make_zip(1000)
    server.handlers["19"] = serve(body, disposition(REAL_NAME))
    server.handlers["20"] = serve(b"not a zip", disposition(REAL_NAME))
    await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    with pytest.raises(DownloadError):
        await download(server.base_url, credentials, fake_sleep, "20", tmp_path)
    assert names_in(tmp_path) == [REAL_NAME]
    assert (tmp_path / REAL_NAME).read_bytes() == body


async def test_no_temporary_files_survive(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path
) -> None:
    """After a success and a failure, no partial download is left in the directory."""
    server.handlers["19"] = serve(make_zip(1000), disposition("ok.zip"))
    server.handlers["20"] = serve(b"garbage", disposition("bad.zip"))
    await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    with pytest.raises(DownloadError):
        await download(server.base_url, credentials, fake_sleep, "20", tmp_path)
    assert partials_in(tmp_path) == []
    assert names_in(tmp_path) == ["ok.zip"]


async def test_gzip_encoded_download_is_stored(
    server: ReportServer, credentials: Credentials, fake_sleep: Any, tmp_path: Path
) -> None:
    """A report sent with Content-Encoding: gzip is stored decoded and whole."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("report.xls", b"INRICHTER;OVERHEID\n" * 2000)  # compresses well
    body = buffer.getvalue()

    async def gzipped(request: web.Request) -> web.StreamResponse:
        """Answer with the zip, gzip-encoded."""
        response = web.Response(body=body, headers={"Content-Type": ZIP_TYPE})
        response.headers.update(disposition("gz.zip"))
        response.enable_compression(web.ContentCoding.gzip)
        return response

    server.handlers["19"] = gzipped
    report = await download(server.base_url, credentials, fake_sleep, "19", tmp_path)
    assert report.path.read_bytes() == body
