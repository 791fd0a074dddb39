"""One call pipeline for every provider: hold, pace, take a slot, take a fresh token, retry.

A provider's client builds requests (pure protocol), sends one of them through
the transport and checks the answer. Everything around that single attempt
lives here, once, in :class:`CallPipeline`: the ``Retry-After`` hold, pacing by
urgency, the request slots, the bearer token, and the retry loop.

Theory of operation
-------------------

A call is a request (anything with ``endpoint`` and ``idempotent``, see
:class:`CallRequest`) and a *send*: a bound method of the client that makes one
attempt, ``send(request, token)``, where ``token`` is the bearer token to
carry, or None. :meth:`CallPipeline.call` runs attempts under
:func:`~uitpas_async.engine.retry.retry_call`, and every attempt passes the same
gates, in this order::

    hold ──> client pacer ──> endpoint pacer ──> slot ──> token ──> send(request, token)

1. **hold**: after a 429 with ``Retry-After``, every request of the client
   waits until then, not only the refused one (capped at
   ``RetryPolicy.max_retry_after``).
2. **client pacer**: ``Limits.rate_limit`` requests a second across the
   client, the most urgent waiting request first (the ``urgency`` table:
   creates, then downloads, then polls). The pacers come before the slot, so
   waiting requests leave in order of urgency, not of who took a slot first.
3. **endpoint pacer**: ``per_endpoint_rate`` requests a second per endpoint,
   for servers that limit each method (Finam).
4. **slot**: at most ``Limits.max_concurrent_requests`` requests in flight.
   Waiting here is outside every timeout: the transport's starts at the send.
5. **token**: last, after every queue. A call given a
   :class:`~uitpas_async.engine.tokens.TokenManager` takes the token that is
   fresh *now*, renewing it first if it went stale while the request waited
   above, however long that was. It is the bearer version of "sign at send
   time" (OAuth 1.0a signs later still, in the transport, at each physical
   send). One renewal serves every waiter (it is single-flight).

After the attempt:

- a ``RateLimitedError`` sets the hold (step 1) before the retry loop decides;
- ``retry_call`` retries transient faults as the request's idempotence allows,
  the first attempt bare (no tenacity);
- an ``AuthenticationError`` (401) invalidates exactly the token that was sent,
  and the whole retry loop runs once more with a renewed one: a refused token
  was not acted on, so even a create may go again. A second 401 is final.

Deadlock, and why renewals take no slot: the renewal runs inside step 5, in a
request that holds a slot, while every other request with a slot may be
queued on the same renewal. So the renewal's own requests go through
:meth:`CallPipeline.renewal_call`, which passes the hold and the pacers (the
server counts them too) but takes no slot. Renewal is single-flight, so one
connection beyond the slots is enough: size the pool with
:func:`connection_pool_size`.

A provider with OAuth2 client-credentials tokens (UiTPAS API 4.0) uses it so::

    class ApiClient(HttpClientBase):
        def __init__(self, ..., limits=DEFAULT_LIMITS, retry=DEFAULT_RETRY, ...):
            self.base_url = check_base_url(base_url, example=DEFAULT_BASE_URL)
            self._http = HttpSession(
                session, pool_size=connection_pool_size(limits, renews_tokens=True), ...
            )
            self._calls = CallPipeline(
                limits=limits, retry=retry, urgency=URGENCY, sleep=sleep, clock=clock
            )
            self._tokens = TokenManager(self._renew_token, clock=clock)

        async def _renew_token(self) -> tuple[str, float]:
            answer = await self._calls.renewal_call(self._send, build_token_request(...))
            return parse_token(answer)  # (access_token, expires_in seconds)

        async def _send(self, request: ApiRequest, token: str | None) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            raw = await self._http.transport().send(..., headers=headers, authorize=None)
            return check_response(raw.status, raw.headers, raw.body, ...)

        async def get_thing(self, thing_id: str) -> Thing:
            request = build_get_thing(thing_id)
            return parse_thing(await self._calls.call(self._send, request, tokens=self._tokens))

        async def close(self) -> None:
            await self._calls.close()
            await super().close()
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from uitpas_async.engine.config import Limits, RetryPolicy
from uitpas_async.engine.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidArgumentError,
    RateLimitedError,
)
from uitpas_async.engine.pacing import PriorityPacer
from uitpas_async.engine.retry import retry_call
from uitpas_async.engine.tokens import TokenManager

__all__ = [
    "DEFAULT_URGENCY",
    "RENEWAL_CONNECTIONS",
    "CallPipeline",
    "CallRequest",
    "Send",
    "check_base_url",
    "connection_pool_size",
]

log = logging.getLogger("uitpas_async")

#: Urgency of an endpoint the table does not name: between downloads and polls.
DEFAULT_URGENCY = 2
#: Connections a client needs beyond its slots when it renews tokens: the renewal's
#: requests take no slot, and only one renewal is ever in flight.
RENEWAL_CONNECTIONS = 1

R = TypeVar("R", bound="CallRequest")
T = TypeVar("T")


class CallRequest(Protocol):
    """What the pipeline reads of a request: its name, and whether it may be sent twice."""

    @property
    def endpoint(self) -> str:
        """A short name for logs, errors, the urgency table and the per-endpoint pacers."""

    @property
    def idempotent(self) -> bool:
        """Whether sending it twice is harmless (creating a report is not)."""


#: One attempt of a request: send it, carrying the bearer token if not None, and
#: check the answer (raising the typed error of a refusal).
Send = Callable[[R, str | None], Awaitable[T]]


def check_base_url(base_url: str, *, example: str) -> str:
    """Return an API's base URL without its trailing slash.

    Raises:
        ConfigurationError: not an http(s) URL with a host, or it has a query or fragment.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError("base_url must be an http(s) URL such as " + example)
    if parts.query or parts.fragment:
        raise ConfigurationError("base_url must not have a query or fragment")
    return base_url.rstrip("/")


