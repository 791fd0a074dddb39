"""Retrying through UitpasClient: what is retried, how long it waits, and what never is."""

from __future__ import annotations

import asyncio
import re
import socket
import traceback
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

from uitpas_async import (
    ApiError,
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    Credentials,
    HttpStatusError,
    MalformedResponseError,
    RateLimitedError,
    ReportGenerationError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
    UitpasClient,
    UitpasError,
    UnknownReportError,
)

PREFIX_PATH = "/uitid/rest"
REPORTS_PATH = "/uitpas/report/financialoverview/organiser"
BASE_URL = f"https://test.uitid.be{PREFIX_PATH}"
REPORTS_URL = f"{BASE_URL}{REPORTS_PATH}"
STATUS_URL = f"{REPORTS_URL}/19/status"
XML = "application/xml"
STATUS_OK = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response>'
    b"<code>ACTION_SUCCEEDED</code><message>Export in progress.</message>"
    b"<resource>/uitpas/report/financialoverview/organiser/19/status</resource></response>"
)
CREATE_OK = STATUS_OK


def api_error(code: str) -> bytes:
    """Return the API's XML error envelope for a code."""
    return f"<response><code>{code}</code><message>Fout</message></response>".encode()


def connect_error() -> aiohttp.ClientConnectorError:
    """Return the error aiohttp raises when no connection can be made."""
    key = SimpleNamespace(host="test.uitid.be", port=443, ssl=True)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))  # type: ignore[arg-type]


def request_count(mocked: aioresponses) -> int:
    """Return how many requests reached the mock, all URLs together."""
    return sum(len(calls) for calls in mocked.requests.values())


def make_client(
    credentials: Credentials, sleep: Any, retry: RetryPolicy | None = None
) -> UitpasClient:
    """Return a client on the test prefix whose retries sleep through ``sleep``."""
    clock = getattr(sleep, "clock", None)
    options: dict[str, Any] = {"clock": clock} if clock else {}
    return UitpasClient(BASE_URL, credentials, retry=retry or RetryPolicy(), sleep=sleep, **options)


async def get_status(client: UitpasClient) -> Any:
    """Ask the status of report 19."""
    async with client:
        return await client.get_financial_report_status("19")


async def create(client: UitpasClient) -> Any:
    """Create a report for August 2014."""
    async with client:
        return await client.create_financial_report(date(2014, 8, 1), date(2014, 8, 31))


# -- idempotent calls: what is retried and how long it waits -------------------------------


async def test_503_then_200_succeeds_after_one_backoff(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """A 503 is retried: the second attempt succeeds after one backoff within its ceiling."""
    mocked.get(STATUS_URL, status=503, body=b"")
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    policy = RetryPolicy(initial_backoff=0.5)
    status = await get_status(make_client(credentials, fake_sleep, policy))
    assert status.report_id == "19"
    assert request_count(mocked) == 2
    assert len(fake_sleep.delays) == 1
    assert 0 <= fake_sleep.delays[0] <= policy.initial_backoff


async def test_backoff_ceiling_doubles_with_each_retry(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """Retry n waits at most initial_backoff * 2**(n-1): the bare first attempt counts as one."""
    policy = RetryPolicy(attempts=4, initial_backoff=1.0, max_backoff=100.0)
    ceilings = [1.0, 2.0, 4.0]
    # Full jitter draws below each ceiling; over many runs the largest draw nears it.
    largest = [0.0, 0.0, 0.0]
    for _ in range(40):
        fake_sleep.delays.clear()
        for _ in range(3):
            mocked.get(STATUS_URL, status=503, body=b"")
        mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
        await get_status(make_client(credentials, fake_sleep, policy))
        assert len(fake_sleep.delays) == 3
        for index, (delay, ceiling) in enumerate(zip(fake_sleep.delays, ceilings, strict=True)):
            assert 0 <= delay <= ceiling
            largest[index] = max(largest[index], delay)
    # The third retry's draws exceed the second's ceiling at least once in 40 tries.
    assert largest[2] > ceilings[1]


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("0", 0.0), ("2.5", 2.5), ("100000", 120.0)],
    ids=["seconds", "zero", "decimal", "capped"],
)
async def test_retry_after_sets_the_wait(
    mocked: aioresponses,
    credentials: Credentials,
    fake_sleep: Any,
    status: int,
    retry_after: str,
    expected: float,
) -> None:
    """The wait is the server's Retry-After, capped at RetryPolicy.max_retry_after."""
    mocked.get(STATUS_URL, status=status, headers={"Retry-After": retry_after})
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    policy = RetryPolicy(max_retry_after=120.0)
    await get_status(make_client(credentials, fake_sleep, policy))
    assert fake_sleep.delays == [expected]
    assert request_count(mocked) == 2


