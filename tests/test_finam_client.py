"""FinamClient over real HTTP on loopback: the shared JWT, 401s, statuses, and secrecy."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path

import pytest

from uitpas_async.engine.backend import ReportBackend
from uitpas_async.engine.config import Limits, PollPolicy, RetryPolicy
from uitpas_async.errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponseError,
    UitpasError,
)
from uitpas_async.finam import (
    AccountReportInfo,
    AccountReportRequest,
    FinamClient,
    FinamReportError,
    FinamReportNotFoundError,
    ReportCreationStatus,
    ReportForm,
)
from uitpas_async.finam.sandbox import FinamFaultRule, FinamSandbox, FinamSandboxConfig

START, END = date(2024, 1, 1), date(2024, 3, 31)
FAST_RETRY = RetryPolicy(attempts=4, initial_backoff=0.01, max_backoff=0.02, max_retry_after=0.02)
FAST_POLL = PollPolicy(initial_delay=0.01, multiplier=1.5, max_interval=0.05, timeout=30.0)


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(sandbox: FinamSandbox, **kwargs: object) -> FinamClient:
    options: dict[str, object] = {
        "base_url": sandbox.base_url,
        "retry": FAST_RETRY,
        "poll": FAST_POLL,
        "rate_per_method": None,
    }
    options.update(kwargs)
    return FinamClient(sandbox.secret, **options)  # type: ignore[arg-type]


def test_client_is_a_report_backend() -> None:
    """FinamClient satisfies ReportBackend, so the orchestrator takes it as is."""
    client = FinamClient("x")
    assert isinstance(client, ReportBackend)
    assert client.provider == "finam"


@pytest.mark.parametrize("secret", ["", "   "])
def test_missing_secret_is_a_configuration_error(secret: str) -> None:
    """No secret, no client."""
    with pytest.raises(ConfigurationError):
        FinamClient(secret)
    with pytest.raises(ConfigurationError, match="FINAM_SECRET"):
        FinamClient.from_env({"FINAM_SECRET": secret})


async def test_expired_token_is_renewed_once_for_100_concurrent_calls() -> None:
    """100 calls while the client's token is stale: exactly one POST /v1/sessions."""
    clock = FakeClock()
    async with (
        FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox,
        _client(sandbox, clock=clock) as client,
    ):
        job = await client.create_account_report(sandbox.accounts[0], START, END)
        assert sandbox.stats.sessions_created == 1
        clock.now += 3600  # far past the token's lifetime, by the client's own reckoning
        infos = await asyncio.gather(
            *(client.get_account_report_info(job.report_id) for _ in range(100))
        )
        assert {info.report_id for info in infos} == {job.report_id}
        assert sandbox.stats.sessions_created == 2
        assert sandbox.stats.auth_failures == 0


async def test_a_renewal_needs_no_slot_when_every_slot_waits_for_it() -> None:
    """One slot, held by a request whose token is stale: its renewal still gets through."""
    clock = FakeClock()

    async def calls(sandbox: FinamSandbox) -> None:
        async with _client(
            sandbox, clock=clock, limits=Limits(max_concurrent_requests=1)
        ) as client:
            job = await client.create_account_report(sandbox.accounts[0], START, END)
            clock.now += 3600
            infos = await asyncio.gather(
                *(client.get_account_report_info(job.report_id) for _ in range(10))
            )
            assert len(infos) == 10

    async with FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox:
        # A renewal queued for the slot its own request holds would wait forever.
        await asyncio.wait_for(calls(sandbox), timeout=20)
        assert sandbox.stats.sessions_created == 2


async def test_token_the_server_expired_is_renewed_once_for_100_concurrent_calls() -> None:
    """100 calls that all get 401 for one expired token: one renewal, all retried."""
    async with FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox, _client(sandbox) as client:
        job = await client.create_account_report(sandbox.accounts[0], START, END)
        sandbox.expire_tokens()
        infos = await asyncio.gather(
            *(client.get_account_report_info(job.report_id) for _ in range(100))
        )
        assert len(infos) == 100
        assert sandbox.stats.sessions_created == 2
        assert sandbox.stats.expired_tokens >= 1


async def test_401_renews_once_and_retries() -> None:
    """One 401 on a create: the token is renewed and the create goes again, once."""
    async with FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox, _client(sandbox) as client:
        sandbox.add_fault(FinamFaultRule("unauthorized", endpoint="create", count=1))
        job = await client.create_account_report(sandbox.accounts[0], START, END)
        assert job.report_id in sandbox.reports
        assert sandbox.stats.sessions_created == 2
        assert sandbox.stats.reports_created == 1


async def test_persistent_401_fails_after_one_renewal() -> None:
    """A token refused again right after renewal raises AuthenticationError."""
    async with FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox, _client(sandbox) as client:
        sandbox.add_fault(FinamFaultRule("unauthorized", endpoint="info"))
        with pytest.raises(AuthenticationError):
            await client.get_account_report_info("whatever")
        assert sandbox.stats.sessions_created == 2
        assert sandbox.stats.requests["info"] == 2


