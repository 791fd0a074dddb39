"""What the imitated Finam API does, free of HTTP: sessions, reports, stats and their answers."""

from __future__ import annotations

import base64
import collections
import math
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from uitpas_async.engine.errors import UitpasError
from uitpas_async.finam import protocol
from uitpas_async.finam.models import ReportForm
from uitpas_async.finam.sandbox.config import (
    FINAM_ENDPOINTS,
    FINAM_FAULT_KINDS,
    FinamSandboxConfig,
)
from uitpas_async.sandboxkit.config import SandboxSetup
from uitpas_async.sandboxkit.stats import RequestStats
from uitpas_async.sandboxkit.wire import Answer, json_answer

__all__ = [
    "FILES_PATH",
    "FinamSandboxReport",
    "FinamSandboxStats",
    "FinamState",
    "default_accounts",
    "grpc_error",
]

#: Where report files are served; ``info`` links point below it.
FILES_PATH = "/_files"
#: gRPC status codes the errors carry (google.rpc.Code).
GRPC_INVALID_ARGUMENT = 3
GRPC_NOT_FOUND = 5
GRPC_PERMISSION_DENIED = 7
GRPC_RESOURCE_EXHAUSTED = 8
GRPC_INTERNAL = 13
GRPC_UNAUTHENTICATED = 16
#: Report statuses, in the order of their gRPC enum numbers.
_STATUSES = ("NOT_FOUND", "PENDING", "IN_PROGRESS", "SUCCESS", "ERROR")
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_LENGTH = 26
_TOKEN_BYTES = 24


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


@attrs.define
class FinamSandboxStats(RequestStats):
    """Counters for tests: the kit's, and this API's own below."""

    ENDPOINTS = FINAM_ENDPOINTS
    FAULT_KINDS = FINAM_FAULT_KINDS

    #: Tokens issued by ``POST /v1/sessions``.
    sessions_created: int = 0
    #: Of the 401s (``auth_failures``), those for a token that had expired.
    expired_tokens: int = 0
    #: Requests that arrived carrying an expired token, counted before the rate
    #: limiter (a 429 may answer them): each time a client sent one.
    expired_token_uses: int = 0


def grpc_error(status: int, code: int, message: str) -> Answer:
    """Return a gRPC-gateway style error: ``{"code", "message", "details"}``."""
    return json_answer({"code": code, "message": message, "details": []}, status)


def _draw_accounts(rng: random.Random, count: int) -> list[str]:
    return [str(10_000_000 + rng.randrange(90_000_000)) for _ in range(count)]


def default_accounts(count: int, seed: int) -> list[str]:
    """Return ``count`` account ids as a sandbox with this seed would make them."""
    return _draw_accounts(random.Random(seed), count)


def _timestamp_grpc(value: datetime) -> dict[str, int]:
    seconds = math.floor(value.timestamp())
    return {"seconds": seconds, "nanos": value.microsecond * 1000}


