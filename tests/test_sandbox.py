"""The sandbox imitates the UiTPAS XML API faithfully, over real HTTP, signed with oauthlib."""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import re
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlencode

import aiohttp
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client
from yarl import URL

from uitpas_async.sandboxkit.ratelimit import TokenBucket, format_retry_after
from uitpas_async.sandboxkit.report_content import COLUMNS, generate_sheets
from uitpas_async.sandboxkit.spreadsheet import EXCEL_EPOCH
from uitpas_async.xml_api.models import Credentials
from uitpas_async.xml_api.sandbox import (
    FAULT_KINDS,
    SANDBOX_CREDENTIALS,
    FaultRule,
    Sandbox,
    SandboxBalie,
    SandboxConfig,
    serve,
)
from uitpas_async.xml_api.sandbox.balies import default_balies
from uitpas_async.xml_api.sandbox.oauth import NonceMemory
from uitpas_async.xml_api.sandbox.periods import eu_offset, past_quarters
from uitpas_async.xml_api.sandbox.state import content_disposition

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
REPORT = "/uitpas/report/financialoverview/organiser"
FORM = "application/x-www-form-urlencoded"
#: Fast enough that a polled report completes within a few polls.
FAST = 0.02
#: 2020-07-15 12:00 UTC: the seed's periods example was made in that quarter.
JULY_2020 = datetime(2020, 7, 15, 12, tzinfo=timezone.utc).timestamp()


def parse_xml(data: bytes) -> ET.Element:
    """Parse XML from the sandbox or the fixtures (trusted: our own server and files)."""
    return ET.fromstring(data)  # noqa: S314


