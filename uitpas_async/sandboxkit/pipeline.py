"""The request pipeline every sandbox runs: rate limit, admission, fault injection, counters.

Theory of operation. Every API route ends in ``RequestPipeline.serve``, which

1. counts the request under its endpoint and reads the body;
2. asks the rate limit, which may refuse with 429 and Retry-After;
3. lets the provider ``admit`` it: check its auth and read it into the
   provider's own payload, or refuse with an ``Answer`` (a 401, a 400);
4. wraps that in a ``Call`` (endpoint, payload, report id from the path) and
   asks the fault plan for a rule matching the endpoint and the call's
   ``subject``; with none, the provider's ``handle`` answers and a 200 counts
   as a success;
5. otherwise carries the fault out: ``own_fault`` first (the provider's own
   kinds), then the kit's (the ``AnywhereFaultKind`` and ``ReportFaultKind``
   ones), then the fixed answers in the provider's ``FAULT_ANSWERS``
   (``server_error``, ``bad_gateway``, a malformed body).

The kit never writes a body of its own: refusals (429 and 503) come from the
provider's ``refusal``, so each sandbox keeps its wire format (XML, gRPC-style
JSON, ``application/problem+json``). The kit only adds the Retry-After header.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import attrs
from aiohttp import web

from uitpas_async.sandboxkit.config import BaseSandboxConfig, SandboxSetup
from uitpas_async.sandboxkit.faults import BaseFaultRule, FaultPlan
from uitpas_async.sandboxkit.ratelimit import RateLimit, format_retry_after
from uitpas_async.sandboxkit.stats import RequestStats
from uitpas_async.sandboxkit.wire import Answer

__all__ = [
    "DEFAULT_FAULT_RETRY_AFTER",
    "STATS_PATH",
    "Call",
    "ProviderState",
    "RequestPipeline",
    "Route",
]

logger = logging.getLogger(__name__)

#: Unauthenticated control endpoint, outside every API path, for benchmarks in another process.
STATS_PATH = "/_sandbox/stats"
#: Server seconds an "unavailable" or "rate_limited" fault asks for when its rule says 0.
DEFAULT_FAULT_RETRY_AFTER = 1.0
_TOO_MANY_REQUESTS = 429
_UNAVAILABLE = 503
#: The status a dropped connection's response would have had; it never reaches the client.
_DROPPED = 500

#: An aiohttp route handler.
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_Rule = TypeVar("_Rule", bound=BaseFaultRule[Any])
_Payload = TypeVar("_Payload")
_State = TypeVar("_State", bound="ProviderState")


@attrs.frozen
class Route:
    """One API route: its HTTP method, its aiohttp path, and the endpoint name it counts under."""

    method: str
    path: str
    endpoint: str


@attrs.frozen
class Call(Generic[_Payload]):
    """An admitted request: its endpoint, what ``admit`` read from it, the report id in its path."""

    endpoint: str
    #: The provider's reading of the request: its parameters, its JSON body, ...
    payload: _Payload
    #: The ``{report_id}`` segment of the route's path, if it has one.
    report_id: str | None


class ProviderState(Protocol):
    """What the pipeline needs of a provider's state: the counters it keeps."""

    @property
    def stats(self) -> RequestStats:
        """Return the live counters."""
        ...


