"""``FinamClient``: Finam Trade API account reports as awaitable methods, and a ReportBackend.

Each call goes: build an :class:`~uitpas_async.finam.protocol.ApiRequest` (pure),
hand it to the engine's :class:`~uitpas_async.engine.calls.CallPipeline`, which per
attempt waits out a Retry-After hold, a turn client-wide and per method, and a
request slot, and only then takes the JWT fresh (renewed single-flight by the
:class:`~uitpas_async.engine.tokens.TokenManager`); then :meth:`FinamClient._send`
sends and checks the answer (pure). A 401 renews the token once and tries the
call again. The client satisfies
:class:`~uitpas_async.engine.backend.ReportBackend`, so ``ReportOrchestrator(finam, ...)``
drives it like any provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import attrs

from uitpas_async.engine.backend import JobRequest, StartedReport, expect_request
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
from uitpas_async.engine.errors import (
    ConfigurationError,
    DownloadError,
    HttpStatusError,
    InvalidArgumentError,
    ReportNotReadyError,
    UitpasError,
)
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.single import ReportToken
from uitpas_async.engine.storage import Refusal, store_or_refuse
from uitpas_async.engine.tokens import TokenManager
from uitpas_async.engine.transport import StreamingResponse, translate_errors
from uitpas_async.finam import protocol
from uitpas_async.finam.errors import FinamReportError, FinamReportNotFoundError
from uitpas_async.finam.models import (
    AccountReportInfo,
    AccountReportJob,
    AccountReportRequest,
    ReportCreationStatus,
    ReportForm,
)
from uitpas_async.finam.storage import store_file

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_NOT_FOUND_GRACE",
    "DEFAULT_RATE_PER_METHOD",
    "SECRET_VARIABLE",
    "FinamClient",
]

log = logging.getLogger("uitpas_async.finam")

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_BASE_URL = "https://api.finam.ru"
#: Environment variable holding the Finam API secret.
SECRET_VARIABLE = "FINAM_SECRET"  # noqa: S105  (a variable name, not a secret)
#: Order of waiting requests under Limits.rate_limit, lower first: sessions gate
#: every call, a create starts a report, a download holds a finished job, and a
#: status call that waits costs least.
_URGENCY = {
    "sessions.create": 0,
    "sessions.details": 0,
    "report.create": 1,
    "report.download": 2,
    "report.info": 3,
}
#: Requests per second per method: Finam allows about 200 a minute per method; 180
#: (3 a second, evenly spaced) leaves room for clock skew and the JWT renewals.
DEFAULT_RATE_PER_METHOD = 3.0
#: Seconds after our own create during which NOT_FOUND still means "not registered
#: yet": the create answers before the report service's status store has the job, so
#: an early poll can miss it. 30 s covers many polls at the default poll policy (first
#: poll after 2 s) while a report that is really gone is still noticed quickly.
DEFAULT_NOT_FOUND_GRACE = 30.0
#: Seconds a token is assumed to live when ``/v1/sessions/details`` names no expiry
#: (Finam's JWTs live about 15 minutes).
DEFAULT_TOKEN_LIFETIME = 15 * 60.0
USER_AGENT = "uitpas-async-finam"
JSON_TYPE = "application/json"


def _site(host: str) -> str:
    """Return the registrable-ish part of a host: the last two labels, or an IP as is."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host.strip("[]"))
        return host
    return ".".join(host.lower().split(".")[-2:])


