"""UitpasClient over real HTTP against the sandbox: every endpoint, errors and faults."""

from __future__ import annotations

import logging
import stat
import zipfile
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from uitpas_async import (
    AccessDeniedError,
    AuthenticationError,
    CardError,
    ConnectionLostError,
    Credentials,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    PollPolicy,
    PriceReason,
    ReportGenerationError,
    ReportNotReadyError,
    RetryPolicy,
    ServerError,
    UitpasClient,
    UitpasError,
    UnknownBalieError,
    UnknownReportError,
)
from uitpas_async.xml_api.sandbox import FaultRule, Sandbox, SandboxConfig

START, END = date(2024, 1, 1), date(2024, 3, 31)
FAST_RETRY = RetryPolicy(attempts=4, initial_backoff=0.01, max_backoff=0.05, max_retry_after=0.05)
FAST_POLL = PollPolicy(initial_delay=0.02, multiplier=1.5, max_interval=0.1, timeout=20.0)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox whose reports take about 50 ms."""
    async with Sandbox(SandboxConfig(balies=6, generation_median=0.05, seed=3)) as server:
        yield server


def _client(sandbox: Sandbox, **options: object) -> UitpasClient:
    settings: dict[str, object] = {"retry": FAST_RETRY, "poll": FAST_POLL, **options}
    return UitpasClient(sandbox.base_url, sandbox.credentials, **settings)  # type: ignore[arg-type]


async def test_fetch_report_end_to_end(sandbox: Sandbox, tmp_path: Path) -> None:
    """Create, poll and download: an owner-only zip whose sheets name the balie."""
    balie = sandbox.balies[0]
    async with _client(sandbox) as client:
        report = await client.fetch_financial_report(
            START, END, tmp_path / "new" / "dir", balie_consumer_key=balie.key
        )
    assert report.path.parent == tmp_path / "new" / "dir"
    assert stat.S_IMODE(report.path.stat().st_mode) == 0o600
    assert report.size == report.path.stat().st_size
    with zipfile.ZipFile(report.path) as archive:
        assert archive.testzip() is None
        members = archive.namelist()
        assert members
        sheet = archive.read(members[0]).decode(errors="replace")
    assert report.content_type.startswith("application/x-zip-compressed")
    assert sheet  # the xlsx member is not empty
    assert sandbox.reports[report.report_id].balie_key == balie.key
    assert sandbox.stats.reports_created == 1


async def test_status_moves_from_progress_to_completed(sandbox: Sandbox) -> None:
    """Status says in progress first, then completed with a download URL under the prefix."""
    balie = sandbox.balies[1]
    async with _client(sandbox) as client:
        job = await client.create_financial_report(START, END, balie_consumer_key=balie.key)
        first = await client.get_financial_report_status(
            job.report_id, balie_consumer_key=balie.key
        )
        assert not first.completed
        assert first.download_url is None
        done = await client.wait_for_financial_report(job.report_id, balie_consumer_key=balie.key)
    assert done.completed
    assert done.download_url is not None
    assert done.download_url.startswith(sandbox.base_url + "/uitpas/report/")


async def test_download_before_completion_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    """Downloading a report still generating raises ReportNotReadyError and stores nothing."""
    slow = SandboxConfig(balies=2, generation_median=30.0)
    async with Sandbox(slow) as server, _client(server) as client:
        key = server.balies[0].key
        job = await client.create_financial_report(START, END, balie_consumer_key=key)
        with pytest.raises(ReportNotReadyError) as caught:
            await client.download_financial_report(job.report_id, tmp_path, balie_consumer_key=key)
    assert caught.value.code == "INVALID_REPORT_STATUS"
    assert list(tmp_path.iterdir()) == []


async def test_periods_newest_first_and_aware(sandbox: Sandbox) -> None:
    """Periods come back newest first with aware datetimes."""
    async with _client(sandbox) as client:
        periods = await client.get_financial_report_periods(
            balie_consumer_key=sandbox.balies[0].key
        )
    assert len(periods) >= 4
    assert all(period.start.tzinfo is not None for period in periods)
    assert [p.start for p in periods] == sorted((p.start for p in periods), reverse=True)


async def test_price_of_a_known_card(sandbox: Sandbox) -> None:
    """The documented example card has an exact decimal price and a card system."""
    async with _client(sandbox) as client:
        price = await client.get_uitpas_price(
            "0934000185108", PriceReason.FIRST_CARD, date_of_birth=date(2010, 1, 1)
        )
    assert isinstance(price.price, Decimal)
    assert price.card_system is not None
    assert price.reason is PriceReason.FIRST_CARD


@pytest.mark.parametrize(
    ("number", "reason", "error", "code"),
    [
        ("0000000000000", "FIRST_CARD", CardError, "UNKNOWN_CARD"),
        ("12", "FIRST_CARD", InvalidRequestError, "PARSE_INVALID_UITPASNUMBER"),
        ("0934000185108", "NOT_A_REASON", InvalidRequestError, None),
    ],
)
async def test_price_errors(
    sandbox: Sandbox, number: str, reason: str, error: type[UitpasError], code: str | None
) -> None:
    """The server's price errors arrive as typed API errors with their code."""
    async with _client(sandbox) as client:
        with pytest.raises(error) as caught:
            await client.get_uitpas_price(number, reason)
    if code:
        assert caught.value.code == code