def connection_pool_size(limits: Limits, *, renews_tokens: bool) -> int:
    """Return the connections a client's own pool needs so no request waits for one."""
    extra = RENEWAL_CONNECTIONS if renews_tokens else 0
    return limits.max_concurrent_requests + extra


#: One call as each of its attempts needs it: the client's send, the request, where
#: its bearer token comes from (None: it carries none), and whether it takes a slot (a
#: renewal's requests do not). A plain tuple, built once per call.
_Call = tuple[Send[R, T], R, "TokenManager | None", bool]


class CallPipeline:
    """Runs one client's calls: Retry-After hold, pacing by urgency, slots, tokens, retries."""

    __slots__ = (
        "_clock",
        "_default_urgency",
        "_endpoint_pacers",
        "_pacer",
        "_paused_until",
        "_per_endpoint_rate",
        "_rate_limit",
        "_retry",
        "_sleep",
        "_slots",
        "_urgency",
    )

    def __init__(
        self,
        *,
        limits: Limits,
        retry: RetryPolicy,
        urgency: Mapping[str, int],
        default_urgency: int = DEFAULT_URGENCY,
        per_endpoint_rate: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_endpoint_rate is not None and not per_endpoint_rate > 0:
            raise InvalidArgumentError("the per-endpoint rate must be positive or None")
        #: The retry policy every call runs under.
        self._retry = retry
        #: Injected so tests and benchmarks never really wait.
        self._sleep = sleep
        self._clock = clock
        #: Urgency by endpoint name, lower first, and the urgency of the others.
        self._urgency = urgency
        self._default_urgency = default_urgency
        #: Bounds requests in flight; waiting here is outside any timeout.
        self._slots = asyncio.Semaphore(limits.max_concurrent_requests)
        #: Limits.rate_limit across the client, the most urgent waiting request first.
        self._rate_limit = limits.rate_limit
        self._pacer = (
            PriorityPacer(limits.rate_limit, clock=clock, sleep=sleep)
            if limits.rate_limit is not None
            else None
        )
        #: Requests a second per endpoint, and its pacers, made on first use.
        self._per_endpoint_rate = per_endpoint_rate
        self._endpoint_pacers: dict[str, PriorityPacer] = {}
        #: Clock reading before which no request leaves: a 429's Retry-After holds
        #: back every request of the client, not only the one refused.
        self._paused_until = -math.inf

    @property
    def request_rate(self) -> float | None:
        """Return the most requests a second one endpoint gets, or None if unlimited."""
        rates = [r for r in (self._rate_limit, self._per_endpoint_rate) if r is not None]
        return min(rates) if rates else None

    def call(
        self, send: Send[R, T], request: R, *, tokens: TokenManager | None = None
    ) -> Coroutine[Any, Any, T]:
        """Return the call to await: what ``send`` makes of the answer, after gates and retries.

        With ``tokens``, each attempt carries the token fresh at its send, and a 401
        renews it and runs the attempts once more. (A plain function that returns
        the coroutine, not a coroutine itself: one frame less on the hot path.)
        """
        if tokens is None:
            return self._run((send, request, None, True))
        return self._run_renewing_once((send, request, tokens, True))

    def renewal_call(self, send: Send[R, T], request: R) -> Coroutine[Any, Any, T]:
        """Like :meth:`call`, for a token renewal's requests: they carry no token, take no slot."""
        return self._run((send, request, None, False))

    async def _run_renewing_once(self, call: _Call[R, T]) -> T:
        tokens = call[2]
        if tokens is not None and tokens.fresh is None:
            # Renew before this call's retries, not inside each attempt: a renewal retries
            # its own requests, and retrying it again per attempt kept an unreachable API
            # silent for minutes. (A token that goes stale while queued renews in the attempt.)
            await tokens.token()
        try:
            return await self._run(call)
        except AuthenticationError as exc:
            # A refused token was not acted on, so even a create may go again.
            log.debug("%s refused the token (%s); renewing once", call[1].endpoint, exc.status)
            return await self._run(call)

    def _run(self, call: _Call[R, T]) -> Coroutine[Any, Any, T]:
        """Return ``retry_call`` itself, not a coroutine around it: one frame less per call."""
        request = call[1]
        return retry_call(
            self._attempt,
            call,
            policy=self._retry,
            idempotent=request.idempotent,
            sleep=self._sleep,
            endpoint=request.endpoint,
        )

    async def _attempt(self, call: _Call[R, T]) -> T:
        """Pass the gates in order (hold, pacers, slot, token), then send once."""
        send, request, tokens, slotted = call
        try:
            pause = self._paused_until - self._clock()
            if pause > 0:
                log.debug("holding a request %.2fs for the server's Retry-After", pause)
                await self._sleep(pause)
            if self._pacer is not None:
                urgency = self._urgency.get(request.endpoint, self._default_urgency)
                await self._pacer.acquire(urgency)
            if self._per_endpoint_rate is not None:
                await self._endpoint_pacer(request.endpoint).acquire()
            if not slotted:
                return await send(request, None)
            async with self._slots:
                if tokens is None:
                    return await send(request, None)
                # After every queue: the token this request leaves with is fresh now.
                token = tokens.fresh or await tokens.token()
                tokens.in_flight += 1
                try:
                    return await send(request, token)
                except AuthenticationError:
                    tokens.invalidate(token)
                    raise
                finally:
                    tokens.in_flight -= 1
        except RateLimitedError as exc:
            self._hold_back(exc)
            raise

    def _endpoint_pacer(self, endpoint: str) -> PriorityPacer:
        pacer = self._endpoint_pacers.get(endpoint)
        if pacer is None:
            assert self._per_endpoint_rate is not None  # only called when pacing per endpoint
            pacer = PriorityPacer(self._per_endpoint_rate, clock=self._clock, sleep=self._sleep)
            self._endpoint_pacers[endpoint] = pacer
        return pacer

    def _hold_back(self, exc: RateLimitedError) -> None:
        """Pause every request of the client for the server's Retry-After (capped)."""
        if exc.retry_after is None:
            return  # no instruction to share: each request backs off on its own
        seconds = min(exc.retry_after, self._retry.max_retry_after)
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def close(self) -> None:
        """Stop pacing; requests still waiting for a turn are cancelled."""
        for pacer in (self._pacer, *self._endpoint_pacers.values()):
            if pacer is not None:
                await pacer.close()
