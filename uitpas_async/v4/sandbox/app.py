"""The 4.0 sandbox's routes on the kit's request pipeline: tokens, permissions, six report calls.

Answers follow publiq's OpenAPI document (``Report``, ``ReportPeriod``,
``OrganizerPermissions``, the download-link object, RFC 7807 problems), and the
tests validate them against its vendored schemas. The token endpoint answers
as Keycloak does (``{"error", "error_description"}``).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qs

import attrs
from aiohttp import web

from uitpas_async.sandboxkit.config import SandboxSetup
from uitpas_async.sandboxkit.faults import FaultPlan
from uitpas_async.sandboxkit.pipeline import Call, RequestPipeline, Route
from uitpas_async.sandboxkit.report_content import generate_sheets, report_zip
from uitpas_async.sandboxkit.stats import RequestStats, report_timing
from uitpas_async.sandboxkit.wire import Answer, bearer_token, json_answer, json_object
from uitpas_async.v4.errors import (
    FORBIDDEN_TYPE,
    ORGANIZER_NOT_FOUND_TYPE,
    PROBLEM_BASE,
    RATE_LIMITED_TYPE,
    REPORT_INVALID_STATUS_TYPE,
    REPORT_NOT_FOUND_TYPE,
    UNAUTHORIZED_TYPE,
)
from uitpas_async.v4.models import REPORTS_PERMISSION
from uitpas_async.v4.protocol import TOKEN_PATH
from uitpas_async.v4.sandbox.config import (
    ENDPOINTS,
    FAULT_KINDS,
    FAULT_WHERE,
    V4FaultRule,
    V4SandboxConfig,
)

__all__ = ["REPORTS_BASE", "V4Pipeline", "V4State", "V4Stats"]

REPORTS_BASE = "/organizers/{organizer}/financial-reports"
PROBLEM_TYPE = "application/problem+json"
ZIP_TYPE = "application/x-zip-compressed"
#: The message of a report without discounts, as the real API words it.
EMPTY_MESSAGE = (
    "Geen financieel overzicht beschikbaar voor periode {start:%Y/%m/%d} - {end:%Y/%m/%d}"
)
_BELGIAN_OFFSET = timezone(timedelta(hours=2))
#: Suggested periods: this many completed quarters, and the one in progress.
_QUARTERS = 4


@attrs.define
class V4Stats(RequestStats):
    """The kit's counters, plus the 4.0 sandbox's own."""

    ENDPOINTS = ENDPOINTS
    FAULT_KINDS = FAULT_KINDS

    #: Access tokens issued.
    tokens_issued: int = 0
    #: Reports created per ``organizer|start|end``: exactly one each is the goal.
    created_per_period: dict[str, int] = attrs.Factory(dict)


@attrs.define
class V4State:
    """What the pipeline needs of the state: the counters."""

    stats: V4Stats = attrs.Factory(V4Stats)


@attrs.define
class _Report:
    """One report export on the server."""

    id: int
    organizer: str
    start: date
    end: date
    created: datetime
    #: Monotonic clock reading from which it is no longer STARTED.
    ready_at: float
    failed: bool
    forgotten: bool = False
    #: Monotonic clock reading at creation (``ready_at`` minus the generation time).
    created_at: float = 0.0
    status_polls: int = 0
    #: Monotonic clock reading of the first status answer that said AVAILABLE.
    completed_seen_at: float | None = None

    def timing(self) -> dict[str, Any]:
        """Return this report's record as JSON-ready data (what benchmarks read)."""
        return report_timing(self, self.organizer)


@attrs.define
class _Context:
    """What ``admit`` makes of a request."""

    organizer: str | None = None
    report_id: int | None = None
    body: dict[str, Any] | None = None
    token: str = ""
    #: The report a create made (so "forget_report" can lose it).
    created: int | None = None


def _problem(problem_type: str, title: str, status: int, detail: str | None = None) -> Answer:
    doc: dict[str, Any] = {"type": problem_type, "title": title, "status": status}
    if detail:
        doc["detail"] = detail
    answer = json_answer(doc, status)
    return attrs.evolve(answer, content_type=PROBLEM_TYPE)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def suggested_periods(today: date) -> list[tuple[date, date]]:
    """Return the quarter in progress and the completed ones before it, newest first."""
    periods = []
    start = _quarter_start(today)
    for _ in range(_QUARTERS + 1):
        periods.append((start, _quarter_end(start)))
        start = _quarter_start(start - timedelta(days=1))
    return periods