@dataclass
class Reply:
    """What one HTTP exchange returned."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def xml(self) -> ET.Element:
        """Return the body parsed as XML."""
        return parse_xml(self.body)

    def text(self, tag: str) -> str:
        """Return the text of the first ``tag`` element."""
        return self.xml.findtext(tag) or ""


class Api:
    """Signs requests with oauthlib's own client and sends them with aiohttp."""

    def __init__(
        self,
        sandbox: Sandbox,
        session: aiohttp.ClientSession,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.sandbox = sandbox
        self.session = session
        self.wall_clock = wall_clock

    def sign(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        credentials: Credentials | None = None,
        timestamp: str | None = None,
    ) -> tuple[str, dict[str, str], str | None]:
        """Return the signed URL, headers and body of a request."""
        creds = credentials or self.sandbox.credentials
        client = Client(
            creds.consumer_key,
            client_secret=creds.consumer_secret,
            resource_owner_key=creds.token,
            resource_owner_secret=creds.token_secret,
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
            timestamp=timestamp or str(int(self.wall_clock())),
        )
        url = self.sandbox.base_url + path
        encoded = urlencode(params or {})
        if method == "POST":
            return client.sign(url, "POST", encoded, {"Content-Type": FORM})  # type: ignore[no-any-return]
        if encoded:
            url += "?" + encoded
        return client.sign(url, "GET")  # type: ignore[no-any-return]

    async def send(self, signed: tuple[str, dict[str, str], str | None], method: str) -> Reply:
        """Send an already signed request."""
        url, headers, body = signed
        async with self.session.request(
            method, URL(url, encoded=True), headers=headers, data=body
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        credentials: Credentials | None = None,
        timestamp: str | None = None,
    ) -> Reply:
        """Send a signed GET."""
        signed = self.sign("GET", path, params, credentials=credentials, timestamp=timestamp)
        return await self.send(signed, "GET")

    async def post(self, path: str, params: Mapping[str, str]) -> Reply:
        """Send a signed, form-encoded POST."""
        return await self.send(self.sign("POST", path, params), "POST")

    async def create(self, balie: SandboxBalie, start: str, end: str) -> str:
        """Create a report and return its id."""
        reply = await self.post(
            REPORT, {"balieConsumerKey": balie.key, "startDate": start, "endDate": end}
        )
        assert reply.status == 200, reply.body
        match = re.fullmatch(rf"{REPORT}/(\d+)/status\?balieConsumerKey=.+", reply.text("resource"))
        assert match is not None
        return match.group(1)

    async def wait_done(self, report_id: str, balie: SandboxBalie) -> Reply:
        """Poll status until the report leaves "in progress"."""
        while True:
            reply = await self.get(f"{REPORT}/{report_id}/status", {"balieConsumerKey": balie.key})
            if reply.status != 200 or reply.text("message") != "Export in progress.":
                return reply
            await asyncio.sleep(FAST / 2)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Yield a client session."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """Yield a running sandbox whose reports take about FAST seconds."""
    async with Sandbox(SandboxConfig(balies=10, generation_median=FAST)) as sb:
        yield sb


@pytest.fixture
def api(sandbox: Sandbox, session: aiohttp.ClientSession) -> Api:
    """Return a signing client for the sandbox."""
    return Api(sandbox, session)


def read_xlsx(data: bytes) -> tuple[str, list[dict[str, str]]]:
    """Return the sheet name and rows (column letter -> raw value) of a one-sheet workbook."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        names = set(book.namelist())
        assert {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"} <= names
        sheet_name = parse_xml(book.read("xl/workbook.xml")).find(".//m:sheet", ns)
        assert sheet_name is not None
        sheet = parse_xml(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iterfind(".//m:row", ns):
        cells = {}
        for cell in row.iterfind("m:c", ns):
            column = re.sub(r"\d", "", cell.get("r", ""))
            if cell.get("t") == "inlineStr":
                cells[column] = "".join(t.text or "" for t in cell.iterfind(".//m:t", ns))
            else:
                cells[column] = cell.findtext("m:v", default="", namespaces=ns)
        rows.append(cells)
    return sheet_name.get("name", ""), rows


def serial_date(value: str) -> date:
    """Return the date of an Excel serial number."""
    return (EXCEL_EPOCH + timedelta(days=float(value))).date()


# --- reports over HTTP -------------------------------------------------------------


async def test_round_trip_create_status_download(api: Api, sandbox: Sandbox) -> None:
    """A signed create, status polling and download give a zip of per-government workbooks."""
    balie = sandbox.balies[0]
    report_id = await api.create(balie, "2020-04-01", "2020-06-30")
    done = await api.wait_done(report_id, balie)
    assert done.status == 200
    assert done.headers["Content-Type"] == "application/xml; charset=UTF-8"
    assert done.text("code") == "ACTION_SUCCEEDED"
    assert done.text("message") == "Export completed."
    resource = done.text("resource")
    assert resource == f"{REPORT}/{report_id}/download?balieConsumerKey={balie.key}"

    url = sandbox.root_url + sandbox.config.prefix + resource
    client_api = Api(sandbox, api.session)
    path = url.removeprefix(sandbox.base_url)
    reply = await client_api.send(client_api.sign("GET", path), "GET")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-zip-compressed"
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    disposition = reply.headers["Content-Disposition"]
    assert re.fullmatch(
        rf"attachment; filename=financialOverview_{re.escape(balie.name)}_\d{{8}}_\d{{4}}\.zip",
        disposition,
    )

    with zipfile.ZipFile(io.BytesIO(reply.body)) as archive:
        members = archive.namelist()
        assert members
        for member in members:
            assert re.fullmatch(r"Lokale overheid [\w-]+_\d{8}_\d{4}\.xlsx", member)
            name, rows = read_xlsx(archive.read(member))
            assert name == "Overview"
            assert rows[0]["A"] == "ONKOSTENNOTA"
            header_at = next(i for i, row in enumerate(rows) if row.get("A") == "INRICHTER")
            letters = "ABCDEFGHIJKLM"
            assert [rows[header_at][col] for col in letters] == list(COLUMNS)
            data, total = rows[header_at + 1 : -1], rows[-1]
            assert data
            government = member.rsplit("_", 2)[0]
            for row in data:
                assert row["A"] == balie.name
                assert row["B"] == government
                assert date(2020, 4, 1) <= serial_date(row["C"]) <= date(2020, 6, 30)
            assert total["B"] == f"Total {government}"
            assert Decimal(total["M"]) == sum(Decimal(row["M"]) for row in data)
    record = sandbox.reports[report_id]
    assert record.downloads == 1
    assert record.status_polls >= 1
    assert sandbox.stats.successes["download"] == 1


async def test_download_content_depends_only_on_seed_balie_and_period(
    session: aiohttp.ClientSession,
) -> None:
    """Two sandboxes with the same seed serve the same rows for the same balie and period."""
    bodies = []
    for _ in range(2):
        async with Sandbox(SandboxConfig(balies=3, generation_median=0)) as sb:
            api = Api(sb, session)
            report_id = await api.create(sb.balies[2], "2021-01-01", "2021-03-31")
            reply = await api.get(
                f"{REPORT}/{report_id}/download", {"balieConsumerKey": sb.balies[2].key}
            )
            with zipfile.ZipFile(io.BytesIO(reply.body)) as archive:
                bodies.append(
                    [read_xlsx(archive.read(name))[1][13:] for name in sorted(archive.namelist())]
                )
    assert bodies[0] == bodies[1]


async def test_report_ids_are_small_increasing_integers(api: Api, sandbox: Sandbox) -> None:
    """Report ids count up like the real server's ("19")."""
    balie = sandbox.balies[1]
    ids = [await api.create(balie, "2020-01-01", "2020-01-31") for _ in range(3)]
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert len(set(ids)) == 3


async def test_create_without_balie_uses_the_consumers_balie(api: Api, sandbox: Sandbox) -> None:
    """Without balieConsumerKey the first balie acts and the resource carries no key."""
    reply = await api.post(REPORT, {"startDate": "2020-01-01", "endDate": "2020-03-31"})
    assert reply.status == 200
    assert re.fullmatch(rf"{REPORT}/\d+/status", reply.text("resource"))
    (record,) = sandbox.reports.values()
    assert record.balie_key == sandbox.balies[0].key


async def test_resource_key_param_consumer_key(session: aiohttp.ClientSession) -> None:
    """With resource_key_param="consumerKey", resources say consumerKey= and still work."""
    config = SandboxConfig(balies=2, generation_median=0, resource_key_param="consumerKey")
    async with Sandbox(config) as sb:
        api = Api(sb, session)
        balie = sb.balies[1]
        reply = await api.post(
            REPORT,
            {"balieConsumerKey": balie.key, "startDate": "2020-01-01", "endDate": "2020-01-02"},
        )
        resource = reply.text("resource")
        assert resource.endswith(f"/status?consumerKey={balie.key}")
        path, query = resource.split("?")
        status = await api.get(path, dict([query.split("=")]))
        assert status.text("message") == "Export completed."
        download_path, query = status.text("resource").split("?")
        download = await api.get(download_path, dict([query.split("=")]))
        assert download.status == 200


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"startDate": "2020-01-01"}, "MISSING_REQUIRED_FIELDS"),
        ({"endDate": "2020-01-01"}, "MISSING_REQUIRED_FIELDS"),
        ({"startDate": "01/01/2020", "endDate": "2020-01-31"}, "PARSE_INVALID_DATE"),
        ({"startDate": "2020-02-30", "endDate": "2020-03-31"}, "PARSE_INVALID_DATE"),
        ({"startDate": "2020-03-01", "endDate": "2020-01-31"}, "PARSE_INVALID_DATE"),
        (
            {"startDate": "2020-01-01", "endDate": "2020-01-31", "balieConsumerKey": "NOPE"},
            "UNKNOWN_BALIE_CONSUMERKEY",
        ),
    ],
)
async def test_create_errors(api: Api, form: dict[str, str], code: str) -> None:
    """Bad create parameters answer HTTP 400 with the documented error code."""
    reply = await api.post(REPORT, form)
    assert reply.status == 400
    assert reply.text("code") == code
    assert reply.text("message")