async def test_unknown_balie(sandbox: Sandbox) -> None:
    """An unknown balie key is UnknownBalieError, not retried."""
    async with _client(sandbox) as client:
        with pytest.raises(UnknownBalieError):
            await client.create_financial_report(START, END, balie_consumer_key="NOPE")
    assert sandbox.stats.requests["create"] == 1


async def test_unknown_report(sandbox: Sandbox) -> None:
    """A report id the server never issued is UnknownReportError."""
    async with _client(sandbox) as client:
        with pytest.raises(UnknownReportError):
            await client.get_financial_report_status(
                "9999", balie_consumer_key=sandbox.balies[0].key
            )


async def test_other_balies_report_is_access_denied(sandbox: Sandbox) -> None:
    """Polling another balie's report is ACCESS_DENIED with the required permission."""
    first, second = sandbox.balies[0].key, sandbox.balies[1].key
    async with _client(sandbox) as client:
        job = await client.create_financial_report(START, END, balie_consumer_key=first)
        with pytest.raises(AccessDeniedError) as caught:
            await client.get_financial_report_status(job.report_id, balie_consumer_key=second)
    assert caught.value.required_permission


async def test_wrong_secret_is_an_authentication_error(sandbox: Sandbox) -> None:
    """A bad token secret is refused by the server's OAuth check, and the error hides it."""
    good = sandbox.credentials
    bad = Credentials(good.consumer_key, good.consumer_secret, good.token, "wrong-secret-xyz")
    async with UitpasClient(sandbox.base_url, bad, retry=FAST_RETRY) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_financial_report_periods(balie_consumer_key=sandbox.balies[0].key)
    assert caught.value.status == 401
    assert "wrong-secret-xyz" not in str(caught.value) + repr(caught.value)


async def test_bad_dates_fail_before_any_request(sandbox: Sandbox) -> None:
    """Strings, datetimes and reversed periods are refused locally."""
    async with _client(sandbox) as client:
        for start, end in [("2024-01-01", END), (START, date(2023, 1, 1))]:
            with pytest.raises(InvalidArgumentError):
                await client.create_financial_report(start, end)  # type: ignore[arg-type]
    assert sandbox.stats.requests["create"] == 0


