"""A local imitation of Finam's report REST API on loopback, for tests, the CLI and demos.

::

    async with FinamSandbox(FinamSandboxConfig(accounts=5, generation_median=0.05)) as sb:
        async with FinamClient(sb.secret, base_url=sb.base_url) as finam:
            ...

It trades the secret for JWT-like tokens that expire after ``token_lifetime``
and refuses missing, unknown or expired ones with 401; generates reports that
take a lognormal time; answers ``info`` in REST style (names, RFC 3339, int64
strings), gRPC style (numbers, ``{seconds, nanos}``, ``{"value": url}``) or
both by turns; serves each report file (a small PDF or XML, any bytes) at the
link it returns; and injects the faults that ``FinamFaultRule`` objects
describe, like the UiTPAS sandbox and deterministic from one seed.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import email.utils
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, get_args

import attrs
from aiohttp import web

from uitpas_async.engine.errors import UitpasError
from uitpas_async.finam import protocol
from uitpas_async.finam.models import ReportForm
from uitpas_async.sandboxkit.loopback import DEFAULT_HOST, LoopbackServer
from uitpas_async.sandboxkit.ratelimit import TokenBucket, format_retry_after
from uitpas_async.xml_api.sandbox.config import _check_probability, _non_negative

__all__ = [
    "FAULT_ENDPOINTS",
    "FINAM_ENDPOINTS",
    "FINAM_FAULT_KINDS",
    "SANDBOX_SECRET",
    "FinamFaultRule",
    "FinamSandbox",
    "FinamSandboxConfig",
    "FinamSandboxReport",
    "FinamSandboxStats",
]

logger = logging.getLogger(__name__)

#: Endpoints a fault rule can target ("*" targets all of them).
FinamEndpoint = Literal["auth", "details", "create", "info", "download"]
FINAM_ENDPOINTS: tuple[FinamEndpoint, ...] = get_args(FinamEndpoint)
#: Every kind of fault the Finam sandbox can inject.
FinamFaultKind = Literal[
    "server_error",
    "bad_gateway",
    "unavailable",
    "rate_limited",
    "drop",
    "truncate",
    "slow",
    "malformed_json",
    "fail_generation",
    "forget_report",
    "unauthorized",
]
FINAM_FAULT_KINDS: tuple[FinamFaultKind, ...] = get_args(FinamFaultKind)
_ALL: frozenset[str] = frozenset(FINAM_ENDPOINTS)
#: Endpoints each kind can happen on; a rule for "*" only fires where it makes sense.
FAULT_ENDPOINTS: dict[str, frozenset[str]] = {
    "server_error": _ALL,
    "bad_gateway": _ALL,
    "unavailable": _ALL,
    "rate_limited": _ALL,
    "drop": _ALL,
    "truncate": _ALL,
    "slow": _ALL,
    "malformed_json": _ALL - {"download"},
    "fail_generation": frozenset({"create"}),
    "forget_report": frozenset({"create", "info", "download"}),
    "unauthorized": _ALL - {"auth", "details"},
}
#: The one API secret the sandbox accepts; public on purpose (loopback only).
SANDBOX_SECRET = "finam-sandbox-secret-6d0c"  # noqa: S105
#: Finam's JWTs live about 15 minutes.
DEFAULT_TOKEN_LIFETIME = 15 * 60.0
DEFAULT_GENERATION_MEDIAN = 2.0
DEFAULT_ACCOUNT_COUNT = 20
#: Server seconds a "rate_limited" or "unavailable" fault asks for when its rule says 0.
_DEFAULT_FAULT_RETRY_AFTER = 1.0
FILES_PATH = "/_files"
_MALFORMED = b'{"info": {"report_id": "'
_REPLACING = frozenset(
    ("server_error", "bad_gateway", "unavailable", "rate_limited", "drop", "malformed_json")
)
JsonStyle = Literal["rest", "grpc", "mixed"]


def _check_endpoint(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value != "*" and value not in FINAM_ENDPOINTS:
        raise ValueError(f"{attribute.name} must be '*' or one of {FINAM_ENDPOINTS}")


@attrs.frozen
class FinamFaultRule:
    """Inject one kind of fault into matching requests."""

    kind: FinamFaultKind = attrs.field(validator=attrs.validators.in_(FINAM_FAULT_KINDS))
    #: Endpoint name, or "*" for every endpoint the kind makes sense on.
    endpoint: str = attrs.field(default="*", validator=_check_endpoint)
    #: Chance that a matching request gets the fault (drawn from the seeded RNG).
    probability: float = attrs.field(default=1.0, validator=_check_probability)
    #: Apply to at most this many requests; None means no limit.
    count: int | None = None
    #: Server seconds for "slow" (delay) and "unavailable"/"rate_limited" (Retry-After).
    delay: float = 0.0
    #: Only requests about this account; None means any.
    account: str | None = None
    #: On "create": True creates the report before answering with the fault.
    after_effect: bool = False


def _to_accounts(value: int | Sequence[str]) -> int | tuple[str, ...]:
    if isinstance(value, int):
        if value < 1:
            raise ValueError("accounts must be at least 1")
        return value
    accounts = tuple(str(account) for account in value)
    if not accounts:
        raise ValueError("accounts must not be empty")
    return accounts


def _to_faults(value: Iterable[FinamFaultRule]) -> tuple[FinamFaultRule, ...]:
    return tuple(value)


@attrs.frozen
class FinamSandboxConfig:
    """Everything that shapes the Finam sandbox; durations are server seconds."""

    #: How many accounts to generate, or their ids.
    accounts: int | tuple[str, ...] = attrs.field(
        default=DEFAULT_ACCOUNT_COUNT, converter=_to_accounts
    )
    generation_median: float = attrs.field(
        default=DEFAULT_GENERATION_MEDIAN, validator=_non_negative
    )
    #: Lognormal sigma of generation times; 0 makes every report take the median.
    generation_sigma: float = attrs.field(default=0.0, validator=_non_negative)
    #: Multiplies every server duration (generation, tokens, slow answers, Retry-After).
    time_scale: float = attrs.field(default=1.0, validator=_non_negative)
    seed: int = 0
    #: Seconds a JWT stays valid.
    token_lifetime: float = attrs.field(default=DEFAULT_TOKEN_LIFETIME, validator=_non_negative)
    #: Seconds after a create during which info still says NOT_FOUND (lagging status store).
    not_found_lag: float = attrs.field(default=0.0, validator=_non_negative)
    #: Requests per real second per endpoint; None disables the limit.
    rate_limit: float | None = None
    rate_burst: float = 1.0
    faults: tuple[FinamFaultRule, ...] = attrs.field(default=(), converter=_to_faults)
    secret: str = SANDBOX_SECRET
    #: How info answers are written: REST names and RFC 3339, gRPC numbers, or by turns.
    json_style: JsonStyle = attrs.field(
        default="rest", validator=attrs.validators.in_(get_args(JsonStyle))
    )

    def scaled(self, seconds: float) -> float:
        """Return ``seconds`` of server time in real seconds."""
        return seconds * self.time_scale


@attrs.define
class FinamSandboxReport:
    """A report the sandbox is generating or has generated."""

    report_id: str
    account_id: str
    begin: datetime
    end: datetime
    form: ReportForm
    #: Server monotonic clock at creation, and when generation ends.
    created_at: float
    ready_at: float
    failed: bool
    #: The file served once ready: its bytes, type and name.
    body: bytes
    content_type: str
    filename: str
    info_polls: int = 0
    downloads: int = 0


def _per_endpoint() -> dict[str, int]:
    return dict.fromkeys(FINAM_ENDPOINTS, 0)


@attrs.define
class FinamSandboxStats:
    """Counters for tests."""

    #: Requests received per endpoint, whatever became of them.
    requests: dict[str, int] = attrs.field(factory=_per_endpoint)
    #: Requests per endpoint answered with success (no fault).
    successes: dict[str, int] = attrs.field(factory=_per_endpoint)
    #: Tokens issued by ``POST /v1/sessions``.
    sessions_created: int = 0
    #: 401s for a missing, unknown or expired token, or a wrong secret.
    auth_failures: int = 0
    #: Of those, 401s for a token that had expired.
    expired_tokens: int = 0
    #: Requests that arrived carrying an expired token, counted before the rate
    #: limiter (a 429 may answer them): each time a client sent one.
    expired_token_uses: int = 0
    #: 429s from the rate limiter (injected ones count under faults).
    rate_limited: int = 0
    faults: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(FINAM_FAULT_KINDS, 0))
    reports_created: int = 0
    #: Creates for an (account, range, form) that already had a report.
    duplicate_creates: int = 0


def _grpc_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "details": []}, status=status)


def _timestamp_grpc(value: datetime) -> dict[str, int]:
    seconds = math.floor(value.timestamp())
    return {"seconds": seconds, "nanos": value.microsecond * 1000}


class FinamSandbox(LoopbackServer):
    """A running imitation of Finam's report API; use ``async with``."""

    label = "Finam sandbox"

    def __init__(
        self,
        config: FinamSandboxConfig | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.config = config if config is not None else FinamSandboxConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        # One RNG for ids, generation times, faults and content: one seed, one run.
        self._rng = random.Random(self.config.seed)
        accounts = self.config.accounts
        self.accounts: list[str] = (
            [str(10_000_000 + self._rng.randrange(90_000_000)) for _ in range(accounts)]
            if isinstance(accounts, int)
            else list(accounts)
        )
        self.stats = FinamSandboxStats()
        #: Live reports by id (forgotten ones are gone).
        self.reports: dict[str, FinamSandboxReport] = {}
        self._tokens: dict[str, float] = {}
        self._requested: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        self._rules: list[FinamFaultRule] = list(self.config.faults)
        self._fired: list[int] = [0] * len(self._rules)
        self._buckets: dict[str, TokenBucket] = {}
        self._answers = 0
        self._http_date_next = False
        self.app = web.Application()
        self.app.router.add_post("/v1/sessions", self._route("auth"))
        self.app.router.add_post("/v1/sessions/details", self._route("details"))
        self.app.router.add_post("/v1/report", self._route("create"))
        self.app.router.add_get("/v1/report/{report_id}/info", self._route("info"))
        self.app.router.add_get(FILES_PATH + "/{report_id}/{filename}", self._route("download"))

    # -- public surface ----------------------------------------------------------------

    def _application(self) -> web.Application:
        return self.app

    @property
    def base_url(self) -> str:
        """Return ``http://127.0.0.1:PORT``: Finam's REST paths start at the root."""
        return self.root_url

    @property
    def secret(self) -> str:
        """Return the API secret the sandbox accepts."""
        return self.config.secret

    def add_fault(self, rule: FinamFaultRule) -> None:
        """Add a fault rule while running; it is tried after the existing ones."""
        self._rules.append(rule)
        self._fired.append(0)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._rules.clear()
        self._fired.clear()

    def forget_report(self, report_id: str) -> bool:
        """Make the server forget a report; return whether it knew it."""
        return self.reports.pop(report_id, None) is not None

    @property
    def issued_tokens(self) -> list[str]:
        """Return every token issued so far (so a test can search output for them)."""
        return list(self._tokens)

    def expire_tokens(self) -> int:
        """Expire every token issued so far; return how many."""
        now = self._clock()
        for token in self._tokens:
            self._tokens[token] = min(self._tokens[token], now)
        return len(self._tokens)

    # -- pipeline ------------------------------------------------------------------

    def _route(self, endpoint: FinamEndpoint) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, endpoint)

        return handler

    async def _serve(self, request: web.Request, endpoint: FinamEndpoint) -> web.StreamResponse:
        self.stats.requests[endpoint] += 1
        raw = await request.read()
        if endpoint not in ("auth", "details") and self._carries_expired_token(request):
            self.stats.expired_token_uses += 1
        if self.config.rate_limit is not None:
            bucket = self._buckets.get(endpoint)
            if bucket is None:
                bucket = TokenBucket(self.config.rate_limit, self.config.rate_burst, self._clock)
                self._buckets[endpoint] = bucket
            wait = bucket.take()
            if wait > 0:
                self.stats.rate_limited += 1
                response = _grpc_error(429, 8, "too many requests")
                response.headers["Retry-After"] = format_retry_after(max(wait, 0.001))
                return response
        if endpoint not in ("auth", "details"):
            refused = self._check_token(request)
            if refused is not None:
                return refused
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _grpc_error(400, 3, "body is not JSON")
        if not isinstance(body, dict):
            return _grpc_error(400, 3, "body is not a JSON object")
        report_id = request.match_info.get("report_id")
        rule = self._pick(endpoint, self._account_of(endpoint, body, report_id))
        if rule is None:
            return self._answer(endpoint, body, report_id)
        self.stats.faults[rule.kind] += 1
        logger.debug("%s: injecting fault %s", endpoint, rule.kind)
        return await self._inject(request, rule, endpoint, body, report_id)

    def _carries_expired_token(self, request: web.Request) -> bool:
        """Return whether the request carries a token this sandbox issued and has expired."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        expiry = self._tokens.get(token)
        return expiry is not None and self._clock() >= expiry

    def _check_token(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        expiry = self._tokens.get(token)
        if expiry is None:
            self.stats.auth_failures += 1
            return _grpc_error(401, 16, "invalid or missing token")
        if self._clock() >= expiry:
            self.stats.auth_failures += 1
            self.stats.expired_tokens += 1
            return _grpc_error(401, 16, "token is expired")
        return None

    def _account_of(self, endpoint: str, body: dict[str, Any], report_id: str | None) -> str | None:
        if endpoint == "create":
            return str(body.get("account_id", ""))
        report = self.reports.get(report_id or "")
        return report.account_id if report is not None else None

    def _pick(self, endpoint: str, account: str | None) -> FinamFaultRule | None:
        """Return the first rule that fires for this request, counting it, or None."""
        for index, rule in enumerate(self._rules):
            if rule.endpoint not in ("*", endpoint) or endpoint not in FAULT_ENDPOINTS[rule.kind]:
                continue
            if rule.account is not None and rule.account != account:
                continue
            if rule.count is not None and self._fired[index] >= rule.count:
                continue
            # Draw only for real chances, so certain rules leave the RNG sequence alone.
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            self._fired[index] += 1
            return rule
        return None

    async def _inject(
        self,
        request: web.Request,
        rule: FinamFaultRule,
        endpoint: FinamEndpoint,
        body: dict[str, Any],
        report_id: str | None,
    ) -> web.StreamResponse:
        kind = rule.kind
        if kind == "slow":
            await asyncio.sleep(self.config.scaled(rule.delay))
            return self._answer(endpoint, body, report_id)
        if kind == "fail_generation":
            return self._answer(endpoint, body, report_id, fail=True)
        if kind == "unauthorized":
            self.stats.auth_failures += 1
            return _grpc_error(401, 16, "token is not valid any more")
        if kind == "forget_report":
            if endpoint == "create":
                answer = self._answer(endpoint, body, report_id)
                if answer.status == 200 and answer.body is not None:
                    created = json.loads(bytes(answer.body))  # type: ignore[arg-type]
                    self.reports.pop(created["report_id"], None)
                return answer
            self.reports.pop(report_id or "", None)
            return self._answer(endpoint, body, report_id)
        if kind in _REPLACING:
            if rule.after_effect:
                self._answer(endpoint, body, report_id)
            return self._replacement(request, rule)
        answer = self._answer(endpoint, body, report_id)
        return await self._truncate(request, answer)

    def _replacement(self, request: web.Request, rule: FinamFaultRule) -> web.Response:
        kind = rule.kind
        if kind == "server_error":
            return _grpc_error(500, 13, "internal error")
        if kind == "bad_gateway":
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>")
        if kind == "malformed_json":
            return web.Response(status=200, body=_MALFORMED, content_type="application/json")
        if kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the closed connection
        seconds = self.config.scaled(rule.delay or _DEFAULT_FAULT_RETRY_AFTER)
        if kind == "unavailable":
            return web.Response(
                status=503, text="unavailable", headers={"Retry-After": format_retry_after(seconds)}
            )
        if self._http_date_next:
            retry_after = email.utils.formatdate(
                math.ceil(self._wall_clock() + seconds), usegmt=True
            )
        else:
            retry_after = format_retry_after(seconds)
        self._http_date_next = not self._http_date_next
        return web.Response(
            status=429,
            text='{"code": 8, "message": "too many requests"}',
            content_type="application/json",
            headers={"Retry-After": retry_after},
        )

    async def _truncate(self, request: web.Request, answer: web.Response) -> web.StreamResponse:
        """Announce the whole body, send part of it, then close the connection."""
        payload = bytes(answer.body) if isinstance(answer.body, (bytes, bytearray)) else b""
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        response = web.StreamResponse(status=answer.status, headers=headers)
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload[: max(1, len(payload) // 2)])
        if request.transport is not None:
            request.transport.close()
        return response

    # -- behaviour -------------------------------------------------------------------

    def _answer(
        self,
        endpoint: FinamEndpoint,
        body: dict[str, Any],
        report_id: str | None,
        *,
        fail: bool = False,
    ) -> web.Response:
        if endpoint == "auth":
            response = self._auth(body)
        elif endpoint == "details":
            response = self._details(body)
        elif endpoint == "create":
            response = self._create(body, fail=fail)
        elif endpoint == "info":
            response = self._info(report_id or "")
        else:
            response = self._file(report_id or "")
        if response.status == 200:
            self.stats.successes[endpoint] += 1
        return response

    def _auth(self, body: dict[str, Any]) -> web.Response:
        if body.get("secret") != self.config.secret:
            self.stats.auth_failures += 1
            return _grpc_error(401, 16, "invalid secret")
        token = "sbx." + base64.urlsafe_b64encode(self._rng.randbytes(24)).decode().rstrip("=")
        self._tokens[token] = self._clock() + self.config.scaled(self.config.token_lifetime)
        self.stats.sessions_created += 1
        return web.json_response({"token": token})

    def _details(self, body: dict[str, Any]) -> web.Response:
        token = body.get("token")
        expiry = self._tokens.get(token) if isinstance(token, str) else None
        if expiry is None:
            self.stats.auth_failures += 1
            return _grpc_error(401, 16, "invalid token")
        now = self._clock()
        expires = datetime.fromtimestamp(self._wall_clock() + expiry - now, tz=timezone.utc)
        created = datetime.fromtimestamp(
            self._wall_clock() + expiry - now - self.config.scaled(self.config.token_lifetime),
            tz=timezone.utc,
        )
        return web.json_response(
            {
                "created_at": protocol.format_timestamp(created),
                "expires_at": protocol.format_timestamp(expires),
                "account_ids": list(self.accounts),
            }
        )

    def _create(self, body: dict[str, Any], *, fail: bool) -> web.Response:
        try:
            span = body["date_range"]
            begin = protocol.parse_timestamp(span["date_begin"], "date_begin")
            end = protocol.parse_timestamp(span["date_end"], "date_end")
            form = ReportForm.parse(body.get("report_form", 0))
            account = protocol.parse_int64(body.get("account_id"), "account_id")
        except (KeyError, TypeError, UitpasError) as exc:
            return _grpc_error(400, 3, f"invalid request: {type(exc).__name__}")
        if form is ReportForm.UNKNOWN:
            return _grpc_error(400, 3, "report_form is required")
        if end < begin or end - begin > protocol.MAX_RANGE:
            return _grpc_error(400, 3, "date_range must be at most 92 days")
        if account not in self.accounts:
            return _grpc_error(403, 7, f"no access to account {account}")
        key = (account, begin.isoformat(), end.isoformat(), form.name)
        if self._requested[key]:
            self.stats.duplicate_creates += 1
        self._requested[key] += 1
        report_id = "".join(self._rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(26))
        seconds = self.config.generation_median
        if self.config.generation_sigma > 0:
            seconds = self._rng.lognormvariate(
                math.log(max(seconds, 1e-9)), self.config.generation_sigma
            )
        now = self._clock()
        content_type, filename, payload = self._content(report_id, account, begin, end, form)
        self.reports[report_id] = FinamSandboxReport(
            report_id,
            account,
            begin,
            end,
            form,
            created_at=now,
            ready_at=now + self.config.scaled(seconds),
            failed=fail,
            body=payload,
            content_type=content_type,
            filename=filename,
        )
        self.stats.reports_created += 1
        return web.json_response({"report_id": report_id})

    def _content(
        self, report_id: str, account: str, begin: datetime, end: datetime, form: ReportForm
    ) -> tuple[str, str, bytes]:
        """Return a report file: a tiny PDF for LONG, XML for SHORT, both with some noise."""
        period = f"{begin.date().isoformat()}_{end.date().isoformat()}"
        noise = self._rng.randbytes(32 + self._rng.randrange(64))
        if form is ReportForm.LONG:
            text = f"Broker report {report_id} account {account} {period}"
            payload = b"%PDF-1.4\n% " + text.encode() + b"\n" + noise + b"\n%%EOF\n"
            return "application/pdf", f"report_{account}_{period}.pdf", payload
        rows = "".join(f'<trade n="{i}" v="{b}"/>' for i, b in enumerate(noise[:8]))
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<report id="{report_id}" '
            f'account="{account}" period="{period}">{rows}</report>\n'
        ).encode()
        return "application/xml", f"report_{account}_{period}.xml", payload

    def _status(self, report: FinamSandboxReport) -> str:
        now = self._clock()
        if now < report.created_at + self.config.scaled(self.config.not_found_lag):
            return "NOT_FOUND"
        if now < report.ready_at:
            halfway = report.created_at + (report.ready_at - report.created_at) / 2
            return "PENDING" if now < halfway else "IN_PROGRESS"
        return "ERROR" if report.failed else "SUCCESS"

    def _grpc_style(self) -> bool:
        style = self.config.json_style
        if style == "mixed":
            self._answers += 1
            return self._answers % 2 == 0
        return style == "grpc"

    def _info(self, report_id: str) -> web.Response:
        report = self.reports.get(report_id)
        grpc = self._grpc_style()
        statuses = ("NOT_FOUND", "PENDING", "IN_PROGRESS", "SUCCESS", "ERROR")
        if report is None:
            info: dict[str, Any] = {"report_id": report_id}
            if not grpc:
                info["status"] = "NOT_FOUND"  # gRPC JSON leaves out the 0 default
            return web.json_response({"info": info})
        report.info_polls += 1
        status = self._status(report)
        url = f"{self.base_url}{FILES_PATH}/{report.report_id}/{report.filename}"
        if grpc:
            info = {
                "report_id": report.report_id,
                "status": statuses.index(status),
                "date_range": {
                    "date_begin": _timestamp_grpc(report.begin),
                    "date_end": _timestamp_grpc(report.end),
                },
                "report_form": list(ReportForm).index(report.form),
                "account_id": int(report.account_id),
            }
            if status == "SUCCESS":
                info["url"] = {"value": url}
        else:
            info = {
                "report_id": report.report_id,
                "status": status,
                "date_range": {
                    "date_begin": protocol.format_timestamp(report.begin),
                    "date_end": protocol.format_timestamp(report.end),
                },
                "report_form": report.form.value,
                "account_id": report.account_id,
            }
            if status == "SUCCESS":
                info["url"] = url
        return web.json_response({"info": info})

    def _file(self, report_id: str) -> web.Response:
        report = self.reports.get(report_id)
        if report is None or self._status(report) != "SUCCESS":
            return _grpc_error(404, 5, "report file not found")
        report.downloads += 1
        return web.Response(
            status=200,
            body=report.body,
            headers={
                "Content-Type": report.content_type,
                "Content-Disposition": f'attachment; filename="{report.filename}"',
            },
        )

    def report_for(self, account: str) -> list[FinamSandboxReport]:
        """Return the live reports of one account."""
        return [report for report in self.reports.values() if report.account_id == account]


def default_accounts(count: int, seed: int) -> list[str]:
    """Return ``count`` account ids as a sandbox with this seed would make them."""
    rng = random.Random(seed)
    return [str(10_000_000 + rng.randrange(90_000_000)) for _ in range(count)]