async def test_status_and_download_errors(api: Api, sandbox: Sandbox) -> None:
    """Unknown ids, other balies and unfinished reports get their error codes."""
    own, other = sandbox.balies[0], sandbox.balies[1]
    unknown = await api.get(f"{REPORT}/999/status", {"balieConsumerKey": own.key})
    assert (unknown.status, unknown.text("code")) == (400, "UNKNOWN_REPORT_ID")

    report_id = await api.create(own, "2020-01-01", "2020-01-31")
    denied = await api.get(f"{REPORT}/{report_id}/status", {"balieConsumerKey": other.key})
    assert (denied.status, denied.text("code")) == (400, "ACCESS_DENIED")
    assert denied.text("requiredPermission")

    sandbox.reports[report_id].ready_at = float("inf")  # keep it generating
    early = await api.get(f"{REPORT}/{report_id}/download", {"balieConsumerKey": own.key})
    assert (early.status, early.text("code")) == (400, "INVALID_REPORT_STATUS")

    assert sandbox.forget_report(report_id)
    gone = await api.get(f"{REPORT}/{report_id}/download", {"balieConsumerKey": own.key})
    assert (gone.status, gone.text("code")) == (400, "UNKNOWN_REPORT_ID")


# --- OAuth ---------------------------------------------------------------------------


async def test_bad_signature_is_401_plain_text(api: Api, sandbox: Sandbox) -> None:
    """A request signed with the wrong secret gets 401 with a plain-text body."""
    wrong = Credentials(
        sandbox.credentials.consumer_key,
        "not-the-secret",
        sandbox.credentials.token,
        sandbox.credentials.token_secret,
    )
    reply = await api.get(
        f"{REPORT}/periods", {"balieConsumerKey": sandbox.balies[0].key}, credentials=wrong
    )
    assert reply.status == 401
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert b"signature_invalid" in reply.body
    assert sandbox.stats.auth_failures == 1


async def test_tampered_form_body_is_401(api: Api, sandbox: Sandbox) -> None:
    """Form parameters are signed: changing one after signing breaks the signature."""
    url, headers, body = api.sign(
        "POST", REPORT, {"startDate": "2020-01-01", "endDate": "2020-01-31"}
    )
    assert body is not None
    reply = await api.send((url, headers, body.replace("01-31", "02-29")), "POST")
    assert reply.status == 401
    assert sandbox.stats.reports_created == 0