@pytest.mark.parametrize(
    "kind", ["server_error", "bad_gateway", "unavailable", "rate_limited", "drop", "slow"]
)
async def test_transient_faults_on_status_are_retried(
    sandbox: Sandbox, kind: str, tmp_path: Path
) -> None:
    """One injected fault on a status call is retried away (500 is not: see below)."""
    key = sandbox.balies[0].key
    async with _client(sandbox) as client:
        job = await client.create_financial_report(START, END, balie_consumer_key=key)
        sandbox.add_fault(FaultRule(kind, endpoint="status", count=1, delay=0.01))
        if kind == "server_error":
            with pytest.raises(ServerError) as caught:
                await client.get_financial_report_status(job.report_id, balie_consumer_key=key)
            assert caught.value.status == 500
            return
        await client.get_financial_report_status(job.report_id, balie_consumer_key=key)
    assert sandbox.stats.faults[kind] == 1
    assert sandbox.stats.auth_failures == 0


async def test_dropped_create_is_not_retried(sandbox: Sandbox) -> None:
    """A create whose connection dropped after sending may have worked: never resent."""
    sandbox.add_fault(FaultRule("drop", endpoint="create", count=1, after_effect=True))
    async with _client(sandbox) as client:
        with pytest.raises(ConnectionLostError):
            await client.create_financial_report(
                START, END, balie_consumer_key=sandbox.balies[0].key
            )
    assert sandbox.stats.requests["create"] == 1
    assert sandbox.stats.reports_created == 1


async def test_malformed_xml_is_a_protocol_error(sandbox: Sandbox) -> None:
    """A broken XML body on a 200 is MalformedResponseError."""
    sandbox.add_fault(FaultRule("malformed_xml", endpoint="periods"))
    async with _client(sandbox) as client:
        with pytest.raises(MalformedResponseError):
            await client.get_financial_report_periods(balie_consumer_key=sandbox.balies[0].key)


async def test_failed_generation(sandbox: Sandbox, tmp_path: Path) -> None:
    """A generation the server fails surfaces as ReportGenerationError (ACTION_FAILED)."""
    sandbox.add_fault(FaultRule("fail_generation", endpoint="create"))
    async with _client(sandbox) as client:
        with pytest.raises(ReportGenerationError) as caught:
            await client.fetch_financial_report(
                START, END, tmp_path, balie_consumer_key=sandbox.balies[0].key
            )
    assert caught.value.code == "ACTION_FAILED"


@pytest.mark.parametrize("kind", ["truncate", "not_zip"])
async def test_bad_downloads_leave_nothing(sandbox: Sandbox, tmp_path: Path, kind: str) -> None:
    """Truncated or non-zip downloads are retried; a persistent one leaves no file behind."""
    key = sandbox.balies[0].key
    async with _client(sandbox) as client:
        job = await client.create_financial_report(START, END, balie_consumer_key=key)
        await client.wait_for_financial_report(job.report_id, balie_consumer_key=key)
        sandbox.add_fault(FaultRule(kind, endpoint="download"))
        with pytest.raises(UitpasError):
            await client.download_financial_report(job.report_id, tmp_path, balie_consumer_key=key)
    assert list(tmp_path.iterdir()) == []


async def test_secrets_never_reach_logs(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Debug logs of a full fetch with retries hold no secret and no signature."""
    caplog.set_level(logging.DEBUG)
    # Status and download only: a create answered 502 is (rightly) not retried.
    for endpoint in ("status", "download"):
        sandbox.add_fault(FaultRule("bad_gateway", endpoint=endpoint, probability=0.3))
    key = sandbox.balies[2].key
    async with _client(sandbox, retry=RetryPolicy(attempts=10, initial_backoff=0.001)) as client:
        await client.fetch_financial_report(START, END, tmp_path, balie_consumer_key=key)
        text = caplog.text + repr(client)
    credentials = sandbox.credentials
    for secret in (credentials.consumer_secret, credentials.token_secret, "oauth_signature"):
        assert secret not in text
    assert "retrying" in caplog.text


async def test_shared_session_is_not_closed(sandbox: Sandbox) -> None:
    """A caller's aiohttp session is used and left open."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with _client(sandbox, session=session) as client:
            await client.get_financial_report_periods(balie_consumer_key=sandbox.balies[0].key)
        assert not session.closed