class FinamClient(PipelineClient):
    """An asyncio client for Finam's account reports, and a ``ReportBackend`` (``finam``).

    Use it as an async context manager. Pass ``session`` to share an existing
    ``aiohttp.ClientSession`` (it is then not closed by the client).
    """

    #: Provider name in journal keys (and in report tokens).
    provider = "finam"
    _token_provider = provider
    _log = log

    def __init__(
        self,
        secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limits: Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        poll: PollPolicy = DEFAULT_POLL,
        rate_per_method: float | None = DEFAULT_RATE_PER_METHOD,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigurationError(f"a Finam API secret is needed (set {SECRET_VARIABLE})")
        self.base_url = check_base_url(base_url, example=DEFAULT_BASE_URL)
        if rate_per_method is not None and not rate_per_method > 0:
            raise InvalidArgumentError("rate_per_method must be positive or None")
        self._secret = secret.strip()
        self.not_found_grace = not_found_grace
        self._wall_clock = wall_clock
        # Pacing client-wide by urgency and then per method.
        self._use_policies(timeouts, limits, retry, poll, sleep, clock)
        self._connect(
            session,
            user_agent=USER_AGENT,
            urgency=_URGENCY,
            renews_tokens=True,
            per_endpoint_rate=rate_per_method,
        )
        self._tokens = TokenManager(self._renew_token, clock=clock)
        # Each report this client created or resumed: when (for the NOT_FOUND grace)
        # and for which account (its generation times are remembered per account).
        self._created: dict[str, _Created] = {}
        # Download links seen with SUCCESS, so a download needs no second info call.
        self._urls: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"FinamClient(base_url={self.base_url!r}, secret='***')"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> FinamClient:
        """Build a client with the secret from ``FINAM_SECRET``.

        Raises:
            ConfigurationError: the variable is missing or empty.
        """
        env = os.environ if environ is None else environ
        secret = env.get(SECRET_VARIABLE, "")
        if not secret.strip():
            raise ConfigurationError(
                f"missing Finam secret: set {SECRET_VARIABLE} (or use --sandbox)"
            )
        return cls(secret, **kwargs)

    @property
    def token_renewals(self) -> int:
        """Return how many times a session token was obtained."""
        return self._tokens.renewals

    # -- the calls ------------------------------------------------------------------

    async def create_account_report(
        self,
        account_id: str | int,
        start: date | datetime,
        end: date | datetime,
        form: ReportForm | str = ReportForm.LONG,
    ) -> AccountReportJob:
        """Start generating the report of ``account_id`` from ``start`` to ``end``.

        Dates are whole days (``end`` included); datetimes must be aware. Creating
        is not idempotent: it is retried only when the request surely did not reach
        the server, unless ``RetryPolicy.retry_unsafe_creates``.

        Raises:
            InvalidArgumentError: bad account id, form not SHORT/LONG, range over 92 days.
        """
        request = protocol.build_create_report(account_id, start, end, form)
        doc = await self._call(request)
        job = protocol.parse_create_report(doc, request)
        self._created[job.report_id] = _Created(self._clock(), job.account_id)
        log.debug("report %s created", job.report_id)
        return job

    async def get_account_report_info(self, report_id: str) -> AccountReportInfo:
        """Return what Finam says about a report: status, url, range, form, account."""
        request = protocol.build_report_info(report_id)
        info = protocol.parse_report_info(await self._call(request), report_id)
        if info.url is not None:
            self._urls[report_id] = info.url
        return info

    async def wait_for_account_report(
        self, report_id: str, *, poll: PollPolicy | None = None, age: float = 0.0
    ) -> AccountReportInfo:
        """Poll a report until it succeeds, on the client's learned schedule.

        The schedule is the UiTPAS clients' (``UitpasClient.wait_for_financial_report``):
        a ladder of the report's age, fine while this client has seen fewer than
        three reports, then placed by their generation times (the account's own
        once it has three, for a report this client created or resumed). ``age``
        is how old the report already is; the poll policy gives the timeout,
        counted from creation, and the longest interval.

        Raises:
            FinamReportError: status ERROR (at the poll that saw it).
            FinamReportNotFoundError: NOT_FOUND past the grace period.
            ReportTimeoutError: the deadline would pass before the next poll.
        """
        created = self._created.get(report_id)
        return await self._await_report(
            functools.partial(self.get_account_report_info, report_id),
            functools.partial(self._ready, report_id=report_id),
            report_id=report_id,
            balie=created.account if created is not None else "",
            policy=poll,
            age=age,
        )

    async def download_account_report(
        self,
        report_id: str,
        dest_dir: str | Path,
        *,
        info: AccountReportInfo | None = None,
    ) -> DownloadedReport:
        """Download a finished report into ``dest_dir``, keeping its bytes and content type.

        Without a successful ``info``, the link is taken from the last one seen or
        asked for anew.

        Raises:
            ReportNotReadyError: the report is still pending.
            FinamReportError: the report failed (status ERROR).
            DownloadError: truncated, an error answer, or cannot be written.
        """
        directory = Path(dest_dir)
        url = info.url if info is not None and info.ready else self._urls.get(report_id)
        if url is None:
            url = await self._fresh_url(report_id)
        try:
            return await self._download(url, report_id, directory)
        except HttpStatusError as exc:
            if exc.status not in (403, 404, 410) or info is not None:
                raise
            # The link may have expired since it was seen: ask for a new one, once.
            self._urls.pop(report_id, None)
            return await self._download(await self._fresh_url(report_id), report_id, directory)

    async def fetch_account_report(
        self,
        account_id: str | int,
        start: date | datetime,
        end: date | datetime,
        dest_dir: str | Path,
        form: ReportForm | str = ReportForm.LONG,
        *,
        poll: PollPolicy | None = None,
    ) -> DownloadedReport:
        """Create a report, poll on the learned schedule until it succeeds, and download it."""
        job = await self.create_account_report(account_id, start, end, form)
        info = await self.wait_for_account_report(job.report_id, poll=poll)
        return await self.download_account_report(job.report_id, dest_dir, info=info)

    async def start_account_report(
        self,
        account_id: str | int,
        start: date | datetime,
        end: date | datetime,
        form: ReportForm | str = ReportForm.LONG,
    ) -> ReportToken:
        """Create a report and return a token to finish it later, in any process.

        The token (:meth:`ReportToken.to_json` for a JSON-safe text) holds the
        report id, the account (its ``balie``), the period as whole days and the
        creation time; no secret.

        Raises:
            InvalidArgumentError: as :meth:`create_account_report`.
        """
        job = await self.create_account_report(account_id, start, end, form)
        return self._new_token(job.report_id, job.account_id, start, end)

    async def resume_account_report(
        self, token: ReportToken | str, dest_dir: str | Path, *, poll: PollPolicy | None = None
    ) -> DownloadedReport:
        """Wait for the report a token names, from its true age, and download it.

        The NOT_FOUND grace counts from the report's creation, as for a report
        this client created.

        Raises:
            InvalidArgumentError: the token is malformed or not Finam's.
            FinamReportError: status ERROR.
            FinamReportNotFoundError: NOT_FOUND past the grace period.
            ReportTimeoutError: not done within the poll policy's timeout
                (counted from the report's creation).
        """
        token, age = self._resumed(token)
        self._created.setdefault(token.report_id, _Created(self._clock() - age, token.balie))
        info = await self.wait_for_account_report(token.report_id, poll=poll, age=age)
        return await self.download_account_report(token.report_id, dest_dir, info=info)

    # -- ReportBackend -----------------------------------------------------------------

    @staticmethod
    def _request(request: JobRequest) -> AccountReportRequest:
        return expect_request(request, AccountReportRequest, "Finam")

    async def resolve_request(self, request: JobRequest) -> AccountReportRequest:
        """Return the request: its dates are settled when it is made."""
        return self._request(request)

    async def start_report(self, request: JobRequest) -> StartedReport:
        """Create the report an ``AccountReportRequest`` asks for."""
        req = self._request(request)
        job = await self.create_account_report(req.account_id, req.start, req.end, req.form)
        return StartedReport(job.report_id, req.start, req.end)

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        """Poll the report once: True on SUCCESS, False while pending."""
        self._request(request)
        return self._ready(await self.get_account_report_info(report_id), report_id)

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        """Download the report into ``dest_dir``."""
        self._request(request)
        return await self.download_account_report(report_id, dest_dir)

    def is_report_gone(self, error: UitpasError) -> bool:
        """NOT_FOUND past the grace period means Finam forgot the report."""
        return isinstance(error, FinamReportNotFoundError)

    # -- statuses ------------------------------------------------------------------

    def _ready(self, info: AccountReportInfo, report_id: str) -> bool:
        """Return whether a report is ready, or raise for ERROR and a lasting NOT_FOUND."""
        status = info.status
        if status is ReportCreationStatus.SUCCESS:
            return True
        if status is ReportCreationStatus.ERROR:
            raise FinamReportError(
                "REPORT_ERROR",
                f"Finam failed to generate report {report_id}{_describe_info(info)}",
                status=200,
                endpoint="report.info",
            )
        if status is ReportCreationStatus.NOT_FOUND:
            created = self._created.get(report_id)
            if created is not None and self._clock() - created.at < self.not_found_grace:
                log.debug("report %s: NOT_FOUND within the grace period; waiting", report_id)
                return False
            raise FinamReportNotFoundError(
                "REPORT_NOT_FOUND",
                f"Finam does not know report {report_id}",
                status=200,
                endpoint="report.info",
            )
        log.debug("report %s: %s", report_id, status.value)
        return False

    async def _fresh_url(self, report_id: str) -> str:
        info = await self.get_account_report_info(report_id)
        if not self._ready(info, report_id):
            raise ReportNotReadyError(
                "NOT_READY",
                f"report {report_id} is {info.status.value}",
                status=200,
                endpoint="report.info",
            )
        assert info.url is not None  # parse_report_info refuses SUCCESS without url
        return info.url

    # -- sending -------------------------------------------------------------------

    def _secrets(self, sent: str | None) -> tuple[str, str, str]:
        """Return what no error may show: the API secret, the token sent and the newest."""
        return (self._secret, sent or "", self._tokens.current or "")

    async def _renew_token(self) -> tuple[str, float]:
        """Trade the secret for a JWT and learn how long it lives."""
        # Renewal requests take no slot: the request that renews holds one already.
        answer = await self._calls.renewal_call(self._send, protocol.build_auth(self._secret))
        token = protocol.parse_auth(answer)
        answer = await self._calls.renewal_call(self._send, protocol.build_token_details(token))
        details = protocol.parse_token_details(answer)
        if details.expires_at is None:
            return token, DEFAULT_TOKEN_LIFETIME
        lifetime = details.expires_at.timestamp() - self._wall_clock()
        return token, max(0.0, lifetime)

    async def _call(self, request: protocol.ApiRequest) -> dict[str, Any]:
        """Send a request through the pipeline, with the JWT if it needs one; return the JSON."""
        tokens = self._tokens if request.authenticated else None
        return await self._calls.call(self._send, request, tokens=tokens)

    async def _send(self, request: protocol.ApiRequest, token: str | None) -> dict[str, Any]:
        """One attempt: send with the JWT, if any, taken fresh after every queue, and check."""
        headers = {"Accept": JSON_TYPE}
        body = request.encoded_body()
        if body is not None:
            headers["Content-Type"] = JSON_TYPE
        if token is not None:
            headers["Authorization"] = token
        raw = await self._send_once(
            request.method,
            self.base_url + request.path,
            endpoint=request.endpoint,
            headers=headers,
            body=body,
            max_body=protocol.DEFAULT_MAX_JSON_BYTES,
        )
        return protocol.check_response(
            raw.status,
            raw.headers,
            raw.body,
            endpoint=request.endpoint,
            secrets=(*self._secrets(token), *request.secrets),
        )

    def _absolute(self, url: str) -> tuple[str, bool]:
        """Return the download URL made absolute, and whether it may see the JWT.

        The JWT goes only to Finam's own site: a link to other storage (often a
        pre-signed URL) must neither learn the token nor get a header it refuses.
        """
        absolute = urljoin(self.base_url + "/", url)
        target, base = urlsplit(absolute), urlsplit(self.base_url)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise DownloadError("report.download: the report link is not an http(s) URL")
        same_site = (
            target.scheme == base.scheme
            and base.hostname is not None
            and _site(target.hostname) == _site(base.hostname)
        )
        return absolute, same_site

    @contextlib.asynccontextmanager
    async def _open_download(
        self, download: _Download, token: str | None
    ) -> AsyncIterator[StreamingResponse]:
        endpoint = download.endpoint
        if token is not None:
            async with self._stream_download(
                "GET", download.url, endpoint=endpoint, headers={"Authorization": token}
            ) as stream:
                yield stream
            return
        # Identity keeps Content-Length and the size cap about the bytes stored.
        headers = {"Accept-Encoding": "identity"}
        timeout = aiohttp.ClientTimeout(
            total=self.timeouts.download, sock_connect=self.timeouts.connect
        )
        with translate_errors(endpoint):
            response = await self._http.session.get(
                download.url, headers=headers, timeout=timeout, allow_redirects=True
            )
        try:
            log.debug("GET %s -> %d", endpoint, response.status)
            yield StreamingResponse(
                response.status, response.headers, response.content_length, response, endpoint
            )
        finally:
            response.release()

    async def _download(self, url: str, report_id: str, directory: Path) -> DownloadedReport:
        absolute, same_site = self._absolute(url)
        download = _Download(absolute, report_id, directory)
        # The JWT goes only to Finam's own site.
        return await self._calls.call(
            self._send_download, download, tokens=self._tokens if same_site else None
        )

    async def _send_download(self, download: _Download, token: str | None) -> DownloadedReport:
        """One attempt of a download: store the file, or check the error answer."""
        check = functools.partial(
            protocol.check_response, endpoint=download.endpoint, secrets=self._secrets(token)
        )
        async with self._open_download(download, token) as stream:
            return await store_or_refuse(
                stream,
                functools.partial(
                    store_file,
                    dest_dir=download.directory,
                    report_id=download.report_id,
                    max_bytes=self.limits.max_download_bytes,
                ),
                endpoint=download.endpoint,
                refusal=Refusal(check, protocol.DEFAULT_MAX_JSON_BYTES),
            )


@attrs.frozen
class _Created:
    """A report this client created or resumed: when, by its clock, and for which account."""

    at: float
    account: str


@attrs.frozen
class _Download:
    """A download call: the absolute link, the report, and where its file goes."""

    #: Hidden from repr: a link to other storage may be pre-signed.
    url: str = attrs.field(repr=False)
    report_id: str
    directory: Path
    endpoint = "report.download"
    idempotent = True


def _describe_info(info: AccountReportInfo) -> str:
    parts = []
    if info.account_id:
        parts.append(f"account {info.account_id}")
    if info.date_range is not None:
        parts.append(
            f"{info.date_range.begin.date().isoformat()}..{info.date_range.end.date().isoformat()}"
        )
    if info.report_form is not ReportForm.UNKNOWN:
        parts.append(info.report_form.name)
    return f" ({', '.join(parts)})" if parts else ""