async def test_unsigned_request_is_401(sandbox: Sandbox, session: aiohttp.ClientSession) -> None:
    """A request without an OAuth header gets 401."""
    async with session.get(sandbox.base_url + "/uitpas/price") as response:
        assert response.status == 401


async def test_unknown_token_is_401(api: Api, sandbox: Sandbox) -> None:
    """A well-formed signature for an unknown access token gets 401."""
    creds = sandbox.credentials
    other = Credentials(creds.consumer_key, creds.consumer_secret, "someone-else", "x")
    reply = await api.get(f"{REPORT}/periods", {"balieConsumerKey": "x"}, credentials=other)
    assert reply.status == 401


async def test_stale_timestamp_is_401(api: Api) -> None:
    """A timestamp outside the window is refused even with a valid signature."""
    stale = str(int(time.time()) - 3600)
    reply = await api.get("/uitpas/price", {"uitpasNumber": "0934000185108"}, timestamp=stale)
    assert reply.status == 401
    assert b"timestamp_refused" in reply.body


async def test_replayed_nonce_is_401(api: Api, sandbox: Sandbox) -> None:
    """Sending the very same signed request twice is a replay."""
    signed = api.sign("GET", f"{REPORT}/periods", {"balieConsumerKey": sandbox.balies[0].key})
    first = await api.send(signed, "GET")
    second = await api.send(signed, "GET")
    assert first.status == 200
    assert second.status == 401
    assert b"nonce_used" in second.body


def test_nonce_memory_stays_bounded() -> None:
    """Nonces older than the window are forgotten, so memory stays bounded."""
    memory = NonceMemory(window=300)
    for i in range(10_000):
        now = 1_600_000_000 + i
        assert memory.remember("c", now, f"n{i}", now)
    assert len(memory) <= 302
    assert not memory.remember("c", 1_600_009_999, "n9999", 1_600_009_999)


# --- periods and price ---------------------------------------------------------------


@pytest.fixture
async def july_api(session: aiohttp.ClientSession) -> AsyncIterator[Api]:
    """Yield a signing client for a sandbox whose wall clock says 15 July 2020."""
    async with Sandbox(SandboxConfig(balies=2), wall_clock=lambda: JULY_2020) as sb:
        yield Api(sb, session, wall_clock=lambda: JULY_2020)


def _periods(element: ET.Element) -> list[tuple[str, str]]:
    return [
        (p.findtext("startDate") or "", p.findtext("endDate") or "")
        for p in element.iterfind("periods/period")
    ]


async def test_periods_match_the_fixture(july_api: Api) -> None:
    """Periods are the last eight quarters with Brussels offsets, shaped like periods.xml."""
    reply = await july_api.get(
        f"{REPORT}/periods", {"balieConsumerKey": july_api.sandbox.balies[0].key}
    )
    assert reply.status == 200
    root = reply.xml
    assert root.tag == "response"
    assert root.findtext("code") == "ACTION_SUCCEEDED"
    periods = _periods(root)
    assert len(periods) == 8
    assert periods[0] == ("2020-04-01T00:00:00+02:00", "2020-06-30T23:59:59.999+02:00")
    assert periods[2] == ("2019-10-01T00:00:00+02:00", "2019-12-31T23:59:59.999+01:00")
    assert periods[5] == ("2019-01-01T00:00:00+01:00", "2019-03-31T23:59:59.999+02:00")
    first = root.find("periods/period")
    assert first is not None
    assert [child.tag for child in first] == ["endDate", "startDate"]
    fixture = FIXTURES / "periods.xml"
    if fixture.exists():
        expected = _periods(parse_xml(fixture.read_bytes()))
        assert periods[: len(expected)] == expected


@pytest.mark.parametrize(
    ("params", "code"),
    [({}, "MISSING_REQUIRED_FIELDS"), ({"balieConsumerKey": "NOPE"}, "UNKNOWN_BALIE_CONSUMERKEY")],
)
async def test_periods_errors(api: Api, params: dict[str, str], code: str) -> None:
    """The periods endpoint requires a known balieConsumerKey."""
    reply = await api.get(f"{REPORT}/periods", params)
    assert (reply.status, reply.text("code")) == (400, code)


def test_eu_rule_matches_the_tz_database() -> None:
    """The hand-written EU summer-time rule agrees with zoneinfo around every switch."""
    zoneinfo = pytest.importorskip("zoneinfo")
    zone = zoneinfo.ZoneInfo("Europe/Brussels")
    moment = datetime(2015, 1, 1)
    while moment < datetime(2031, 1, 1):
        assert eu_offset(moment) == moment.replace(tzinfo=zone).utcoffset(), moment
        moment += timedelta(hours=7)


