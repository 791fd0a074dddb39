"""What every provider's client is built of: policies, injected clocks, a session, a pipeline.

:class:`PipelineClient` wires one :class:`~uitpas_async.engine.transport.HttpSession`
and one :class:`~uitpas_async.engine.calls.CallPipeline` from the policies a client
takes, closes both, and gives each attempt its one physical send (a capped
answer under the request timeout) or its download stream (under the download
timeout), logged by status and never by URL (a link may be pre-signed).

It also holds what every provider's single report needs (``engine.single``): the
client's :class:`~uitpas_async.engine.single.GenerationMemory`, the wait on the
learned schedule that feeds it, and the making and reading of report tokens.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar

import aiohttp

from uitpas_async.engine.calls import CallPipeline, connection_pool_size
from uitpas_async.engine.config import Limits, PollPolicy, RetryPolicy, Timeouts
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.single import GenerationMemory, ReportToken, accept_token, wait_until_ready
from uitpas_async.engine.storage import DownloadCall, Refusal, store_or_refuse, store_report
from uitpas_async.engine.transport import (
    Authorize,
    HttpClientBase,
    HttpSession,
    RawResponse,
    StreamingResponse,
)

__all__ = ["PipelineClient"]

Sleep = Callable[[float], Awaitable[None]]
_Answer = TypeVar("_Answer")


class PipelineClient(HttpClientBase):
    """A client over one HTTP session and one call pipeline; providers subclass it."""

    #: The provider's logger; a subclass names its own.
    _log = logging.getLogger("uitpas_async")
    #: The provider its report tokens name, as its batch backend does; a subclass sets it.
    _token_provider: ClassVar[str]
    #: POSIX seconds, for a token's creation time (a client may inject its own); a
    #: builtin, so it is not bound as a method.
    _wall_clock: Callable[[], float] = time.time

    timeouts: Timeouts
    limits: Limits
    retry_policy: RetryPolicy
    poll_policy: PollPolicy
    _sleep: Sleep
    _clock: Callable[[], float]
    _calls: CallPipeline
    _generation_memory: GenerationMemory
    _rng: random.Random

    def _use_policies(
        self,
        timeouts: Timeouts,
        limits: Limits,
        retry: RetryPolicy,
        poll: PollPolicy,
        sleep: Sleep,
        clock: Callable[[], float],
    ) -> None:
        """Keep the policies and the clocks, in the order of every client's constructor."""
        self.timeouts = timeouts
        self.limits = limits
        self.retry_policy = retry
        self.poll_policy = poll
        # Injected so tests and benchmarks never really wait.
        self._sleep = sleep
        self._clock = clock
        #: Generation times of this client's earlier reports, for the next one's schedule.
        self._generation_memory = GenerationMemory()
        #: The phase of each single report's poll ladder.
        self._rng = random.Random()

    def _connect(
        self,
        session: aiohttp.ClientSession | None,
        *,
        user_agent: str,
        urgency: Mapping[str, int],
        renews_tokens: bool,
        per_endpoint_rate: float | None = None,
    ) -> None:
        """Build the HTTP session and the call pipeline from the policies kept."""
        self._http = HttpSession(
            session,
            pool_size=connection_pool_size(self.limits, renews_tokens=renews_tokens),
            connect_timeout=self.timeouts.connect,
            user_agent=user_agent,
        )
        # Hold, pacing by urgency (and per endpoint, if given), slots and retries.
        self._calls = CallPipeline(
            limits=self.limits,
            retry=self.retry_policy,
            urgency=urgency,
            per_endpoint_rate=per_endpoint_rate,
            sleep=self._sleep,
            clock=self._clock,
        )

    async def close(self) -> None:
        """Stop pacing and close the HTTP session if the client created it."""
        await self._calls.close()
        await super().close()

    @property
    def request_rate(self) -> float | None:
        """The most requests a second this client sends (its rate limits), or None."""
        return self._calls.request_rate

    # -- single reports ------------------------------------------------------------

    def _new_token(
        self, report_id: str, balie: str, start: date | datetime, end: date | datetime
    ) -> ReportToken:
        """Return the token of a report this client just created (the period as whole days)."""
        days = [value.date() if isinstance(value, datetime) else value for value in (start, end)]
        return ReportToken(
            self._token_provider, report_id, balie, days[0], days[1], self._wall_clock()
        )

    def _resumed(self, token: ReportToken | str) -> tuple[ReportToken, float]:
        """Return a token of this client's provider and the report's age now.

        Raises:
            InvalidArgumentError: the token is malformed, or another provider's.
        """
        accepted = accept_token(token, self._token_provider)
        return accepted, accepted.age(self._wall_clock())

    async def _await_report(
        self,
        poll: Callable[[], Awaitable[_Answer]],
        ready: Callable[[_Answer], bool],
        *,
        report_id: str,
        balie: str,
        policy: PollPolicy | None,
        age: float,
    ) -> _Answer:
        """Poll a report on the learned schedule until ``ready``; remember how long it took.

        ``ready`` may raise for a report that failed: that error ends the wait at
        once. The history is the balie's own times once it has enough, else every
        balie's; the policy (the client's if None) gives the timeout and the
        longest interval.

        Raises:
            ReportTimeoutError: the deadline would pass before the next poll.
        """
        found: list[_Answer] = []

        async def check() -> bool:
            answer = await poll()
            if not ready(answer):
                return False
            found.append(answer)
            return True

        seconds = await wait_until_ready(
            check,
            report_id=report_id,
            history=self._generation_memory.times(balie),
            policy=policy or self.poll_policy,
            age=age,
            clock=self._clock,
            sleep=self._sleep,
            rng=self._rng,
        )
        self._generation_memory.record(balie, seconds)
        return found[0]

    # -- sending -------------------------------------------------------------------

    async def _send_once(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        headers: dict[str, str],
        body: bytes | None,
        max_body: int,
        authorize: Authorize | None = None,
    ) -> RawResponse:
        """Send one request under the request timeout; return its capped answer."""
        raw = await self._open().send(
            method,
            url,
            headers=headers,
            authorize=authorize,
            body=body,
            timeout=self.timeouts.request,
            max_body=max_body,
            endpoint=endpoint,
        )
        self._log.debug("%s %s -> %d", method, endpoint, raw.status)
        return raw

    @contextlib.asynccontextmanager
    async def _stream_download(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        headers: dict[str, str],
        authorize: Authorize | None = None,
    ) -> AsyncIterator[StreamingResponse]:
        """Open a download under the download timeout, asking for the bytes as stored."""
        # Reports are zips or files already; identity keeps Content-Length and the
        # size cap about the bytes actually stored.
        headers = {**headers, "Accept-Encoding": "identity"}
        async with self._open().stream(
            method,
            url,
            headers=headers,
            authorize=authorize,
            timeout=self.timeouts.download,
            endpoint=endpoint,
        ) as stream:
            self._log.debug("%s %s -> %d", method, endpoint, stream.status)
            yield stream

    async def _download_report(
        self,
        call: DownloadCall[Any],
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        refusal: Refusal,
        authorize: Authorize | None = None,
    ) -> DownloadedReport:
        """One download attempt: stream a zip report into place, or raise for a refusal."""
        async with self._stream_download(
            method, url, endpoint=call.endpoint, headers=headers, authorize=authorize
        ) as stream:
            store = functools.partial(
                store_report,
                dest_dir=call.directory,
                report_id=call.report_id,
                max_bytes=self.limits.max_download_bytes,
                fallback_filename=call.fallback_filename,
            )
            return await store_or_refuse(stream, store, endpoint=call.endpoint, refusal=refusal)
