"""The aiohttp routes: the kit's pipeline with OAuth 1.0a, XML envelopes and this API's faults."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from uitpas_async.sandboxkit.config import SandboxSetup
from uitpas_async.sandboxkit.faults import FaultPlan
from uitpas_async.sandboxkit.pipeline import STATS_PATH, Call, RequestPipeline, Route
from uitpas_async.sandboxkit.ratelimit import format_retry_after
from uitpas_async.sandboxkit.wire import TEXT_TYPE, Answer, reason_answer
from uitpas_async.xml_api.sandbox.config import FaultRule, SandboxConfig
from uitpas_async.xml_api.sandbox.login import LoginRoutes
from uitpas_async.xml_api.sandbox.oauth import OAuthVerifier
from uitpas_async.xml_api.sandbox.state import (
    REPORT_PATH,
    XML_TYPE,
    ZIP_TYPE,
    SandboxState,
)
from uitpas_async.xml_api.sandbox.tokens import TokenRegistry
from uitpas_async.xml_api.sandbox.xmlbodies import MALFORMED_XML

__all__ = ["STATS_PATH", "SandboxApp", "format_retry_after"]

logger = logging.getLogger(__name__)

_FORM_TYPE = "application/x-www-form-urlencoded"
_HTML_TYPE = "text/html; charset=utf-8"
_UNAUTHORIZED = 401
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
#: The fixed answers of the faults that replace the API's answer outright.
_FAULT_ANSWERS: Mapping[str, Answer] = {
    "server_error": Answer(500, _ERROR_PAGE.encode("utf-8"), _HTML_TYPE),
    "bad_gateway": Answer(502, b"", None),
    "malformed_xml": Answer(200, MALFORMED_XML.encode("utf-8"), XML_TYPE),
}


class SandboxApp(RequestPipeline[FaultRule, Mapping[str, str], SandboxState]):
    """Owns the aiohttp application: the kit's request pipeline around this API's behaviour.

    A request's payload is its parameters, query and form merged.
    """

    FAULT_ANSWERS = _FAULT_ANSWERS
    # One token bucket for the whole API, whose refusals ask for whole (scaled) seconds.
    WHOLE_SECOND_RETRY_AFTER = True

    def __init__(
        self,
        setup: SandboxSetup[SandboxConfig],
        state: SandboxState,
        faults: FaultPlan[FaultRule],
    ) -> None:
        config = setup.config
        #: Request tokens of the login flow, and every access token the API accepts.
        self.tokens = TokenRegistry(
            config.credentials, lifetime=config.request_token_lifetime, clock=setup.clock
        )
        self._verifier = OAuthVerifier(
            config.credentials,
            window=config.timestamp_window,
            wall_clock=setup.wall_clock,
            tokens=self.tokens,
        )
        super().__init__(setup, state, faults)
        LoginRoutes(config, self._verifier, self.tokens, signed_uri=self._signed_uri).register(
            self.app
        )

    def routes(self) -> list[Route]:
        """Return the report, periods and price routes below the configured prefix."""
        prefix = self.state.config.prefix
        base = prefix + REPORT_PATH
        return [
            Route("POST", base, "create"),
            Route("GET", base + "/periods", "periods"),
            Route("GET", base + "/{report_id}/status", "status"),
            Route("GET", base + "/{report_id}/download", "download"),
            Route("GET", prefix + "/uitpas/price", "price"),
        ]

    def stats_data(self) -> dict[str, Any]:
        """Return the counters, the server's clock and every report's timings."""
        data = super().stats_data()
        data["reports"] = self.state.report_timings()
        return data

    def admit(self, request: web.Request, endpoint: str, body: bytes) -> Mapping[str, str] | Answer:
        """Verify the OAuth 1.0a signature and read the parameters."""
        # Decoded leniently: a body that is not UTF-8 simply fails the signature check.
        text = body.decode("utf-8", "replace")
        problem = self._verifier.verify(
            request.method, self._signed_uri(request), text, request.headers
        )
        if problem is not None:
            self.stats.auth_failures += 1
            logger.debug("%s: OAuth refused: %s", endpoint, problem)
            return Answer(_UNAUTHORIZED, f"oauth_problem={problem}\n".encode(), TEXT_TYPE)
        return self._params(request, text)

    def subject(self, call: Call[Mapping[str, str]]) -> str | None:
        """Return the balie key the request acts for."""
        return self.state.acting_balie(call.payload, call.report_id)

    def handle(self, call: Call[Mapping[str, str]], *, fail: bool = False) -> Answer:
        """Answer as the UiTPAS XML API would."""
        params, report_id = call.payload, call.report_id or ""
        if call.endpoint == "create":
            return self.state.create(params, fail=fail)
        if call.endpoint == "status":
            return self.state.status(report_id, params)
        if call.endpoint == "download":
            return self.state.download(report_id, params)
        if call.endpoint == "periods":
            return self.state.periods(params)
        return self.state.price(params)

    def forget(self, call: Call[Mapping[str, str]]) -> None:
        """Lose the report the request names, or the one a create just made."""
        if call.endpoint == self.CREATE_ENDPOINT:
            if self.state.last_created is not None:
                self.state.forget(self.state.last_created.id)
            return
        self.state.forget(call.report_id or "")

    def refusal(self, status: int) -> Answer:
        """Return a plain-text 429 or 503, as the servlet container sends them."""
        return reason_answer(status)

    def own_fault(self, rule: FaultRule, call: Call[Mapping[str, str]]) -> Answer | None:
        """Carry out "not_zip": a 200 download whose body is an HTML page."""
        if rule.kind != "not_zip":
            return None
        answer = self.handle(call)
        # Keep the download's headers: only the body betrays that this is no zip.
        return Answer(200, _NOT_ZIP_PAGE.encode("utf-8"), ZIP_TYPE, answer.headers)

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