def test_past_quarters_start_with_the_last_completed_one() -> None:
    """On the first day of a quarter, the newest period is the quarter that just ended."""
    assert past_quarters(date(2021, 1, 1))[0] == (date(2020, 10, 1), date(2020, 12, 31))
    assert past_quarters(date(2021, 3, 31))[0] == (date(2020, 10, 1), date(2020, 12, 31))


async def test_price_matches_the_fixture(july_api: Api) -> None:
    """The docs' example request gets the docs' example answer."""
    reply = await july_api.get(
        "/uitpas/price",
        {
            "uitpasNumber": "0934000185108",
            "dateOfBirth": "2010-01-01",
            "reason": "FIRST_CARD",
            "balieConsumerKey": july_api.sandbox.balies[0].key,
        },
    )
    assert reply.status == 200
    price = reply.xml.find("uitpasPrice")
    assert price is not None
    assert price.findtext("price") == "2.00"
    assert price.find("ageRange/ageFrom") is None
    assert price.findtext("ageRange/ageTo") == "17"
    fixture = FIXTURES / "price.xml"
    if fixture.exists():
        expected = parse_xml(fixture.read_bytes()).find("uitpasPrice")
        assert expected is not None
        assert [(e.tag, (e.text or "").strip()) for e in price.iter()] == [
            (e.tag, (e.text or "").strip()) for e in expected.iter()
        ]


@pytest.mark.parametrize(
    ("params", "price", "age_from", "age_to"),
    [
        ({"dateOfBirth": "1980-05-05", "reason": "FIRST_CARD"}, "5.00", "18", None),
        ({"reason": "FIRST_CARD"}, "5.00", "18", None),
        ({"reason": "LOSS_THEFT"}, "20.5", None, None),
    ],
)
async def test_price_depends_on_age_and_reason(
    api: Api, params: dict[str, str], price: str, age_from: str | None, age_to: str | None
) -> None:
    """Adults, unknown ages and other reasons get their own rows of the price table."""
    reply = await api.get("/uitpas/price", {"uitpasNumber": "0934000185108", **params})
    assert reply.status == 200
    assert reply.text("uitpasPrice/price") == price
    assert reply.xml.findtext("uitpasPrice/ageRange/ageFrom") == age_from
    assert reply.xml.findtext("uitpasPrice/ageRange/ageTo") == age_to


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"reason": "FIRST_CARD"}, "MISSING_REQUIRED_FIELDS"),
        ({"uitpasNumber": "0934000185108"}, "MISSING_REQUIRED_FIELDS"),
        ({"uitpasNumber": "093400018510", "reason": "FIRST_CARD"}, "PARSE_INVALID_UITPASNUMBER"),
        ({"uitpasNumber": "1234567890123", "reason": "FIRST_CARD"}, "UNKNOWN_CARD"),
        (
            {"uitpasNumber": "0934000185108", "reason": "DEFECT"},
            "PARSE_INVALID_UITPAS_STATUS_CHANGE_REASON",
        ),
        (
            {"uitpasNumber": "0934000185108", "reason": "FIRST_CARD", "voucherNumber": "ZZZ-9999"},
            "UNKNOWN_VOUCHER",
        ),
    ],
)
async def test_price_errors(api: Api, params: dict[str, str], code: str) -> None:
    """Bad price parameters answer HTTP 400 with the documented codes."""
    reply = await api.get("/uitpas/price", params)
    assert (reply.status, reply.text("code")) == (400, code)


# --- faults ---------------------------------------------------------------------------


async def _report_ready(api: Api, sandbox: Sandbox) -> tuple[str, SandboxBalie]:
    balie = sandbox.balies[0]
    report_id = await api.create(balie, "2020-01-01", "2020-03-31")
    sandbox.reports[report_id].ready_at = 0.0  # completed already
    return report_id, balie


#: Fault kinds test_http_status_faults covers; the other tests name theirs in FaultRule(...).
HTTP_STATUS_FAULTS = ("server_error", "bad_gateway", "unavailable")


@pytest.mark.parametrize("kind", HTTP_STATUS_FAULTS)
async def test_http_status_faults(api: Api, sandbox: Sandbox, kind: str) -> None:
    """Server faults answer 500 (HTML page), 502 (empty) or 503 (Retry-After), not XML."""
    sandbox.add_fault(FaultRule(kind, endpoint="price", count=1))  # type: ignore[arg-type]
    params = {"uitpasNumber": "0934000185108", "reason": "FIRST_CARD"}
    reply = await api.get("/uitpas/price", params)
    if kind == "server_error":
        assert reply.status == 500
        assert reply.body.lstrip().lower().startswith(b"<!doctype html")
    elif kind == "bad_gateway":
        assert (reply.status, reply.body) == (502, b"")
    else:
        assert reply.status == 503
        assert float(reply.headers["Retry-After"]) > 0
    assert sandbox.stats.faults[kind] == 1
    assert (await api.get("/uitpas/price", params)).status == 200  # count=1: once only


