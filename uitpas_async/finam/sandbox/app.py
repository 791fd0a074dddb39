"""The aiohttp routes: the kit's pipeline with bearer tokens, gRPC-style errors and own faults."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from uitpas_async.finam.sandbox.config import FinamFaultRule
from uitpas_async.finam.sandbox.state import (
    FILES_PATH,
    GRPC_INTERNAL,
    GRPC_INVALID_ARGUMENT,
    GRPC_RESOURCE_EXHAUSTED,
    GRPC_UNAUTHENTICATED,
    FinamState,
    grpc_error,
)
from uitpas_async.sandboxkit.pipeline import Call, RequestPipeline, Route
from uitpas_async.sandboxkit.wire import TEXT_TYPE, Answer, bearer_token, json_object

__all__ = ["FinamApp"]

logger = logging.getLogger(__name__)

#: Endpoints that take no token: they are how a client gets and checks one.
_TOKENLESS = frozenset(("auth", "details"))
_TOO_MANY_REQUESTS = 429
#: The fixed answers of the faults that replace the API's answer outright.
_FAULT_ANSWERS: Mapping[str, Answer] = {
    "server_error": grpc_error(500, GRPC_INTERNAL, "internal error"),
    "bad_gateway": Answer(502, b"<html><body>502 Bad Gateway</body></html>", TEXT_TYPE),
    "malformed_json": Answer(200, b'{"info": {"report_id": "', "application/json"),
}


class FinamApp(RequestPipeline[FinamFaultRule, Mapping[str, Any], FinamState]):
    """Owns the aiohttp application: the kit's request pipeline around Finam's behaviour.

    A request's payload is its JSON body (``{}`` when it has none).
    """

    FAULT_ANSWERS = _FAULT_ANSWERS
    # A token bucket per endpoint, whose refusals ask for exactly the wait.
    RATE_LIMIT_PER_ENDPOINT = True

    def routes(self) -> list[Route]:
        """Return the sessions and report routes, and where report files are served."""
        return [
            Route("POST", "/v1/sessions", "auth"),
            Route("POST", "/v1/sessions/details", "details"),
            Route("POST", "/v1/report", "create"),
            Route("GET", "/v1/report/{report_id}/info", "info"),
            Route("GET", FILES_PATH + "/{report_id}/{filename}", "download"),
        ]

    async def serve(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        """Note a use of an expired token first: the rate limiter may refuse the request."""
        if endpoint not in _TOKENLESS:
            self.state.note_token_use(bearer_token(request.headers))
        return await super().serve(request, endpoint)

    def admit(self, request: web.Request, endpoint: str, body: bytes) -> Mapping[str, Any] | Answer:
        """Check the bearer token (where one is due) and read the JSON body."""
        if endpoint not in _TOKENLESS:
            refused = self.state.check_token(bearer_token(request.headers))
            if refused is not None:
                logger.debug("%s: token refused", endpoint)
                return refused
        parsed = json_object(body)
        if isinstance(parsed, str):
            return grpc_error(400, GRPC_INVALID_ARGUMENT, parsed)
        return parsed

    def subject(self, call: Call[Mapping[str, Any]]) -> str | None:
        """Return the account the request is about."""
        return self.state.account_of(call.endpoint, call.payload, call.report_id)

    def handle(self, call: Call[Mapping[str, Any]], *, fail: bool = False) -> Answer:
        """Answer as Finam's REST API would."""
        if call.endpoint == "auth":
            return self.state.auth(call.payload)
        if call.endpoint == "details":
            return self.state.details(call.payload)
        if call.endpoint == "create":
            return self.state.create(call.payload, fail=fail)
        if call.endpoint == "info":
            return self.state.info(call.report_id or "")
        return self.state.file(call.report_id or "")

    def forget(self, call: Call[Mapping[str, Any]]) -> None:
        """Lose the report the request names, or the one a create just made."""
        creating = call.endpoint == self.CREATE_ENDPOINT
        self.state.forget((self.state.last_created if creating else call.report_id) or "")

    def refusal(self, status: int) -> Answer:
        """Return a gRPC-style 429, or the gateway's plain 503."""
        if status == _TOO_MANY_REQUESTS:
            return grpc_error(status, GRPC_RESOURCE_EXHAUSTED, "too many requests")
        return Answer(status, b"unavailable", TEXT_TYPE)

    def own_fault(self, rule: FinamFaultRule, call: Call[Mapping[str, Any]]) -> Answer | None:
        """Carry out "unauthorized": a valid token refused as if it had been revoked."""
        if rule.kind != "unauthorized":
            return None
        self.stats.auth_failures += 1
        return grpc_error(401, GRPC_UNAUTHENTICATED, "token is not valid any more")