async def test_fetch_keeps_bytes_and_content_type(tmp_path: Path) -> None:
    """A fetched report is exactly the file served, with its content type and name."""
    config = FinamSandboxConfig(accounts=1, generation_median=0.05, json_style="mixed")
    async with FinamSandbox(config) as sandbox, _client(sandbox) as client:
        for form in (ReportForm.SHORT, ReportForm.LONG):
            report = await client.fetch_account_report(
                sandbox.accounts[0], START, END, tmp_path, form
            )
            served = sandbox.reports[report.report_id]
            assert report.path.read_bytes() == served.body
            assert report.content_type == served.content_type
            assert report.filename == served.filename
            assert report.path.stat().st_mode & 0o077 == 0


def _info(status: ReportCreationStatus, url: str | None = None) -> AccountReportInfo:
    return AccountReportInfo("r1", status, url, None, ReportForm.LONG, "42")


@pytest.mark.parametrize(
    ("status", "elapsed", "outcome"),
    [
        (ReportCreationStatus.PENDING, 0.0, False),
        (ReportCreationStatus.IN_PROGRESS, 500.0, False),
        (ReportCreationStatus.SUCCESS, 0.0, True),
        (ReportCreationStatus.NOT_FOUND, 0.0, False),
        (ReportCreationStatus.NOT_FOUND, 29.0, False),
        (ReportCreationStatus.NOT_FOUND, 31.0, FinamReportNotFoundError),
        (ReportCreationStatus.ERROR, 0.0, FinamReportError),
    ],
)
async def test_status_meanings(
    status: ReportCreationStatus, elapsed: float, outcome: object
) -> None:
    """PENDING/IN_PROGRESS wait, SUCCESS is ready, ERROR fails, NOT_FOUND fails past 30 s."""
    clock = FakeClock()
    async with (
        FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox,
        _client(sandbox, clock=clock) as client,
    ):
        job = await client.create_account_report(sandbox.accounts[0], START, END)
        clock.now += elapsed
        url = "http://127.0.0.1/x" if status is ReportCreationStatus.SUCCESS else None
        info = _info(status, url)
        if isinstance(outcome, bool):
            assert client._ready(info, job.report_id) is outcome
        else:
            assert isinstance(outcome, type)
            with pytest.raises(outcome) as caught:
                client._ready(info, job.report_id)
            assert isinstance(caught.value, UitpasError)
            assert client.is_report_gone(caught.value) is (outcome is FinamReportNotFoundError)


async def test_not_found_for_a_report_we_did_not_create_is_gone() -> None:
    """A report id from elsewhere (a resumed journal) gets no grace period."""
    async with FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox, _client(sandbox) as client:
        request = AccountReportRequest(sandbox.accounts[0], START, END)
        with pytest.raises(FinamReportNotFoundError) as caught:
            await client.report_ready(request, "NOSUCHREPORT")
        assert client.is_report_gone(caught.value)


async def test_failed_generation_fails_with_the_servers_information() -> None:
    """Status ERROR raises FinamReportError naming the report, account, range and form."""
    async with FinamSandbox(FinamSandboxConfig(accounts=1, generation_median=0.0)) as sandbox:
        sandbox.add_fault(FinamFaultRule("fail_generation", endpoint="create"))
        async with _client(sandbox) as client:
            job = await client.create_account_report(sandbox.accounts[0], START, END)
            with pytest.raises(FinamReportError) as caught:
                await client.wait_for_account_report(job.report_id)
    assert caught.value.code == "REPORT_ERROR"
    assert sandbox.accounts[0] in caught.value.message
    assert "2024-01-01..2024-03-31" in caught.value.message


async def test_malformed_answer_is_a_protocol_error() -> None:
    """Cut JSON on an info call is a MalformedResponseError (the orchestrator retries it)."""
    async with FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox, _client(sandbox) as client:
        sandbox.add_fault(FinamFaultRule("malformed_json", endpoint="info", count=1))
        with pytest.raises(MalformedResponseError):
            await client.get_account_report_info("x")


async def test_secret_and_tokens_never_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The secret and every JWT stay out of debug logs, reprs and error texts."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with FinamSandbox(FinamSandboxConfig(accounts=1, generation_median=0.02)) as sandbox:
        sandbox.add_fault(FinamFaultRule("unauthorized", endpoint="info", count=1))
        sandbox.add_fault(FinamFaultRule("bad_gateway", endpoint="info", count=1))
        async with _client(sandbox) as client:
            report = await client.fetch_account_report(sandbox.accounts[0], START, END, tmp_path)
            texts += [repr(client), repr(client._tokens), repr(report)]
            sandbox.add_fault(FinamFaultRule("unauthorized", endpoint="info"))
            with pytest.raises(AuthenticationError) as refused:
                await client.get_account_report_info(report.report_id)
            texts += [str(refused.value), repr(refused.value)]
        wrong = FinamClient("wrong-" + sandbox.secret, base_url=sandbox.base_url)
        async with wrong:
            with pytest.raises(AuthenticationError) as bad_secret:
                await wrong.get_account_report_info("x")
        texts += [str(bad_secret.value), repr(bad_secret.value), repr(wrong)]
        tokens = sandbox.issued_tokens
    assert len(tokens) >= 2
    texts += [record.getMessage() for record in caplog.records]
    texts.append(caplog.text)
    for text in texts:
        assert sandbox.secret not in text
        for token in tokens:
            assert token not in text