async def test_rate_limited_fault_alternates_retry_after_forms(api: Api, sandbox: Sandbox) -> None:
    """Injected 429s alternate between delta-seconds and HTTP-date Retry-After values."""
    sandbox.add_fault(FaultRule("rate_limited", endpoint="price", count=2, delay=5))
    params = {"uitpasNumber": "0934000185108", "reason": "FIRST_CARD"}
    first, second = [await api.get("/uitpas/price", params) for _ in range(2)]
    assert (first.status, second.status) == (429, 429)
    assert first.headers["Retry-After"] == "5"
    assert email.utils.parsedate_to_datetime(second.headers["Retry-After"]) is not None
    assert sandbox.stats.faults["rate_limited"] == 2


async def test_drop_closes_the_connection(api: Api, sandbox: Sandbox) -> None:
    """A dropped request gets no answer at all (POST: aiohttp resends dropped GETs itself)."""
    sandbox.add_fault(FaultRule("drop", endpoint="create", after_effect=True))
    with pytest.raises(aiohttp.ClientError):
        await api.post(REPORT, {"startDate": "2020-01-01", "endDate": "2020-03-31"})
    assert sandbox.stats.faults["drop"] == 1
    assert sandbox.stats.reports_created == 1  # after_effect: created, then dropped


async def test_truncate_sends_less_than_content_length(api: Api, sandbox: Sandbox) -> None:
    """A truncated download announces its full length, then breaks off."""
    report_id, balie = await _report_ready(api, sandbox)
    sandbox.add_fault(FaultRule("truncate", endpoint="download"))
    with pytest.raises(aiohttp.ClientPayloadError):
        await api.get(f"{REPORT}/{report_id}/download", {"balieConsumerKey": balie.key})
    assert sandbox.stats.faults["truncate"] == 1


async def test_not_zip_is_an_html_page_with_zip_headers(api: Api, sandbox: Sandbox) -> None:
    """A not_zip download is 200 with the zip's headers and an HTML body."""
    report_id, balie = await _report_ready(api, sandbox)
    sandbox.add_fault(FaultRule("not_zip"))
    reply = await api.get(f"{REPORT}/{report_id}/download", {"balieConsumerKey": balie.key})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-zip-compressed"
    assert not zipfile.is_zipfile(io.BytesIO(reply.body))
    assert b"<html" in reply.body
    assert sandbox.stats.successes["download"] == 0


async def test_malformed_xml_does_not_parse(api: Api, sandbox: Sandbox) -> None:
    """A malformed_xml answer is 200 with XML that breaks off."""
    sandbox.add_fault(FaultRule("malformed_xml", endpoint="periods"))
    reply = await api.get(f"{REPORT}/periods", {"balieConsumerKey": sandbox.balies[0].key})
    assert reply.status == 200
    with pytest.raises(ET.ParseError):
        parse_xml(reply.body)


async def test_slow_still_answers(api: Api, sandbox: Sandbox) -> None:
    """A slow answer is late but correct."""
    sandbox.add_fault(FaultRule("slow", endpoint="periods", delay=0.05))
    reply = await api.get(f"{REPORT}/periods", {"balieConsumerKey": sandbox.balies[0].key})
    assert reply.status == 200
    assert sandbox.stats.faults["slow"] == 1


async def test_fail_generation_makes_status_action_failed(api: Api, sandbox: Sandbox) -> None:
    """A report whose generation fails answers ACTION_FAILED on status."""
    sandbox.add_fault(FaultRule("fail_generation", count=1))
    balie = sandbox.balies[0]
    report_id = await api.create(balie, "2020-01-01", "2020-03-31")
    reply = await api.wait_done(report_id, balie)
    assert (reply.status, reply.text("code")) == (400, "ACTION_FAILED")
    assert sandbox.reports[report_id].failed


async def test_forget_report_makes_the_id_unknown(api: Api, sandbox: Sandbox) -> None:
    """A forgotten report answers UNKNOWN_REPORT_ID from then on."""
    report_id, balie = await _report_ready(api, sandbox)
    sandbox.add_fault(FaultRule("forget_report", endpoint="status", count=1))
    for _ in range(2):
        reply = await api.get(f"{REPORT}/{report_id}/status", {"balieConsumerKey": balie.key})
        assert (reply.status, reply.text("code")) == (400, "UNKNOWN_REPORT_ID")
    assert report_id not in sandbox.reports


def test_every_fault_kind_has_a_test() -> None:
    """The fault tests in this file cover every kind the sandbox knows."""
    named = re.findall(r'FaultRule\(\s*"(\w+)"', Path(__file__).read_text(encoding="utf-8"))
    assert set(FAULT_KINDS) <= {*named, *HTTP_STATUS_FAULTS}