async def test_retry_after_http_date_sets_the_wait(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """A Retry-After HTTP-date five minutes ahead gives a wait of about five minutes."""
    when = datetime.now(timezone.utc) + timedelta(seconds=300)
    mocked.get(STATUS_URL, status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    await get_status(make_client(credentials, fake_sleep, RetryPolicy(max_retry_after=1000)))
    (delay,) = fake_sleep.delays
    assert 280 <= delay <= 300


@pytest.mark.parametrize("retry_after", [None, "soon", ""], ids=["absent", "garbage", "empty"])
async def test_429_without_a_usable_retry_after_backs_off(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any, retry_after: str | None
) -> None:
    """Without a usable Retry-After, a 429 waits the exponential backoff instead."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    mocked.get(STATUS_URL, status=429, headers=headers)
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    policy = RetryPolicy(initial_backoff=0.25)
    await get_status(make_client(credentials, fake_sleep, policy))
    (delay,) = fake_sleep.delays
    assert 0 <= delay <= policy.initial_backoff


@pytest.mark.parametrize(
    "exception",
    [
        connect_error(),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        asyncio.TimeoutError(),
        aiohttp.ServerTimeoutError("read timeout"),
    ],
    ids=["connect", "server-disconnected", "connection-reset", "timeout", "server-timeout"],
)
@pytest.mark.parametrize("status", [502, 504], ids=["then-502", "then-504"])
async def test_transport_faults_are_retried(
    mocked: aioresponses,
    credentials: Credentials,
    fake_sleep: Any,
    exception: Exception,
    status: int,
) -> None:
    """Connection faults, timeouts and 502/504 are retried on an idempotent call."""
    mocked.get(STATUS_URL, exception=exception)
    mocked.get(STATUS_URL, status=status)
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    status_report = await get_status(make_client(credentials, fake_sleep))
    assert status_report.completed is False
    assert request_count(mocked) == 3
    assert len(fake_sleep.delays) == 2


async def test_bare_client_connection_error_is_retried(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """aiohttp's plain ClientConnectionError (a lost connection) is retried like the others."""
    mocked.get(STATUS_URL, exception=aiohttp.ClientConnectionError("Connection lost"))
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    await get_status(make_client(credentials, fake_sleep))
    assert request_count(mocked) == 2


async def test_exhausted_attempts_raise_the_last_typed_error(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """When every attempt fails, the last error is raised as itself, with its status."""
    mocked.get(STATUS_URL, status=502, body=b"")
    mocked.get(STATUS_URL, status=503, body=b"<html>Service Unavailable</html>")
    mocked.get(STATUS_URL, status=504, body=b"")
    with pytest.raises(ServerError) as caught:
        await get_status(make_client(credentials, fake_sleep, RetryPolicy(attempts=3)))
    assert caught.value.status == 504
    assert request_count(mocked) == 3
    assert len(fake_sleep.delays) == 2


async def test_exhausted_connect_attempts_raise_connect_error(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """A server that never answers ends in ConnectError after the configured attempts."""
    mocked.get(STATUS_URL, exception=connect_error(), repeat=True)
    with pytest.raises(ConnectError):
        await get_status(make_client(credentials, fake_sleep, RetryPolicy(attempts=4)))
    assert request_count(mocked) == 4
    assert len(fake_sleep.delays) == 3


async def test_retry_policy_none_makes_a_single_attempt(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """RetryPolicy.none() sends once and raises the first fault."""
    mocked.get(STATUS_URL, status=503, repeat=True)
    with pytest.raises(ServerError):
        await get_status(make_client(credentials, fake_sleep, RetryPolicy.none()))
    assert request_count(mocked) == 1
    assert fake_sleep.delays == []


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error_class"),
    [
        (400, api_error("UNKNOWN_REPORT_ID"), XML, UnknownReportError),
        (400, api_error("ACTION_FAILED"), XML, ReportGenerationError),
        (400, api_error("SOMETHING_NEW"), XML, ApiError),
        (500, b"<html>Internal Server Error</html>", "text/html", ServerError),
        (501, b"", "text/plain", ServerError),
        (401, b"oauth_problem=signature_invalid", "text/plain", AuthenticationError),
        (404, b"<html>Not Found</html>", "text/html", HttpStatusError),
        (200, b"<html>Login</html>", "text/html", MalformedResponseError),
    ],
    ids=["unknown-report", "action-failed", "unknown-code", "500", "501", "401", "404", "200-html"],
)
async def test_permanent_faults_are_not_retried(
    mocked: aioresponses,
    credentials: Credentials,
    fake_sleep: Any,
    status: int,
    body: bytes,
    content_type: str,
    error_class: type[UitpasError],
) -> None:
    """API errors, 500/501, auth failures and malformed answers are raised after one request."""
    mocked.get(STATUS_URL, status=status, body=body, content_type=content_type, repeat=True)
    with pytest.raises(error_class) as caught:
        await get_status(make_client(credentials, fake_sleep))
    assert type(caught.value) is error_class
    assert request_count(mocked) == 1
    assert fake_sleep.delays == []


# -- create is not idempotent ----------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        ({"status": 502}, ServerError),
        ({"status": 503}, ServerError),
        ({"status": 504}, ServerError),
        ({"exception": asyncio.TimeoutError()}, RequestTimeoutError),
        ({"exception": aiohttp.ServerDisconnectedError()}, ConnectionLostError),
        ({"exception": aiohttp.ClientOSError(104, "reset")}, ConnectionLostError),
    ],
    ids=["502", "503", "504", "timeout", "server-disconnected", "connection-reset"],
)
async def test_create_is_not_retried_when_it_may_have_reached_the_server(
    mocked: aioresponses,
    credentials: Credentials,
    fake_sleep: Any,
    failure: dict[str, Any],
    error_class: type[UitpasError],
) -> None:
    """A create that may have started a report is not sent again: it would duplicate it."""
    mocked.post(REPORTS_URL, **failure)
    mocked.post(REPORTS_URL, status=200, body=CREATE_OK, content_type=XML)
    with pytest.raises(error_class):
        await create(make_client(credentials, fake_sleep))
    assert request_count(mocked) == 1
    assert fake_sleep.delays == []


@pytest.mark.parametrize(
    "failure",
    [{"exception": connect_error()}, {"status": 429, "headers": {"Retry-After": "3"}}],
    ids=["connect-error", "429"],
)
async def test_create_is_retried_when_it_surely_did_not_reach_the_server(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any, failure: dict[str, Any]
) -> None:
    """A create refused before it started anything (no connection, 429) is sent again."""
    mocked.post(REPORTS_URL, **failure)
    mocked.post(REPORTS_URL, status=200, body=CREATE_OK, content_type=XML)
    job = await create(make_client(credentials, fake_sleep))
    assert job.report_id == "19"
    assert request_count(mocked) == 2


@pytest.mark.parametrize(
    "failure",
    [{"status": 503}, {"exception": asyncio.TimeoutError()}],
    ids=["503", "timeout"],
)
async def test_create_is_retried_when_unsafe_retries_are_allowed(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any, failure: dict[str, Any]
) -> None:
    """RetryPolicy(retry_unsafe_creates=True) retries a create after a 503 or a timeout."""
    mocked.post(REPORTS_URL, **failure)
    mocked.post(REPORTS_URL, status=200, body=CREATE_OK, content_type=XML)
    policy = RetryPolicy(retry_unsafe_creates=True)
    job = await create(make_client(credentials, fake_sleep, policy))
    assert job.report_id == "19"
    assert request_count(mocked) == 2


async def test_unsafe_create_retries_still_skip_500(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """Even with unsafe retries, a 500 (a broken request, not an overload) is not retried."""
    mocked.post(REPORTS_URL, status=500, repeat=True)
    with pytest.raises(ServerError):
        await create(make_client(credentials, fake_sleep, RetryPolicy(retry_unsafe_creates=True)))
    assert request_count(mocked) == 1


# -- every attempt is signed afresh (real server: signing happens in an aiohttp middleware) --


class ScriptedServer:
    """A local UiTPAS status and create endpoint answering from a script, recording requests."""

    def __init__(self) -> None:
        #: Answers still to give, as (status, headers, body); the last one repeats.
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        #: The Authorization header of every request received, in order.
        self.authorizations: list[str] = []
        #: The body of every request received, in order.
        self.bodies: list[bytes] = []
        #: The prefix clients use, set once the server listens.
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record the request and give the next scripted answer."""
        self.authorizations.append(request.headers.get("Authorization", ""))
        self.bodies.append(await request.read())
        status, headers, body = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return web.Response(status=status, headers=headers, body=body)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    """Run the scripted endpoint on 127.0.0.1."""
    scripted = ScriptedServer()
    app = web.Application()
    app.router.add_get(f"{PREFIX_PATH}{REPORTS_PATH}/{{report_id}}/status", scripted.handle)
    app.router.add_post(f"{PREFIX_PATH}{REPORTS_PATH}", scripted.handle)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    scripted.base_url = str(test_server.make_url(PREFIX_PATH))
    try:
        yield scripted
    finally:
        await test_server.close()


def local_client(
    base_url: str, credentials: Credentials, sleep: Any, retry: RetryPolicy | None = None
) -> UitpasClient:
    """Return a client on a local prefix whose retries sleep through ``sleep``."""
    clock = getattr(sleep, "clock", None)
    options: dict[str, Any] = {"clock": clock} if clock else {}
    return UitpasClient(base_url, credentials, retry=retry or RetryPolicy(), sleep=sleep, **options)


def nonce_of(authorization: str) -> str:
    """Return the oauth_nonce of an Authorization header."""
    match = re.search(r'oauth_nonce="([^"]+)"', authorization)
    assert match is not None, "no oauth_nonce in the Authorization header"
    return match[1]


XML_HEADERS = {"Content-Type": XML}


async def test_every_attempt_is_signed_with_a_fresh_nonce(
    server: ScriptedServer, credentials: Credentials, fake_sleep: Any
) -> None:
    """Each attempt reaches the server with its own Authorization header and a new nonce."""
    server.script = [(503, {}, b""), (429, {}, b""), (200, XML_HEADERS, STATUS_OK)]
    await get_status(local_client(server.base_url, credentials, fake_sleep))
    assert len(server.authorizations) == 3
    assert all(h.startswith("OAuth ") for h in server.authorizations)
    assert len(set(server.authorizations)) == 3
    assert len({nonce_of(h) for h in server.authorizations}) == 3


async def test_retried_create_sends_the_same_form_signed_afresh(
    server: ScriptedServer, credentials: Credentials, fake_sleep: Any
) -> None:
    """A retried create sends the same form body, each time with a new signature."""
    server.script = [(429, {"Retry-After": "1"}, b""), (200, XML_HEADERS, CREATE_OK)]
    job = await create(local_client(server.base_url, credentials, fake_sleep))
    assert job.report_id == "19"
    assert server.bodies == [b"startDate=2014-08-01&endDate=2014-08-31"] * 2
    assert len({nonce_of(h) for h in server.authorizations}) == 2
    assert fake_sleep.delays == [1.0]


# -- cancellation ------------------------------------------------------------------------


async def test_cancel_during_the_backoff_wait_is_not_retried(
    mocked: aioresponses, credentials: Credentials
) -> None:
    """Cancelling a call while it waits to retry raises CancelledError; nothing more is sent."""
    waiting = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        """Signal the wait has begun, then wait forever."""
        waiting.set()
        await asyncio.Event().wait()

    mocked.get(STATUS_URL, status=503)
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    task = asyncio.create_task(get_status(make_client(credentials, endless_sleep)))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert request_count(mocked) == 1


async def test_cancel_during_the_request_is_not_retried(
    mocked: aioresponses, credentials: Credentials, fake_sleep: Any
) -> None:
    """Cancelling a call while its request is in flight raises CancelledError, not a retry."""
    in_flight = asyncio.Event()

    async def hang(url: Any, **kwargs: Any) -> None:
        """Signal the request is in flight, then never answer."""
        in_flight.set()
        await asyncio.Event().wait()

    mocked.get(STATUS_URL, callback=hang)
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    task = asyncio.create_task(get_status(make_client(credentials, fake_sleep)))
    await in_flight.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert request_count(mocked) == 1
    assert fake_sleep.delays == []


# -- no secret in any error ----------------------------------------------------------------


def assert_no_secret(error: BaseException, credentials: Credentials, sent: list[str]) -> None:
    """Check that no secret, signature or sent Authorization header shows in an error."""
    for text in (str(error), repr(error)):
        assert "Authorization" not in text
        assert "oauth_signature" not in text
    signatures = [re.search(r'oauth_signature="([^"]+)"', h) for h in sent]
    # The traceback too: it shows the messages of every chained (aiohttp) exception.
    for text in (str(error), repr(error), "".join(traceback.format_exception(error))):
        assert credentials.consumer_secret not in text
        assert credentials.token_secret not in text
        for header in sent:
            assert header not in text
        for match in signatures:
            assert match is not None
            assert match[1] not in text


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        ((503, {}, b""), ServerError),
        ((429, {}, b""), RateLimitedError),
        ((400, XML_HEADERS, api_error("UNKNOWN_REPORT_ID")), ApiError),
        ((401, {}, b"oauth_problem=signature_invalid"), AuthenticationError),
        ((200, XML_HEADERS, b"garbage"), MalformedResponseError),
    ],
    ids=["server-error", "rate-limited", "api-error", "authentication", "malformed"],
)
async def test_http_errors_never_show_secrets_or_the_signature(
    server: ScriptedServer,
    credentials: Credentials,
    fake_sleep: Any,
    answer: tuple[int, dict[str, str], bytes],
    error_class: type[UitpasError],
) -> None:
    """str(), repr() and the traceback of an HTTP error hold no secret and no signature."""
    server.script = [answer]
    client = local_client(server.base_url, credentials, fake_sleep, RetryPolicy(attempts=2))
    with pytest.raises(error_class) as caught:
        await get_status(client)
    assert server.authorizations
    assert_no_secret(caught.value, credentials, server.authorizations)


@pytest.fixture
async def hang_up_server() -> AsyncIterator[tuple[str, list[str]]]:
    """Run a raw server that reads a request, records its Authorization, and hangs up."""
    seen: list[str] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Record the Authorization header and close without answering."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        seen.extend(re.findall(r"(?im)^authorization: (.*?)\r$", head))
        writer.close()

    raw_server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = raw_server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{PREFIX_PATH}", seen
    finally:
        raw_server.close()
        await raw_server.wait_closed()


async def test_connection_lost_never_shows_secrets_or_the_signature(
    hang_up_server: tuple[str, list[str]], credentials: Credentials, fake_sleep: Any
) -> None:
    """A server hanging up after the signed request gives an error with no secret in it."""
    base_url, seen = hang_up_server
    client = local_client(base_url, credentials, fake_sleep, RetryPolicy(attempts=2))
    with pytest.raises(ConnectionLostError) as caught:
        await get_status(client)
    assert seen
    assert_no_secret(caught.value, credentials, seen)


async def test_connect_error_never_shows_secrets(credentials: Credentials, fake_sleep: Any) -> None:
    """A refused connection gives a ConnectError with no secret in it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}{PREFIX_PATH}"
    client = local_client(base_url, credentials, fake_sleep, RetryPolicy(attempts=2))
    with pytest.raises(ConnectError) as caught:
        await get_status(client)
    assert_no_secret(caught.value, credentials, [])


@pytest.mark.parametrize(
    ("exception", "error_class"),
    [
        (asyncio.TimeoutError(), RequestTimeoutError),
        (aiohttp.ServerDisconnectedError(), ConnectionLostError),
        (aiohttp.ClientConnectionError("lost"), TransportError),
        (connect_error(), ConnectError),
    ],
    ids=["timeout", "server-disconnected", "client-connection", "connect"],
)
async def test_transport_errors_never_show_secrets(
    mocked: aioresponses,
    credentials: Credentials,
    fake_sleep: Any,
    exception: Exception,
    error_class: type[UitpasError],
) -> None:
    """Transport faults (mocked) become errors whose text holds no secret."""
    mocked.get(STATUS_URL, exception=exception, repeat=True)
    with pytest.raises(error_class) as caught:
        await get_status(make_client(credentials, fake_sleep, RetryPolicy(attempts=2)))
    assert_no_secret(caught.value, credentials, [])


async def test_a_429_holds_back_the_clients_other_requests(
    mocked: aioresponses, credentials: Credentials
) -> None:
    """After one 429, the next request of the same client waits out Retry-After first."""
    now = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    client = UitpasClient(
        BASE_URL, credentials, retry=RetryPolicy.none(), sleep=sleep, clock=lambda: now[0]
    )
    mocked.get(STATUS_URL, status=429, headers={"Retry-After": "7"})
    mocked.get(STATUS_URL, status=200, body=STATUS_OK, content_type=XML)
    async with client:
        with pytest.raises(RateLimitedError):
            await client.get_financial_report_status("19")
        assert waits == []
        await client.get_financial_report_status("19")
    assert waits == [pytest.approx(7.0)]
    assert request_count(mocked) == 2
