"""The aiohttp routes: rate limit, OAuth check and fault injection around the API's behaviour."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from uitpas_async.sandboxkit.ratelimit import TokenBucket, format_retry_after
from uitpas_async.xml_api.sandbox.config import Endpoint, FaultRule, SandboxConfig
from uitpas_async.xml_api.sandbox.faults import FaultPlan
from uitpas_async.xml_api.sandbox.login import LoginRoutes
from uitpas_async.xml_api.sandbox.oauth import OAuthVerifier
from uitpas_async.xml_api.sandbox.state import REPORT_PATH, ZIP_TYPE, Answer, SandboxState
from uitpas_async.xml_api.sandbox.tokens import TokenRegistry
from uitpas_async.xml_api.sandbox.xmlbodies import MALFORMED_XML

__all__ = ["STATS_PATH", "SandboxApp", "format_retry_after"]

logger = logging.getLogger(__name__)

#: Unsigned control endpoint, outside the prefix, for benchmarks in another process.
STATS_PATH = "/_sandbox/stats"
_FORM_TYPE = "application/x-www-form-urlencoded"
#: Server seconds an "unavailable" or "rate_limited" fault asks for when its rule says 0.
_DEFAULT_FAULT_RETRY_AFTER = 1.0
#: What a proxy in front of the API shows when the backend breaks.
_ERROR_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n"
    "<body><h1>Internal Server Error</h1><p>The server encountered an internal error "
    "and was unable to complete your request.</p><hr><address>Apache Server</address>"
    "</body></html>\n"
)
#: A 200 "download" that is really a login or maintenance page.
_NOT_ZIP_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>UiTiD - Onderhoud</title></head>\n"
    "<body><h1>Even geduld</h1><p>UiTiD is tijdelijk niet beschikbaar.</p></body></html>\n"
)
# Kinds that replace the answer outright (possibly after the request took effect).
_REPLACING = frozenset(
    ("server_error", "bad_gateway", "unavailable", "rate_limited", "drop", "malformed_xml")
)


class SandboxApp:
    """Owns the aiohttp application and the request pipeline of every endpoint."""

    def __init__(
        self,
        config: SandboxConfig,
        state: SandboxState,
        faults: FaultPlan,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.state = state
        self.faults = faults
        self._wall_clock = wall_clock
        #: Request tokens of the login flow, and every access token the API accepts.
        self.tokens = TokenRegistry(
            config.credentials, lifetime=config.request_token_lifetime, clock=clock
        )
        self._verifier = OAuthVerifier(
            config.credentials,
            window=config.timestamp_window,
            wall_clock=wall_clock,
            tokens=self.tokens,
        )
        self._bucket = (
            TokenBucket(config.rate_limit, config.rate_burst, clock)
            if config.rate_limit is not None
            else None
        )
        # Injected 429s alternate between the two Retry-After forms of RFC 9110.
        self._http_date_next = False
        self.app = web.Application()
        base = config.prefix + REPORT_PATH
        self.app.router.add_post(base, self._route("create"))
        self.app.router.add_get(base + "/periods", self._route("periods"))
        self.app.router.add_get(base + "/{report_id}/status", self._route("status"))
        self.app.router.add_get(base + "/{report_id}/download", self._route("download"))
        self.app.router.add_get(config.prefix + "/uitpas/price", self._route("price"))
        self.app.router.add_get(STATS_PATH, self._stats)
        LoginRoutes(config, self._verifier, self.tokens, signed_uri=self._signed_uri).register(
            self.app
        )

    def _route(self, endpoint: Endpoint) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, endpoint)

        return handler

    async def _stats(self, request: web.Request) -> web.Response:
        """Return the counters and per-report timings as JSON (unsigned, outside the prefix)."""
        data = self.state.stats.as_dict()
        data["now"] = self.state.now()
        data["reports"] = self.state.report_timings()
        return web.json_response(data)

    async def _serve(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        stats = self.state.stats
        stats.requests[endpoint] += 1
        # Decoded leniently: a body that is not UTF-8 simply fails the signature check.
        body = (await request.read()).decode("utf-8", "replace")
        if self._bucket is not None:
            wait = self._bucket.take()
            if wait > 0:
                stats.rate_limited += 1
                # Never ask for less than the real wait, so obeying it is enough.
                seconds = max(wait, self.config.scaled(max(1.0, math.ceil(wait))))
                logger.debug("%s: rate limited, retry after %.3f s", endpoint, seconds)
                return web.Response(
                    status=429,
                    text="Too Many Requests\n",
                    headers={"Retry-After": format_retry_after(seconds)},
                )
        problem = self._verifier.verify(
            request.method, self._signed_uri(request), body, request.headers
        )
        if problem is not None:
            stats.auth_failures += 1
            logger.debug("%s: OAuth refused: %s", endpoint, problem)
            return web.Response(status=401, text=f"oauth_problem={problem}\n")

        params = self._params(request, body)
        report_id = request.match_info.get("report_id")
        balie = self.state.acting_balie(params, report_id)
        rule = self.faults.pick(endpoint, balie)
        if rule is None:
            return self._send(self._handle(endpoint, params, report_id), endpoint)
        stats.faults[rule.kind] += 1
        logger.debug("%s: injecting fault %s", endpoint, rule.kind)
        return await self._inject(request, rule, endpoint, params, report_id)

    @staticmethod
    def _signed_uri(request: web.Request) -> str:
        # The raw path keeps the query exactly as the client encoded and signed it.
        return f"{request.scheme}://{request.host}{request.raw_path}"

    @staticmethod
    def _params(request: web.Request, body: str) -> dict[str, str]:
        params: dict[str, str] = {}
        pairs = list(request.query.items())
        if request.content_type == _FORM_TYPE:
            pairs += parse_qsl(body, keep_blank_values=True)
        for name, value in pairs:
            params.setdefault(name, value)  # the first value wins, like a servlet's getParameter
        return params

    def _handle(
        self,
        endpoint: Endpoint,
        params: Mapping[str, str],
        report_id: str | None,
        *,
        fail: bool = False,
    ) -> Answer:
        if endpoint == "create":
            return self.state.create(params, fail=fail)
        if endpoint == "status":
            return self.state.status(report_id or "", params)
        if endpoint == "download":
            return self.state.download(report_id or "", params)
        if endpoint == "periods":
            return self.state.periods(params)
        return self.state.price(params)

    def _send(self, answer: Answer, endpoint: Endpoint | None) -> web.Response:
        if endpoint is not None and answer.ok:
            self.state.stats.successes[endpoint] += 1
        headers = {"Content-Type": answer.content_type, **dict(answer.headers)}
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    async def _inject(
        self,
        request: web.Request,
        rule: FaultRule,
        endpoint: Endpoint,
        params: Mapping[str, str],
        report_id: str | None,
    ) -> web.StreamResponse:
        kind = rule.kind
        if kind == "slow":
            await asyncio.sleep(self.config.scaled(rule.delay))
            return self._send(self._handle(endpoint, params, report_id), endpoint)
        if kind == "fail_generation":
            return self._send(self._handle(endpoint, params, report_id, fail=True), endpoint)
        if kind == "forget_report":
            if endpoint == "create":
                answer = self._handle(endpoint, params, report_id)
                if answer.ok and self.state.last_created is not None:
                    self.state.forget(self.state.last_created.id)
                return self._send(answer, endpoint)
            self.state.forget(report_id or "")
            return self._send(self._handle(endpoint, params, report_id), endpoint)
        if kind in _REPLACING:
            if rule.after_effect:
                self._handle(endpoint, params, report_id)
            return self._replacement(request, rule)
        answer = self._handle(endpoint, params, report_id)
        if kind == "not_zip":
            # Keep the download's headers: only the body betrays that this is no zip.
            html = _NOT_ZIP_PAGE.encode("utf-8")
            return self._send(Answer(200, html, ZIP_TYPE, answer.headers), None)
        return await self._truncate(request, answer)

    def _replacement(self, request: web.Request, rule: FaultRule) -> web.Response:
        kind = rule.kind
        if kind == "server_error":
            return web.Response(status=500, text=_ERROR_PAGE, content_type="text/html")
        if kind == "bad_gateway":
            return web.Response(status=502)
        if kind == "malformed_xml":
            return self._send(Answer(200, MALFORMED_XML.encode("utf-8")), None)
        if kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the closed connection
        seconds = self.config.scaled(rule.delay or _DEFAULT_FAULT_RETRY_AFTER)
        if kind == "unavailable":
            retry_after = format_retry_after(seconds)
            return web.Response(
                status=503, text="Service Unavailable\n", headers={"Retry-After": retry_after}
            )
        if self._http_date_next:
            retry_after = email.utils.formatdate(
                math.ceil(self._wall_clock() + seconds), usegmt=True
            )
        else:
            retry_after = format_retry_after(seconds)
        self._http_date_next = not self._http_date_next
        return web.Response(
            status=429, text="Too Many Requests\n", headers={"Retry-After": retry_after}
        )

    async def _truncate(self, request: web.Request, answer: Answer) -> web.StreamResponse:
        """Announce the whole body, send part of it, then close the connection."""
        headers = {"Content-Type": answer.content_type, **dict(answer.headers)}
        response = web.StreamResponse(status=answer.status, headers=headers)
        response.content_length = len(answer.body)
        await response.prepare(request)
        await response.write(answer.body[: max(1, len(answer.body) // 2)])
        if request.transport is not None:
            request.transport.close()  # close() still flushes what was written
        return response