@pytest.mark.parametrize(("after_effect", "created"), [(False, 0), (True, 1)])
async def test_create_fault_before_or_after_the_report_exists(
    api: Api, sandbox: Sandbox, after_effect: bool, created: int
) -> None:
    """A failed create may or may not have created the report, as after_effect says."""
    sandbox.add_fault(
        FaultRule("server_error", endpoint="create", count=1, after_effect=after_effect)
    )
    form = {"startDate": "2020-01-01", "endDate": "2020-03-31"}
    assert (await api.post(REPORT, form)).status == 500
    assert sandbox.stats.reports_created == created
    assert (await api.post(REPORT, form)).status == 200
    assert sandbox.stats.duplicate_creates == created


async def test_fault_balie_filter(api: Api, sandbox: Sandbox) -> None:
    """A rule with a balie only hits requests acting for that balie."""
    target, other = sandbox.balies[3], sandbox.balies[4]
    sandbox.add_fault(FaultRule("bad_gateway", balie=target.key))
    hit = await api.get(f"{REPORT}/periods", {"balieConsumerKey": target.key})
    miss = await api.get(f"{REPORT}/periods", {"balieConsumerKey": other.key})
    assert (hit.status, miss.status) == (502, 200)


async def test_fault_probability_is_deterministic(session: aiohttp.ClientSession) -> None:
    """The same seed injects the same faults into the same request sequence."""
    outcomes = []
    for _ in range(2):
        config = SandboxConfig(
            balies=1, seed=7, faults=[FaultRule("bad_gateway", endpoint="periods", probability=0.5)]
        )
        async with Sandbox(config) as sb:
            api = Api(sb, session)
            params = {"balieConsumerKey": sb.balies[0].key}
            outcomes.append(
                [(await api.get(f"{REPORT}/periods", params)).status for _ in range(12)]
            )
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 502}


# --- rate limit, stats, duplicates ------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after(session: aiohttp.ClientSession) -> None:
    """Past the token bucket the server answers 429 with a Retry-After in seconds."""
    async with Sandbox(SandboxConfig(balies=1, rate_limit=0.5)) as sb:
        api = Api(sb, session)
        params = {"balieConsumerKey": sb.balies[0].key}
        first = await api.get(f"{REPORT}/periods", params)
        second = await api.get(f"{REPORT}/periods", params)
        assert first.status == 200
        assert second.status == 429
        assert int(second.headers["Retry-After"]) >= 1
        assert sb.stats.rate_limited == 1


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, "0.001"), (0.25, "0.25"), (1.0, "1"), (1.2, "2"), (30, "30")]
)
def test_retry_after_format(seconds: float, header: str) -> None:
    """Retry-After is an integer from one second up and a short decimal below."""
    assert format_retry_after(seconds) == header


def test_token_bucket_with_a_fake_clock() -> None:
    """The bucket admits `rate` requests a second after its burst and says how long to wait."""
    now = [0.0]
    bucket = TokenBucket(rate=2.0, capacity=1.0, clock=lambda: now[0])
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take() == 0.0


async def test_stats_count_duplicates_and_serve_json(api: Api, sandbox: Sandbox) -> None:
    """Creating the same balie and period twice counts a duplicate; /_sandbox/stats shows it."""
    balie = sandbox.balies[2]
    first = await api.create(balie, "2020-01-01", "2020-03-31")
    await api.create(balie, "2020-01-01", "2020-03-31")
    await api.create(balie, "2020-04-01", "2020-06-30")
    await api.wait_done(first, balie)
    assert sandbox.stats.reports_created == 3
    assert sandbox.stats.duplicate_creates == 1
    assert sandbox.stats.requests["create"] == 3
    assert sandbox.stats.successes["create"] == 3
    async with api.session.get(sandbox.root_url + "/_sandbox/stats") as response:
        data = await response.json()
    assert data == {**sandbox.stats.as_dict(), "now": data["now"], "reports": data["reports"]}
    timing = data["reports"][first]
    assert timing["completed_seen_at"] >= timing["ready_at"]
    assert timing["status_polls"] >= 1


# --- balies, content, spreadsheet --------------------------------------------------------


def test_default_balies() -> None:
    """Default balies have docs-shaped keys, awkward names, and every disposition form."""
    balies = default_balies(20, seed=0)
    assert len({b.key for b in balies}) == 20
    assert len({b.name for b in balies}) == 20
    for balie in balies:
        assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{16}", balie.key)
    names = [b.name for b in balies]
    assert any(not name.isascii() for name in names)
    assert any(not name.encode("utf-8").decode("latin-1").isascii() for name in names)
    assert any("/" in name or '"' in name for name in names)
    assert {b.disposition for b in balies} == {"unquoted", "quoted", "rfc6266", "none"}
    assert [b.disposition for b in balies].count("unquoted") > len(balies) / 2
    assert default_balies(20, seed=0) == balies
    assert default_balies(20, seed=1)[0].key != balies[0].key


