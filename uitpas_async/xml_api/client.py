"""``UitpasClient``: the UiTPAS XML API as awaitable methods, signed, limited and retried.

Each call goes: build a :class:`~uitpas_async.xml_api.protocol.Request` (pure), hand
it to the engine's :class:`~uitpas_async.engine.calls.CallPipeline` (Retry-After
hold, pacing by urgency, a request slot, retries), whose every attempt is
:meth:`UitpasClient._send`: send through the transport, which signs at each
physical send (so a signature is never older than its send), and check the
answer (pure). Waiting in the pipeline happens before the attempt's timeout starts.
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
from urllib.parse import urlsplit

import aiohttp

from uitpas_async.engine.backend import ReportBackend
from uitpas_async.engine.calls import check_base_url
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
from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.single import ReportToken
from uitpas_async.engine.storage import DownloadCall, Refusal
from uitpas_async.engine.transport import StreamingResponse
from uitpas_async.xml_api import protocol
from uitpas_async.xml_api.backend import UitpasBackend
from uitpas_async.xml_api.models import (
    Credentials,
    Period,
    PriceReason,
    ReportJob,
    ReportStatus,
    UitpasPrice,
)
from uitpas_async.xml_api.signing import OAuthSigner, normalize_base_uri

__all__ = ["UitpasClient"]

log = logging.getLogger("uitpas_async")

Sleep = Callable[[float], Awaitable[None]]
USER_AGENT = "uitpas-async (+https://pypi.org/project/uitpas-async/)"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
XML_ACCEPT = "application/xml"
#: The provider a report token of this client names (as the batch backend does).
TOKEN_PROVIDER = UitpasBackend.provider


class UitpasClient(PipelineClient):
    """An asyncio client for the UiTPAS XML API, acting as one balie employee.

    Use it as an async context manager. Pass ``session`` to share an existing
    ``aiohttp.ClientSession`` (it is then not closed by the client).
    """

    _log = log
    _token_provider = TOKEN_PROVIDER

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: PollPolicy = DEFAULT_POLL,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        signer: OAuthSigner | None = None,
    ) -> None:
        # The prefix, path included; every endpoint path is appended to it.
        self.base_url = check_base_url(base_url, example=_EXAMPLE_URL)
        if not isinstance(credentials, Credentials):
            raise ConfigurationError("credentials must be a uitpas_async.Credentials")
        self._prefix_path = urlsplit(self.base_url).path
        self._credentials = credentials
        self._signer = signer or OAuthSigner(credentials)
        self._use_policies(timeouts, limits, retry, poll, sleep, clock)
        self._connect(
            session,
            user_agent=USER_AGENT,
            urgency=_URGENCY,
            renews_tokens=False,
        )
        # The OAuth base string URI of the prefix, normalised once; paths are appended.
        self._base_uri_prefix = normalize_base_uri(self.base_url).rstrip("/")

    def __repr__(self) -> str:
        return f"UitpasClient({self.base_url!r}, {self._credentials!r})"

    def report_backend(self) -> ReportBackend:
        """Return the backend through which the orchestrator drives this client."""
        return UitpasBackend(self)

    # -- the calls ------------------------------------------------------------------

    async def create_financial_report(
        self, start: date, end: date, *, balie_consumer_key: str | None = None
    ) -> ReportJob:
        """Start generating a financial report for ticket sales from ``start`` to ``end``.

        Creating is not idempotent; it is retried only when the request surely
        did not reach the server, unless ``RetryPolicy.retry_unsafe_creates``.
        """
        request = protocol.build_create_report(start, end, balie_consumer_key)
        response = await self._calls.call(self._send, request)
        job = protocol.parse_create_report(response, balie_consumer_key, self._prefix_path)
        log.debug("report %s created", job.report_id)
        return job

    async def get_financial_report_status(
        self, report_id: str, *, balie_consumer_key: str | None = None
    ) -> ReportStatus:
        """Ask whether a report has been generated; ``download_url`` is set once it has."""
        request = protocol.build_report_status(report_id, balie_consumer_key)
        response = await self._calls.call(self._send, request)
        return protocol.parse_report_status(
            response, report_id, base_url=self.base_url, balie_consumer_key=balie_consumer_key
        )

    async def download_financial_report(
        self,
        report_id: str,
        dest_dir: str | Path,
        *,
        balie_consumer_key: str | None = None,
    ) -> DownloadedReport:
        """Download a completed report into ``dest_dir`` (created if missing).

        The file is streamed to a temporary name, checked, and renamed into place
        with owner-only permissions.

        Raises:
            ReportNotReadyError: the report has not completed.
            DownloadError: truncated, not a zip, or over the size cap.
        """
        request = protocol.build_download_report(report_id, balie_consumer_key)
        fallback = protocol.report_fallback_filename(report_id)
        download = DownloadCall(request, Path(dest_dir), report_id, fallback)
        return await self._calls.call(self._send_download, download)

    async def fetch_financial_report(
        self,
        start: date,
        end: date,
        dest_dir: str | Path,
        *,
        balie_consumer_key: str | None = None,
        poll: PollPolicy | None = None,
    ) -> DownloadedReport:
        """Create a report, poll until it completes, and download it.

        Polls on the client's learned schedule (see :meth:`wait_for_financial_report`).

        Raises:
            ReportTimeoutError: not completed within the poll policy's timeout.
        """
        job = await self.create_financial_report(start, end, balie_consumer_key=balie_consumer_key)
        # The server names the balie in <resource> even when the caller did not;
        # status and download must carry it (download requires it).
        key = balie_consumer_key or job.balie_consumer_key
        await self.wait_for_financial_report(job.report_id, balie_consumer_key=key, poll=poll)
        return await self.download_financial_report(job.report_id, dest_dir, balie_consumer_key=key)

    async def start_financial_report(
        self, start: date, end: date, *, balie_consumer_key: str | None = None
    ) -> ReportToken:
        """Create a report and return a token to finish it later, in any process.

        The token (:meth:`ReportToken.to_json` for a JSON-safe text) holds the
        report id, the balie, the period and the creation time; no secret.

        Raises:
            InvalidArgumentError: the balie key is not one a token can carry.
        """
        if balie_consumer_key:
            ReportToken.check_balie(balie_consumer_key)
        job = await self.create_financial_report(start, end, balie_consumer_key=balie_consumer_key)
        key = balie_consumer_key or job.balie_consumer_key or ""
        return self._new_token(job.report_id, key, start, end)

    async def resume_financial_report(
        self, token: ReportToken | str, dest_dir: str | Path, *, poll: PollPolicy | None = None
    ) -> DownloadedReport:
        """Wait for the report a token names, from its true age, and download it.

        Raises:
            InvalidArgumentError: the token is malformed or not the XML API's.
            ReportTimeoutError: not completed within the poll policy's timeout
                (counted from the report's creation).
        """
        token, age = self._resumed(token)
        key = token.balie or None
        await self.wait_for_financial_report(
            token.report_id, balie_consumer_key=key, poll=poll, age=age
        )
        return await self.download_financial_report(
            token.report_id, dest_dir, balie_consumer_key=key
        )

    async def wait_for_financial_report(
        self,
        report_id: str,
        *,
        balie_consumer_key: str | None = None,
        poll: PollPolicy | None = None,
        age: float = 0.0,
    ) -> ReportStatus:
        """Poll a report's status until it completes, on the client's learned schedule.

        With no history the polls assume no time scale: the first after
        ``SINGLE_FIRST_POLL`` (0.12 s), each ``SINGLE_BLIND_RATIO`` (1.25) x the
        report's age at the one before (p95 lag under 25% from 0.3 s to 300 s).
        Once this client has seen ``SINGLE_MIN_HISTORY`` (three) reports (of this
        balie, or of any), a grid of ``DEFAULT_TARGET_LAG`` (9.8%) steps from below
        their early quantile (p95 lag under 10%); see ``engine.polling``.
        ``age`` is how old the report already is. The poll policy gives the
        timeout, counted from creation, and the longest interval; no sleep is
        started that would end past the deadline.

        Raises:
            ReportTimeoutError: the deadline would pass before the next poll.
        """
        return await self._await_report(
            functools.partial(
                self.get_financial_report_status, report_id, balie_consumer_key=balie_consumer_key
            ),
            _completed,
            report_id=report_id,
            balie=balie_consumer_key or "",
            policy=poll,
            age=age,
        )

    async def get_financial_report_periods(self, *, balie_consumer_key: str) -> list[Period]:
        """List the balie's past reporting periods of the last two years, newest first."""
        request = protocol.build_periods(balie_consumer_key)
        response = await self._calls.call(self._send, request)
        return protocol.parse_periods(response)

    async def get_uitpas_price(
        self,
        uitpas_number: str,
        reason: PriceReason | str,
        *,
        date_of_birth: date | None = None,
        postal_code: str | None = None,
        voucher_number: str | None = None,
        balie_consumer_key: str | None = None,
    ) -> UitpasPrice:
        """Ask the price of a UiTPAS card for a sale ``reason``."""
        request = protocol.build_price(
            uitpas_number,
            reason,
            date_of_birth=date_of_birth,
            postal_code=postal_code,
            voucher_number=voucher_number,
            balie_consumer_key=balie_consumer_key,
        )
        response = await self._calls.call(self._send, request)
        return protocol.parse_price(response)

    # -- sending -------------------------------------------------------------------

    def _prepare(
        self, request: protocol.Request
    ) -> tuple[str, dict[str, str], bytes | None, Callable[[], str]]:
        """Return a request's URL, headers, body, and the signer the transport calls at send."""
        url = protocol.join_prefix(self.base_url, request.target)
        base_uri = self._base_uri_prefix + request.path
        params = request.signed_params

        def authorize() -> str:
            return self._signer.authorization(request.method, base_uri, params)

        headers: dict[str, str] = {}
        body = None
        if request.form is not None:
            headers["Content-Type"] = FORM_CONTENT_TYPE
            body = protocol.encode_query(request.form).encode()
        return url, headers, body, authorize

    async def _send(self, request: protocol.Request, _token: str | None) -> dict[str, Any]:
        """One attempt: send (signed at the send), and check the XML answer."""
        url, headers, body, authorize = self._prepare(request)
        if request.method == "GET":
            # What culturefeed-php, the client known to work, sends on
            # status, periods and price.
            headers["Accept"] = XML_ACCEPT
        raw = await self._open().send(
            request.method,
            url,
            headers=headers,
            authorize=authorize,
            body=body,
            timeout=self.timeouts.request,
            max_body=protocol.DEFAULT_MAX_XML_BYTES,
            endpoint=request.endpoint,
        )
        log.debug("%s %s -> %d", request.method, request.endpoint, raw.status)
        return protocol.check_response(
            raw.status,
            raw.headers,
            raw.body,
            endpoint=request.endpoint,
            force_list=request.force_list,
        )

    async def _send_download(
        self, download: DownloadCall[protocol.Request], _token: str | None
    ) -> DownloadedReport:
        """One attempt of a download: stream the zip into place, or check the XML refusal."""
        request = download.request
        url, headers, _, authorize = self._prepare(request)
        check = functools.partial(protocol.check_response, endpoint=request.endpoint)
        refusal = Refusal(check, protocol.DEFAULT_MAX_XML_BYTES, _refused, _NOT_A_ZIP)
        return await self._download_report(
            download, request.method, url, headers=headers, refusal=refusal, authorize=authorize
        )


#: Order of waiting requests under a rate limit, lower first: a create that waits
#: delays a report's whole generation, a download holds a finished job, a poll
#: that waits costs least.
_URGENCY = {"report.create": 0, "report.download": 1, "report.status": 3}

_EXAMPLE_URL = "https://test.uitid.be/uitid/rest"
#: What a download answered with XML came instead of.
_NOT_A_ZIP = ": XML instead of a report"


def _completed(status: ReportStatus) -> bool:
    """Whether a status says the report is there to download."""
    return status.completed


def _refused(stream: StreamingResponse) -> bool:
    """Whether a download answer is a refusal: not 200, or XML (an error) instead of a zip."""
    return stream.status != 200 or "xml" in str(stream.headers.get("Content-Type", "")).lower()