def _quarter_end(start: date) -> date:
    month = start.month + 3
    year = start.year + (month - 1) // 12
    return date(year, (month - 1) % 12 + 1, 1) - timedelta(days=1)


class V4Pipeline(RequestPipeline[V4FaultRule, _Context, V4State]):
    """The 4.0 API on the kit's pipeline: state, routes and the provider hooks."""

    FAULT_ANSWERS: ClassVar[Mapping[str, Answer]] = {
        "server_error": _problem("about:blank", "Internal Server Error", 500),
        "bad_gateway": Answer(502, b"", None),
        "malformed_json": Answer(200, b'{"status": "STAR', "application/json"),
        "not_zip": Answer(200, b"<html>not a zip</html>", ZIP_TYPE),
    }

    def __init__(
        self, setup: SandboxSetup[V4SandboxConfig], *, root_url: Callable[[], str]
    ) -> None:
        config = setup.config
        self._rng: random.Random = setup.rng
        state = V4State()
        super().__init__(setup, state, FaultPlan(config.faults, self._rng, where=FAULT_WHERE))
        self.v4_config = config
        self.v4_stats = state.stats
        #: Returns the server's root URL (known once it listens), for download links.
        self._root_url = root_url
        self._ids = itertools.count(100_000 + self._rng.randrange(100_000))
        #: Access token -> monotonic clock reading at which it expires.
        self.tokens: dict[str, float] = {}
        self.reports: dict[int, _Report] = {}
        #: One-off download keys -> report id (the short-lived links).
        self.links: dict[str, int] = {}
        self._granted = set(config.organizer_ids())
        self._known = self._granted | set(config.without_reports)
        self.app.router.add_get("/_links/{key}/report.zip", self._follow_link)

    def routes(self) -> list[Route]:
        """Return the token endpoint, /permissions and the six report routes."""
        report = REPORTS_BASE + r"/{report_id:\d+}"
        return [
            Route("POST", TOKEN_PATH, "token"),
            Route("GET", "/permissions", "permissions"),
            Route("GET", REPORTS_BASE + "/periods", "periods"),
            Route("POST", REPORTS_BASE, "create"),
            Route("GET", REPORTS_BASE, "list"),
            Route("GET", report, "status"),
            Route("GET", report + "/download-link", "download_link"),
            Route("GET", report + ".zip", "download"),
        ]

    # -- control ------------------------------------------------------------------------

    def stats_data(self) -> dict[str, Any]:
        """Return the counters, the server's clock and every report's timings."""
        data = super().stats_data()
        data["reports"] = {str(report.id): report.timing() for report in self.reports.values()}
        return data

    def expire_tokens(self) -> None:
        """Make every issued token expired now (a batch then meets a 401 and renews)."""
        for token in self.tokens:
            self.tokens[token] = -1.0

    @property
    def created(self) -> Counter[str]:
        """Reports created per ``organizer|start|end``."""
        return Counter(self.v4_stats.created_per_period)

    # -- hooks --------------------------------------------------------------------------

    def refusal(self, status: int) -> Answer:
        """A 429 is a rate-limited problem; a 503 is the proxy's plain page."""
        if status == 429:
            return _problem(RATE_LIMITED_TYPE, "Rate limited", 429)
        return Answer(status, b"Service Unavailable\n", "text/plain; charset=utf-8")

    def subject(self, call: Call[_Context]) -> str | None:
        """Faults match the organizer."""
        return call.payload.organizer

    def admit(self, request: web.Request, endpoint: str, body: bytes) -> _Context | Answer:
        """Check the token (or the client credentials), the organizer and its permission."""
        if endpoint == "token":
            return self._admit_token(body)
        token = bearer_token(request.headers)
        expires = self.tokens.get(token)
        if expires is None or self._clock() >= expires:
            self.stats.auth_failures += 1
            return _problem(
                UNAUTHORIZED_TYPE, "Unauthorized", 401, "the token is invalid or expired"
            )
        context = _Context(token=token)
        organizer = request.match_info.get("organizer")
        if organizer is not None:
            if organizer not in self._known:
                return _problem(ORGANIZER_NOT_FOUND_TYPE, "Organizer not found", 404)
            if organizer not in self._granted:
                return _problem(
                    FORBIDDEN_TYPE,
                    "Forbidden",
                    403,
                    f"client lacks {REPORTS_PERMISSION} for organizer {organizer}",
                )
            context.organizer = organizer
        report = request.match_info.get("report_id")
        if report is not None:
            context.report_id = int(report)
        if endpoint == "create":
            parsed = json_object(body)
            if isinstance(parsed, str):
                return _problem(
                    PROBLEM_BASE + "body/invalid-syntax", "Invalid body syntax", 400, parsed
                )
            context.body = parsed
        return context

    def _admit_token(self, body: bytes) -> _Context | Answer:
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return json_answer({"error": "unsupported_grant_type"}, 400)
        config = self.v4_config
        if (
            form.get("client_id") != config.client_id
            or form.get("client_secret") != config.client_secret
        ):
            self.stats.auth_failures += 1
            return json_answer(
                {"error": "invalid_client", "error_description": "Invalid client credentials"}, 401
            )
        return _Context()

    def handle(self, call: Call[_Context], *, fail: bool = False) -> Answer:
        """Answer as the API would."""
        endpoint, context = call.endpoint, call.payload
        if endpoint == "token":
            return self._issue_token()
        if endpoint == "permissions":
            return json_answer(self._permissions())
        if endpoint == "periods":
            today = datetime.fromtimestamp(self._wall_clock(), timezone.utc).date()
            return json_answer(
                [
                    {"startDate": s.isoformat(), "endDate": e.isoformat()}
                    for s, e in suggested_periods(today)
                ]
            )
        assert context.organizer is not None
        if endpoint == "create":
            return self._create(context, fail)
        if endpoint == "list":
            reports = [
                self._report_json(report, with_period=True)
                for report in self.reports.values()
                if report.organizer == context.organizer and not report.forgotten
            ]
            return json_answer(reports)
        report = self._find(context)
        if report is None:
            return _problem(REPORT_NOT_FOUND_TYPE, "Report not found", 404)
        if endpoint == "status":
            report.status_polls += 1
            if report.completed_seen_at is None and self._status(report) == "AVAILABLE":
                report.completed_seen_at = self._clock()
            return json_answer(self._report_json(report, with_period=False))
        if self._status(report) != "AVAILABLE":
            return _problem(
                REPORT_INVALID_STATUS_TYPE,
                "Invalid report status",
                400,
                "the report is not available",
            )
        if endpoint == "download_link":
            key = secrets.token_hex(16)
            self.links[key] = report.id
            digest = hashlib.sha256(key.encode()).hexdigest()
            query = f"ts={int(self._wall_clock())}&hash={digest}"
            link = f"{self._root_url()}/_links/{key}/report.zip?{query}"
            return json_answer({"downloadLink": link})
        return self._zip(report)

    def forget(self, call: Call[_Context]) -> None:
        """Lose the report the request is about (after a create: the one it made)."""
        endpoint, context = call.endpoint, call.payload
        report_id = context.created if endpoint == "create" else context.report_id
        report = self.reports.get(report_id) if report_id is not None else None
        if report is not None:
            report.forgotten = True

    def own_fault(self, rule: V4FaultRule, call: Call[_Context]) -> Answer | None:
        """``revoke_token``: the API refuses a token before it expired (a 401 mid-batch)."""
        if rule.kind == "revoke_token":
            self.tokens.pop(call.payload.token, None)
            self.stats.auth_failures += 1
            return _problem(UNAUTHORIZED_TYPE, "Unauthorized", 401, "the token was revoked")
        return None

    # -- answers ------------------------------------------------------------------------

    def _issue_token(self) -> Answer:
        token = "sbx-" + secrets.token_urlsafe(24)
        lifetime = self.v4_config.token_lifetime
        self.tokens[token] = self._clock() + self.v4_config.scaled(lifetime)
        self.v4_stats.tokens_issued += 1
        # Real seconds, as a real server says; under a time scale the token lives less.
        expires_in = max(1, round(self.v4_config.scaled(lifetime)))
        return json_answer(
            {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
        )

    def _permissions(self) -> list[dict[str, Any]]:
        entries = []
        for organizer in sorted(self._known):
            granted = ["TARIFFS_READ", "TICKETSALES_SEARCH"]
            if organizer in self._granted:
                granted.append(REPORTS_PERMISSION)
            entries.append(
                {
                    "organizer": {
                        "id": organizer,
                        "name": f"Organizer {organizer}",
                        "address": {"postalCode": "9300", "city": "Aalst"},
                    },
                    "permissions": granted,
                    "permissionDetails": [
                        {"id": name, "label": {"nl": name.title()}, "cardSystemIds": [1]}
                        for name in granted
                    ],
                }
            )
        return entries

    def _create(self, context: _Context, fail: bool) -> Answer:
        assert context.organizer is not None
        body = context.body or {}
        try:
            start = date.fromisoformat(str(body["startDate"]))
            end = date.fromisoformat(str(body["endDate"]))
        except (KeyError, ValueError):
            return _problem(PROBLEM_BASE + "body/invalid-data", "Invalid body data", 400)
        if end < start:
            return _problem(
                PROBLEM_BASE + "body/invalid-data",
                "Invalid body data",
                400,
                "endDate before startDate",
            )
        now = self._clock()
        report = _Report(
            id=next(self._ids),
            organizer=context.organizer,
            start=start,
            end=end,
            created=datetime.fromtimestamp(self._wall_clock(), _BELGIAN_OFFSET).replace(
                microsecond=0
            ),
            ready_at=now + self.v4_config.generation_seconds(self._rng),
            failed=fail or context.organizer in self.v4_config.empty_organizers,
            created_at=now,
        )
        self.reports[report.id] = report
        context.created = report.id
        key = f"{context.organizer}|{start.isoformat()}|{end.isoformat()}"
        per_period = self.v4_stats.created_per_period
        if per_period.get(key):
            self.v4_stats.duplicate_creates += 1
        per_period[key] = per_period.get(key, 0) + 1
        self.v4_stats.reports_created += 1
        return json_answer(
            {"status": "STARTED", "id": report.id, "creationDate": report.created.isoformat()}
        )

    def _find(self, context: _Context) -> _Report | None:
        report = self.reports.get(context.report_id) if context.report_id is not None else None
        if report is None or report.forgotten or report.organizer != context.organizer:
            return None
        return report

    def _status(self, report: _Report) -> str:
        if self._clock() < report.ready_at:
            return "STARTED"
        return "FAILED" if report.failed else "AVAILABLE"

    def _report_json(self, report: _Report, *, with_period: bool) -> dict[str, Any]:
        status = self._status(report)
        doc: dict[str, Any] = {
            "status": status,
            "id": report.id,
            "creationDate": report.created.isoformat(),
        }
        if with_period:
            doc["period"] = {
                "startDate": report.start.isoformat(),
                "endDate": report.end.isoformat(),
            }
        if status == "FAILED":
            doc["message"] = EMPTY_MESSAGE.format(start=report.start, end=report.end)
        return doc

    def _zip(self, report: _Report) -> Answer:
        sheets = generate_sheets(
            self.v4_config.seed,
            report.organizer,
            f"Organizer {report.organizer}",
            report.start,
            report.end,
        )
        completed = report.created.replace(tzinfo=None)
        name = f"financialOverview_{report.organizer}_{completed:%Y%m%d_%H%M}.zip"
        headers = (("Content-Disposition", f'attachment; filename="{name}"'),)
        return Answer(200, report_zip(sheets, completed), ZIP_TYPE, headers)

    async def _follow_link(self, request: web.Request) -> web.Response:
        """The short-lived link: no authentication, one use."""
        report_id = self.links.pop(request.match_info["key"], None)
        report = self.reports.get(report_id) if report_id is not None else None
        if report is None or report.forgotten:
            return self.send(_problem(REPORT_NOT_FOUND_TYPE, "Report not found", 404))
        return self.send(self._zip(report))