@pytest.mark.parametrize(
    ("name", "style", "expected"),
    [
        ("CC De Werf ", "unquoted", "attachment; filename=financialOverview_CC De Werf _1.zip"),
        (
            'Zaal "X" ../a',
            "quoted",
            r'attachment; filename="financialOverview_Zaal \"X\" ../a_1.zip"',
        ),
        (
            "Théâtre",
            "rfc6266",
            "attachment; filename*=UTF-8''financialOverview_Th%C3%A9%C3%A2tre_1.zip",
        ),
        ("Ĳzer", "unquoted", "attachment; filename*=UTF-8''financialOverview_%C4%B2zer_1.zip"),
        ("Sportdienst", "none", None),
    ],
)
def test_content_disposition_forms(name: str, style: str, expected: str | None) -> None:
    """Each balie's download names its file in its own Content-Disposition form."""
    balie = SandboxBalie("K", name, style)  # type: ignore[arg-type]
    header = content_disposition(balie, f"financialOverview_{name}_1.zip")
    assert header == expected
    if header is not None:
        header.encode("latin-1")  # HTTP header values must be latin-1 safe
        if "*=" in header:
            assert unquote(header.split("''", 1)[1]) == f"financialOverview_{name}_1.zip"


@pytest.mark.parametrize("index", [1, 3, 7])
async def test_download_disposition_per_balie(api: Api, sandbox: Sandbox, index: int) -> None:
    """Quoted, RFC 6266 and missing Content-Disposition reach the client as configured."""
    balie = sandbox.balies[index]
    report_id = await api.create(balie, "2020-01-01", "2020-03-31")
    sandbox.reports[report_id].ready_at = 0.0
    reply = await api.get(f"{REPORT}/{report_id}/download", {"balieConsumerKey": balie.key})
    assert reply.status == 200
    header = reply.headers.get("Content-Disposition")
    if balie.disposition == "none":
        assert header is None
    elif balie.disposition == "quoted":
        assert header is not None
        assert header.startswith('attachment; filename="')
    else:
        assert header is not None
        assert header.startswith("attachment; filename*=UTF-8''")


def test_contributions_sum_exactly() -> None:
    """Contributions are two-decimal amounts whose Decimal sum is the Total."""
    for sheet in generate_sheets(3, "K", "CC De Werf ", date(2019, 1, 1), date(2019, 12, 31)):
        assert all(
            row.contribution == row.contribution.quantize(Decimal("0.01")) for row in sheet.rows
        )
        assert sheet.total == sum(row.contribution for row in sheet.rows)


def test_xlsx_opens_in_openpyxl() -> None:
    """The hand-written workbook opens in openpyxl, dates included (skipped without it)."""
    openpyxl = pytest.importorskip("openpyxl")
    from uitpas_async.sandboxkit.report_content import report_zip

    sheets = generate_sheets(0, "K", "CC De Werf ", date(2020, 4, 1), date(2020, 6, 30))
    with zipfile.ZipFile(io.BytesIO(report_zip(sheets, datetime(2020, 7, 1, 14, 4)))) as archive:
        book = openpyxl.load_workbook(io.BytesIO(archive.read(archive.namelist()[0])))
    sheet = book["Overview"]
    assert sheet["A13"].value == "INRICHTER"
    assert isinstance(sheet["C14"].value, datetime)


# --- serve() and the command line -------------------------------------------------------


async def test_serve_until_cancelled(session: aiohttp.ClientSession) -> None:
    """serve() calls ready once listening and stops cleanly when cancelled."""
    ready: asyncio.Future[Sandbox] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(SandboxConfig(balies=1), ready=ready.set_result))
    sb = await ready
    async with session.get(sb.root_url + "/_sandbox/stats") as response:
        assert response.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_module_prints_one_json_line(session: aiohttp.ClientSession) -> None:
    """`python -m uitpas_async.sandbox` announces its URL, credentials and balies on stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uitpas_async.sandbox",
        "--balies",
        "3",
        "--median",
        "0.01",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        info = json.loads(line)
        assert info["consumer_key"] == SANDBOX_CREDENTIALS.consumer_key
        assert info["token_secret"] == SANDBOX_CREDENTIALS.token_secret
        assert len(info["balies"]) == 3
        assert info["base_url"].endswith("/uitid/rest")
        root = info["base_url"].removesuffix("/uitid/rest")
        async with session.get(root + "/_sandbox/stats") as response:
            assert (await response.json())["reports_created"] == 0
    finally:
        process.terminate()
        await process.wait()