class FinamState:
    """The API's behaviour: each method takes a parsed request and returns an Answer."""

    def __init__(
        self, setup: SandboxSetup[FinamSandboxConfig], *, base_url: Callable[[], str]
    ) -> None:
        config = setup.config
        self.config = config
        # The sandbox's one RNG, shared with the fault plan: one seed, one run.
        self._rng = rng = setup.rng
        self._clock = setup.clock
        self._wall_clock = setup.wall_clock
        #: Where the server listens, for the report links ``info`` returns.
        self._base_url = base_url
        accounts = config.accounts
        self.accounts: list[str] = (
            _draw_accounts(rng, accounts) if isinstance(accounts, int) else list(accounts)
        )
        self.stats = FinamSandboxStats()
        #: Live reports by id (forgotten ones are gone).
        self.reports: dict[str, FinamSandboxReport] = {}
        #: Every token issued, with the server clock at which it expires.
        self.tokens: dict[str, float] = {}
        self._requested: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        #: Info answers given, to take turns in the "mixed" JSON style.
        self._answers = 0
        #: The id of the report the latest create made, so a fault can act on it.
        self.last_created: str | None = None

    def check_token(self, token: str) -> Answer | None:
        """Return a 401 for a missing, unknown or expired token, or None to let it pass."""
        expiry = self.tokens.get(token)
        if expiry is None:
            self.stats.auth_failures += 1
            return grpc_error(401, GRPC_UNAUTHENTICATED, "invalid or missing token")
        if self._clock() >= expiry:
            self.stats.auth_failures += 1
            self.stats.expired_tokens += 1
            return grpc_error(401, GRPC_UNAUTHENTICATED, "token is expired")
        return None

    def note_token_use(self, token: str) -> None:
        """Count the request if it carries a token this sandbox issued and has expired."""
        expiry = self.tokens.get(token)
        if expiry is not None and self._clock() >= expiry:
            self.stats.expired_token_uses += 1

    def expire_tokens(self) -> int:
        """Expire every token issued so far; return how many."""
        now = self._clock()
        for token in self.tokens:
            self.tokens[token] = min(self.tokens[token], now)
        return len(self.tokens)

    def account_of(
        self, endpoint: str, body: Mapping[str, Any], report_id: str | None
    ) -> str | None:
        """Return the account a request is about, as fault rules match it."""
        if endpoint == "create":
            return str(body.get("account_id", ""))
        report = self.reports.get(report_id or "")
        return report.account_id if report is not None else None

    def forget(self, report_id: str) -> bool:
        """Forget a report as if the server lost it; return whether it existed."""
        return self.reports.pop(report_id, None) is not None

    def report_for(self, account: str) -> list[FinamSandboxReport]:
        """Return the live reports of one account."""
        return [report for report in self.reports.values() if report.account_id == account]

    def auth(self, body: Mapping[str, Any]) -> Answer:
        """Trade the secret for a token (``POST /v1/sessions``)."""
        if body.get("secret") != self.config.secret:
            self.stats.auth_failures += 1
            return grpc_error(401, GRPC_UNAUTHENTICATED, "invalid secret")
        raw = self._rng.randbytes(_TOKEN_BYTES)
        token = "sbx." + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        self.tokens[token] = self._clock() + self.config.scaled(self.config.token_lifetime)
        self.stats.sessions_created += 1
        return json_answer({"token": token})

    def details(self, body: Mapping[str, Any]) -> Answer:
        """Describe a token: when it was made, when it expires, its accounts."""
        token = body.get("token")
        expiry = self.tokens.get(token) if isinstance(token, str) else None
        if expiry is None:
            self.stats.auth_failures += 1
            return grpc_error(401, GRPC_UNAUTHENTICATED, "invalid token")
        expires_wall = self._wall_clock() + expiry - self._clock()
        created_wall = expires_wall - self.config.scaled(self.config.token_lifetime)
        return json_answer(
            {
                "created_at": protocol.format_timestamp(_utc(created_wall)),
                "expires_at": protocol.format_timestamp(_utc(expires_wall)),
                "account_ids": list(self.accounts),
            }
        )

    def create(self, body: Mapping[str, Any], *, fail: bool = False) -> Answer:
        """Start generating a report (``POST /v1/report``)."""
        try:
            span = body["date_range"]
            begin = protocol.parse_timestamp(span["date_begin"], "date_begin")
            end = protocol.parse_timestamp(span["date_end"], "date_end")
            form = ReportForm.parse(body.get("report_form", 0))
            account = protocol.parse_int64(body.get("account_id"), "account_id")
        except (KeyError, TypeError, UitpasError) as exc:
            message = f"invalid request: {type(exc).__name__}"
            return grpc_error(400, GRPC_INVALID_ARGUMENT, message)
        if form is ReportForm.UNKNOWN:
            return grpc_error(400, GRPC_INVALID_ARGUMENT, "report_form is required")
        if end < begin or end - begin > protocol.MAX_RANGE:
            return grpc_error(400, GRPC_INVALID_ARGUMENT, "date_range must be at most 92 days")
        if account not in self.accounts:
            return grpc_error(403, GRPC_PERMISSION_DENIED, f"no access to account {account}")
        key = (account, begin.isoformat(), end.isoformat(), form.name)
        if self._requested[key]:
            self.stats.duplicate_creates += 1
        self._requested[key] += 1
        report_id = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
        generation = self.config.generation_seconds(self._rng)
        now = self._clock()
        content_type, filename, payload = self._content(report_id, account, begin, end, form)
        self.reports[report_id] = FinamSandboxReport(
            report_id,
            account,
            begin,
            end,
            form,
            created_at=now,
            ready_at=now + generation,
            failed=fail,
            body=payload,
            content_type=content_type,
            filename=filename,
        )
        self.last_created = report_id
        self.stats.reports_created += 1
        return json_answer({"report_id": report_id})

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

    def info(self, report_id: str) -> Answer:
        """Say how a report is doing, with its file's link once done (``GET .../info``)."""
        report = self.reports.get(report_id)
        grpc = self._grpc_style()
        if report is None:
            info: dict[str, Any] = {"report_id": report_id}
            if not grpc:
                info["status"] = "NOT_FOUND"  # gRPC JSON leaves out the 0 default
            return json_answer({"info": info})
        report.info_polls += 1
        status = self._status(report)
        url = f"{self._base_url()}{FILES_PATH}/{report.report_id}/{report.filename}"
        if grpc:
            info = {
                "report_id": report.report_id,
                "status": _STATUSES.index(status),
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
        return json_answer({"info": info})

    def file(self, report_id: str) -> Answer:
        """Serve a finished report's file at the link ``info`` gave."""
        report = self.reports.get(report_id)
        if report is None or self._status(report) != "SUCCESS":
            return grpc_error(404, GRPC_NOT_FOUND, "report file not found")
        report.downloads += 1
        disposition = f'attachment; filename="{report.filename}"'
        return Answer(
            200, report.body, report.content_type, (("Content-Disposition", disposition),)
        )


def _utc(posix: float) -> datetime:
    return datetime.fromtimestamp(posix, tz=timezone.utc)