class RequestPipeline(abc.ABC, Generic[_Rule, _Payload, _State]):
    """Owns the aiohttp application and runs every API request through the shared steps.

    A provider subclasses it with its fault rule, what its ``admit`` reads from a
    request (``_Payload``) and its state, sets the class constants below that
    differ, and supplies the hooks under "what the provider supplies".
    """

    #: The endpoint whose "forget_report" loses the report the request itself made.
    CREATE_ENDPOINT: ClassVar[str] = "create"
    #: Fixed answers of the kinds that only replace the API's answer (server_error, ...).
    FAULT_ANSWERS: ClassVar[Mapping[str, Answer]] = {}
    #: True gives each endpoint a token bucket of its own; False shares one.
    RATE_LIMIT_PER_ENDPOINT: ClassVar[bool] = False
    #: True makes rate-limit refusals ask for whole (scaled) server seconds.
    WHOLE_SECOND_RETRY_AFTER: ClassVar[bool] = False

    def __init__(
        self, setup: SandboxSetup[BaseSandboxConfig], state: _State, faults: FaultPlan[_Rule]
    ) -> None:
        config = setup.config
        self.config = config
        #: The provider's state; its ``stats`` are the counters this pipeline keeps.
        self.state = state
        #: The active fault rules.
        self.faults = faults
        #: Monotonic clock (rate limit, stats) and POSIX wall clock (HTTP-date Retry-After).
        self._clock = setup.clock
        self._wall_clock = setup.wall_clock
        self._rate_limit = (
            None
            if config.rate_limit is None
            else RateLimit(
                config.rate_limit,
                config.rate_burst,
                setup.clock,
                per_endpoint=self.RATE_LIMIT_PER_ENDPOINT,
                server_second=config.scaled(1.0) if self.WHOLE_SECOND_RETRY_AFTER else None,
            )
        )
        # Injected 429s alternate between the two Retry-After forms of RFC 9110.
        self._http_date_next = False
        self.app = web.Application()
        for route in self.routes():
            self.app.router.add_route(route.method, route.path, self._handler(route.endpoint))
        self.app.router.add_get(STATS_PATH, self._stats)

    @property
    def stats(self) -> RequestStats:
        """Return the live counters."""
        return self.state.stats

    # -- what the provider supplies ---------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> Iterable[Route]:
        """Return the API's routes, each served through the pipeline."""

    @abc.abstractmethod
    def admit(self, request: web.Request, endpoint: str, body: bytes) -> _Payload | Answer:
        """Check the request's auth and read it; return the payload, or an Answer refusing it."""

    @abc.abstractmethod
    def subject(self, call: Call[_Payload]) -> str | None:
        """Return what the request acts for (a balie, an account), as fault rules match it."""

    @abc.abstractmethod
    def handle(self, call: Call[_Payload], *, fail: bool = False) -> Answer:
        """Answer the request as the API would (``fail``: the report's generation fails)."""

    @abc.abstractmethod
    def forget(self, call: Call[_Payload]) -> None:
        """Lose the report the request is about (after a create: the one it made)."""

    @abc.abstractmethod
    def refusal(self, status: int) -> Answer:
        """Return the body of a 429 or 503 in the provider's wire format (no Retry-After)."""

    def own_fault(self, rule: _Rule, call: Call[_Payload]) -> Answer | None:
        """Carry out a fault of the provider's own, or return None to leave it to the kit."""
        return None

    def stats_data(self) -> dict[str, Any]:
        """Return what ``GET /_sandbox/stats`` shows: the counters and the server's clock."""
        data = self.stats.as_dict()
        data["now"] = self._clock()
        return data

    # -- the pipeline -----------------------------------------------------------------

    def _handler(self, endpoint: str) -> _Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, endpoint)

        return handler

    async def serve(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        """Run one request through rate limit, admission and fault injection."""
        self.stats.requests[endpoint] += 1
        body = await request.read()
        if self._rate_limit is not None:
            seconds = self._rate_limit.refuse(endpoint)
            if seconds is not None:
                self.stats.rate_limited += 1
                logger.debug("%s: rate limited, retry after %.3f s", endpoint, seconds)
                return self.send(self._retry_later(_TOO_MANY_REQUESTS, format_retry_after(seconds)))
        payload = self.admit(request, endpoint, body)
        if isinstance(payload, Answer):
            return self.send(payload)
        call = Call(endpoint, payload, request.match_info.get("report_id"))
        rule = self.faults.pick(endpoint, self.subject(call))
        if rule is None:
            return self.send(self.handle(call), endpoint)
        self.stats.faults[rule.kind] += 1
        logger.debug("%s: injecting fault %s", endpoint, rule.kind)
        return await self._inject(request, rule, call)

    def send(self, answer: Answer, endpoint: str | None = None) -> web.Response:
        """Turn an Answer into a response; with ``endpoint``, a 200 counts as its success."""
        if endpoint is not None and answer.ok:
            self.stats.successes[endpoint] += 1
        return web.Response(status=answer.status, body=answer.body, headers=answer.header_map())

    async def _inject(
        self, request: web.Request, rule: _Rule, call: Call[_Payload]
    ) -> web.StreamResponse:
        own = self.own_fault(rule, call)
        if own is not None:
            return self.send(own)
        kind, endpoint = rule.kind, call.endpoint
        if kind == "slow":
            await asyncio.sleep(self.config.scaled(rule.delay))
            return self.send(self.handle(call), endpoint)
        if kind == "fail_generation":
            return self.send(self.handle(call, fail=True), endpoint)
        if kind == "forget_report":
            if endpoint == self.CREATE_ENDPOINT:
                answer = self.handle(call)
                if answer.ok:
                    self.forget(call)
                return self.send(answer, endpoint)
            self.forget(call)
            return self.send(self.handle(call), endpoint)
        if kind == "truncate":
            return await self._truncate(request, self.handle(call))
        # Every other kind replaces the answer, possibly after the request took effect.
        if rule.after_effect:
            self.handle(call)
        if kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=_DROPPED)  # never reaches the closed connection
        if kind in ("unavailable", "rate_limited"):
            return self.send(self._injected_retry_later(rule))
        fixed = self.FAULT_ANSWERS.get(kind)
        if fixed is None:
            raise LookupError(f"the sandbox has no answer for fault kind {kind!r}")
        return self.send(fixed)

    def _injected_retry_later(self, rule: _Rule) -> Answer:
        seconds = self.config.scaled(rule.delay or DEFAULT_FAULT_RETRY_AFTER)
        if rule.kind == "unavailable":
            return self._retry_later(_UNAVAILABLE, format_retry_after(seconds))
        if self._http_date_next:
            when = math.ceil(self._wall_clock() + seconds)
            retry_after = email.utils.formatdate(when, usegmt=True)
        else:
            retry_after = format_retry_after(seconds)
        self._http_date_next = not self._http_date_next
        return self._retry_later(_TOO_MANY_REQUESTS, retry_after)

    def _retry_later(self, status: int, retry_after: str) -> Answer:
        refusal = self.refusal(status)
        return attrs.evolve(refusal, headers=(*refusal.headers, ("Retry-After", retry_after)))

    @staticmethod
    async def _truncate(request: web.Request, answer: Answer) -> web.StreamResponse:
        """Announce the whole body, send part of it, then close the connection."""
        response = web.StreamResponse(status=answer.status, headers=answer.header_map())
        response.content_length = len(answer.body)
        await response.prepare(request)
        await response.write(answer.body[: max(1, len(answer.body) // 2)])
        if request.transport is not None:
            request.transport.close()  # close() still flushes what was written
        return response

    async def _stats(self, request: web.Request) -> web.Response:
        """Return ``stats_data`` as JSON (unauthenticated, outside the API's paths)."""
        return web.json_response(self.stats_data())
