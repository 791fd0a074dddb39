"""``UitpasV4Client``: UiTPAS API 4.0's financial reports as awaitable methods.

Each call goes: build an :class:`~uitpas_async.v4.protocol.ApiRequest` (pure),
then through the engine's :class:`~uitpas_async.engine.calls.CallPipeline`
(Retry-After hold, pacing by urgency, request slots, retries), which hands each
attempt the bearer token that is fresh at its send from the shared
:class:`~uitpas_async.engine.tokens.TokenManager` (one renewal for every
waiting job; a 401 renews once and tries again). The answer is checked by the
pure protocol. Downloads stream through :func:`~uitpas_async.engine.storage.store_report`.

Secrets: the client secret, the token and the short-lived download link are
never logged, put in a message or a repr; any text taken from an answer has
them removed first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp

from uitpas_async.engine.backend import ReportBackend
from uitpas_async.engine.client import PipelineClient
from uitpas_async.engine.config import (
    DEFAULT_LIMITS,
    DEFAULT_POLL,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    Limits,
    PollPolicy,
    RetryPolicy,
    Timeouts,
)
from uitpas_async.engine.errors import InvalidArgumentError
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.single import ReportToken
from uitpas_async.engine.storage import DownloadCall, Refusal
from uitpas_async.engine.tokens import TokenManager
from uitpas_async.engine.transport import RawResponse
from uitpas_async.v4 import protocol
from uitpas_async.v4.backend import PROVIDER, UitpasV4Backend
from uitpas_async.v4.models import (
    ClientCredentials,
    DownloadLink,
    FinancialReport,
    Organizer,
    ReportPeriod,
)

__all__ = ["URGENCY", "USER_AGENT", "UitpasV4Client"]

log = logging.getLogger("uitpas_async.v4")

USER_AGENT = "uitpas-async-v4"
#: Order of waiting requests under Limits.rate_limit, lower first: a token gates
#: every call, a create starts a report, a download holds a finished job, and a
#: status call that waits costs least.
URGENCY = {
    "token": 0,
    "reports.create": 1,
    "reports.list": 1,
    "reports.download": 2,
    "reports.download_link": 2,
    "reports.periods": 2,
    "permissions": 2,
    "reports.status": 3,
}

Sleep = Callable[[float], Awaitable[None]]


class UitpasV4Client(PipelineClient):
    """An asyncio client for UiTPAS API 4.0's financial reports (OAuth2 client credentials).

    Use it as an async context manager. ``env`` is ``"test"`` or ``"prod"``;
    ``base_url`` and ``token_url`` override it (``token_url`` may be the
    authorization server's root or the full token endpoint). Pass ``session`` to
    share an ``aiohttp.ClientSession`` (it is then not closed by the client).
    ``ReportOrchestrator(client, out)`` drives it through :meth:`report_backend`.
    """

    _log = log
    _token_provider = PROVIDER

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        env: str = "test",
        base_url: str | None = None,
        token_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: PollPolicy = DEFAULT_POLL,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = date.today,
    ) -> None:
        endpoints = protocol.endpoints_for(env, base_url=base_url, token_url=token_url)
        self.base_url = endpoints.base_url
        self.token_url = endpoints.token_url
        self._credentials = credentials
        self._today = today
        self._use_policies(timeouts, limits, retry, poll, sleep, clock)
        self._connect(
            session,
            user_agent=USER_AGENT,
            urgency=URGENCY,
            renews_tokens=True,
        )
        self._tokens = TokenManager(self._renew_token, clock=clock)

    def __repr__(self) -> str:
        return f"UitpasV4Client(base_url={self.base_url!r}, credentials={self._credentials!r})"

    @property
    def token_renewals(self) -> int:
        """How many access tokens this client has obtained."""
        return self._tokens.renewals

    def report_backend(self) -> ReportBackend:
        """Return the backend that drives this client's reports (``HasReportBackend``)."""
        return UitpasV4Backend(self, today=self._today)

    # -- the calls ------------------------------------------------------------------

    async def get_permissions(self) -> list[Organizer]:
        """Return every organizer the credentials may act for, with its permissions."""
        doc = await self._call(protocol.build_permissions())
        return list(protocol.parse_permissions(doc))

    async def get_report_organizers(self) -> list[Organizer]:
        """Return the organizers whose financial reports these credentials may fetch."""
        return [organizer for organizer in await self.get_permissions() if organizer.can_report]

    async def get_financial_report_periods(self, organizer_id: str) -> list[ReportPeriod]:
        """Return the organizer's suggested report periods."""
        doc = await self._call(protocol.build_periods(organizer_id))
        return list(protocol.parse_periods(doc))

    async def create_financial_report(
        self, organizer_id: str, start: date, end: date
    ) -> FinancialReport:
        """Start the export of the organizer's report for ``start`` to ``end`` (inclusive).

        Creating is not idempotent: the client retries it only when it surely did
        not reach the server; the orchestrator adopts the report of a lost create.
        """
        request = protocol.build_create_report(organizer_id, start, end)
        report = protocol.parse_report(await self._call(request), "reports.create")
        log.debug("report %s created", report.id)
        return report

    async def get_financial_report(self, organizer_id: str, report_id: int) -> FinancialReport:
        """Return one export's status."""
        request = protocol.build_get_report(organizer_id, report_id)
        return protocol.parse_report(await self._call(request), "reports.status")

    async def list_financial_reports(self, organizer_id: str) -> list[FinancialReport]:
        """Return the organizer's earlier exports (kept for a limited time)."""
        doc = await self._call(protocol.build_list_reports(organizer_id))
        return list(protocol.parse_reports(doc))

    async def get_financial_report_download_link(
        self, organizer_id: str, report_id: int
    ) -> DownloadLink:
        """Return a short-lived link that needs no authentication (treat it as a secret)."""
        doc = await self._call(protocol.build_download_link(organizer_id, report_id))
        return protocol.parse_download_link(doc)

    async def wait_for_financial_report(
        self,
        organizer_id: str,
        report_id: int,
        *,
        poll: PollPolicy | None = None,
        age: float = 0.0,
    ) -> FinancialReport:
        """Poll an export until it is AVAILABLE, on the client's learned schedule.

        The schedule is the XML client's (``UitpasClient.wait_for_financial_report``):
        a ladder of the report's age, fine while this client has seen fewer than
        three reports, then placed by their generation times (the organizer's own
        once it has three). ``age`` is how old the report already is; the poll
        policy gives the timeout, counted from creation, and the longest interval.

        Raises:
            V4ReportFailedError: it ended FAILED (at the poll that saw it).
            ReportTimeoutError: the deadline would pass before the next poll.
        """
        return await self._await_report(
            functools.partial(self.get_financial_report, organizer_id, report_id),
            protocol.check_report,
            report_id=str(report_id),
            balie=organizer_id,
            policy=poll,
            age=age,
        )

    async def download_financial_report(
        self, organizer_id: str, report_id: int, dest_dir: str | Path
    ) -> DownloadedReport:
        """Download an AVAILABLE export into ``dest_dir`` (checked, atomic, owner-only).

        Raises:
            V4ReportInvalidStatusError: not AVAILABLE yet.
            DownloadError: truncated, not a zip, or cannot be written.
            ReportTooLargeError: over ``Limits.max_download_bytes``.
        """
        request = protocol.build_download(organizer_id, report_id)
        fallback = protocol.download_fallback_filename(organizer_id, int(report_id))
        call = DownloadCall(request, Path(dest_dir), str(int(report_id)), fallback)
        return await self._calls.call(self._send_download, call, tokens=self._tokens)

    async def fetch_financial_report(
        self,
        organizer_id: str,
        start: date,
        end: date,
        dest_dir: str | Path,
        *,
        poll: PollPolicy | None = None,
    ) -> DownloadedReport:
        """Create an export, poll on the learned schedule until it is available, and download it.

        Raises:
            V4ReportFailedError: it ended FAILED.
            ReportTimeoutError: not available before the poll policy's timeout.
        """
        report = await self.create_financial_report(organizer_id, start, end)
        protocol.check_report(report, endpoint="reports.create")
        await self.wait_for_financial_report(organizer_id, report.id, poll=poll)
        return await self.download_financial_report(organizer_id, report.id, dest_dir)

    async def start_financial_report(
        self, organizer_id: str, start: date, end: date
    ) -> ReportToken:
        """Create an export and return a token to finish it later, in any process.

        The token (:meth:`ReportToken.to_json` for a JSON-safe text) holds the
        report id, the organizer (its ``balie``), the period and the creation
        time; no secret.

        Raises:
            InvalidArgumentError: the organizer id is not one a token can carry.
            V4ReportFailedError: the export failed at once.
        """
        ReportToken.check_balie(organizer_id)
        report = await self.create_financial_report(organizer_id, start, end)
        protocol.check_report(report, endpoint="reports.create")
        return self._new_token(str(report.id), organizer_id, start, end)

    async def resume_financial_report(
        self, token: ReportToken | str, dest_dir: str | Path, *, poll: PollPolicy | None = None
    ) -> DownloadedReport:
        """Wait for the export a token names, from its true age, and download it.

        Raises:
            InvalidArgumentError: the token is malformed, not UiTPAS 4.0's, or
                names no organizer or no numeric report.
            V4ReportFailedError: it ended FAILED.
            ReportTimeoutError: not available within the poll policy's timeout
                (counted from the export's creation).
        """
        token, age = self._resumed(token)
        if not token.balie:
            raise InvalidArgumentError("report token: a UiTPAS 4.0 token names its organizer")
        report_id = int(protocol.report_id_segment(token.report_id))
        await self.wait_for_financial_report(token.balie, report_id, poll=poll, age=age)
        return await self.download_financial_report(token.balie, report_id, dest_dir)

    # -- sending -------------------------------------------------------------------

    def _secrets(self, token: str | None = None) -> tuple[str, ...]:
        current = self._tokens.current
        found = (self._credentials.client_secret, token, current)
        return tuple(secret for secret in found if secret)

    async def _call(self, request: protocol.ApiRequest) -> Any:
        return await self._calls.call(self._send, request, tokens=self._tokens)

    async def _renew_token(self) -> tuple[str, float]:
        """Get a new access token with the client credentials (no slot: see the pipeline)."""
        request = protocol.build_token_request(self._credentials)
        token = await self._calls.renewal_call(self._send_token, request)
        return token.value, token.expires_in

    async def _send_token(self, request: protocol.ApiRequest, _: str | None) -> Any:
        raw = await self._send_raw(request, self.token_url, None)
        return protocol.check_token_response(
            raw.status, raw.headers, raw.body, secrets=self._secrets()
        )

    def _headers(self, request: protocol.ApiRequest, token: str | None) -> dict[str, str]:
        headers = request.headers()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _send_raw(
        self, request: protocol.ApiRequest, url: str, token: str | None
    ) -> RawResponse:
        return await self._send_once(
            request.method,
            url,
            endpoint=request.endpoint,
            headers=self._headers(request, token),
            body=request.body(),
            max_body=request.max_bytes,
        )

    async def _send(self, request: protocol.ApiRequest, token: str | None) -> Any:
        raw = await self._send_raw(request, self.base_url + request.path, token)
        return protocol.check_response(
            raw.status,
            raw.headers,
            raw.body,
            endpoint=request.endpoint,
            secrets=self._secrets(token),
            max_bytes=request.max_bytes,
        )

    async def _send_download(
        self, call: DownloadCall[protocol.ApiRequest], token: str | None
    ) -> DownloadedReport:
        request = call.request
        check = functools.partial(
            protocol.check_response, endpoint=request.endpoint, secrets=self._secrets(token)
        )
        return await self._download_report(
            call,
            request.method,
            self.base_url + request.path,
            headers=self._headers(request, token),
            refusal=Refusal(check, protocol.DEFAULT_MAX_JSON_BYTES),
        )
