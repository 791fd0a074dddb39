"""What the imitated API does, free of HTTP: reports, balies, stats, and the answers they give."""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import attrs

from uitpas_async.sandboxkit.report_content import generate_sheets, report_zip
from uitpas_async.sandboxkit.stats import RequestStats, report_timing
from uitpas_async.sandboxkit.wire import Answer
from uitpas_async.xml_api.sandbox.config import ENDPOINTS, FAULT_KINDS, SandboxBalie, SandboxConfig
from uitpas_async.xml_api.sandbox.periods import past_quarters, to_brussels
from uitpas_async.xml_api.sandbox.pricing import PriceError, quote_price
from uitpas_async.xml_api.sandbox.xmlbodies import (
    MESSAGE_COMPLETED,
    MESSAGE_IN_PROGRESS,
    error_body,
    periods_body,
    resource_body,
)

__all__ = [
    "REPORT_PATH",
    "XML_TYPE",
    "ZIP_TYPE",
    "Answer",
    "SandboxReport",
    "SandboxState",
    "SandboxStats",
    "content_disposition",
]

#: Path of the report endpoints below the prefix; resources are relative to the prefix too.
REPORT_PATH = "/uitpas/report/financialoverview/organiser"
#: Exactly as the real server writes it (aiohttp would lower-case a charset it sets itself).
XML_TYPE = "application/xml; charset=UTF-8"
ZIP_TYPE = "application/x-zip-compressed"
#: The permission ACCESS_DENIED names when a balie asks for another balie's report.
REPORT_PERMISSION = "FINANCIAL_REPORT_VIEW"
#: Reports whose zip is kept after building it (downloads are often retried).
_ZIP_CACHE_SIZE = 64
#: The W3C date and time profile (https://www.w3.org/TR/NOTE-datetime) as seed 001 types
#: startDate and endDate: a date, or a date-time to minutes, seconds or fractions with an
#: offset or Z. culturefeed-php sends ``2024-01-01T00:00:00+01:00``.
_W3C_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?"
)


def parse_w3c_day(text: str) -> date:
    """Return the calendar day in Brussels a W3C date or date-time names.

    Raises:
        ValueError: not of the W3C profile, or not a real date or time.
    """
    text = text.strip()
    if not _W3C_DATE.fullmatch(text):
        raise ValueError(text)
    if "T" not in text:
        return date.fromisoformat(text)
    head, _, rest = text.partition(".")
    if rest:  # fromisoformat before 3.11 takes 3 or 6 fraction digits only
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = head + "." + (digits[0] + "000000")[:6] + rest[len(digits[0]) :]
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return to_brussels(moment.timestamp()).date()


#: Query names the server reads a balie key from; "consumerKey" is what some of
#: its own resource URLs carry, so a client following them must be understood.
_KEY_PARAMS = ("balieConsumerKey", "consumerKey")


def _xml(text: str, status: int = 200) -> Answer:
    return Answer(status, text.encode("utf-8"), XML_TYPE)


def _error(code: str, message: str, required_permission: str | None = None) -> Answer:
    return _xml(error_body(code, message, required_permission), 400)


@attrs.define
class SandboxReport:
    """A report the sandbox is generating or has generated (mutable: polls and downloads count)."""

    id: str
    balie_key: str
    start: date
    end: date
    #: Server monotonic clock at creation.
    created_at: float
    #: Server monotonic clock from which status says "completed".
    ready_at: float
    #: Wall clock (POSIX seconds) at creation, for the file name's completion stamp.
    created_wall: float
    failed: bool = False
    status_polls: int = 0
    downloads: int = 0
    #: Server monotonic clock of the first status answer that said "completed".
    completed_seen_at: float | None = None
    forgotten: bool = False

    @property
    def completed_wall(self) -> float:
        """Return the wall-clock time generation finished."""
        return self.created_wall + (self.ready_at - self.created_at)

    def timing(self) -> dict[str, Any]:
        """Return this report's record as JSON-ready data."""
        return {**report_timing(self, self.balie_key), "downloads": self.downloads}


@attrs.define
class SandboxStats(RequestStats):
    """Counters for tests and benchmarks (the kit's; add this API's own here)."""

    ENDPOINTS = ENDPOINTS
    FAULT_KINDS = FAULT_KINDS


def content_disposition(balie: SandboxBalie, filename: str) -> str | None:
    """Return the ``Content-Disposition`` value for a balie's download, or None to send none."""
    style = balie.disposition
    if style == "none":
        return None
    # HTTP header values must stay latin-1 safe (and aiohttp writes UTF-8), so any
    # name outside ASCII gets the RFC 6266 / RFC 5987 extended form.
    if style == "rfc6266" or not filename.isascii():
        return "attachment; filename*=UTF-8''" + quote(filename, safe="")
    if style == "quoted":
        escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'attachment; filename="{escaped}"'
    return f"attachment; filename={filename}"


class SandboxState:
    """The API's behaviour: each method takes parsed parameters and returns an Answer."""

    def __init__(
        self,
        config: SandboxConfig,
        balies: Sequence[SandboxBalie],
        rng: random.Random,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.balies = list(balies)
        self.stats = SandboxStats()
        #: Live reports by id; forgotten ones leave this dict.
        self.reports: dict[str, SandboxReport] = {}
        #: Every report ever created, forgotten ones included, for timing stats.
        self.history: dict[str, SandboxReport] = {}
        self._by_key = {balie.key: balie for balie in self.balies}
        self._rng = rng
        self._clock = clock
        self._wall_clock = wall_clock
        self._next_id = 1
        self._requested: set[tuple[str, date, date]] = set()
        self._zips: OrderedDict[str, bytes] = OrderedDict()
        #: The report the latest create made, so a fault can act on it.
        self.last_created: SandboxReport | None = None

    def now(self) -> float:
        """Return the server's monotonic clock, the one report timings use."""
        return self._clock()

    @property
    def default_balie(self) -> SandboxBalie:
        """Return the balie of the OAuth consumer (the first one)."""
        return self.balies[0]

    def balie_key_of(self, params: Mapping[str, str]) -> str | None:
        """Return the balie key a request names, if any."""
        for name in _KEY_PARAMS:
            if params.get(name):
                return params[name]
        return None

    def forget(self, report_id: str) -> bool:
        """Forget a report as if the server lost it; return whether it existed."""
        report = self.reports.pop(report_id, None)
        self._zips.pop(report_id, None)
        if report is None:
            return False
        report.forgotten = True
        return True

    def _resource(self, report_id: str, action: str, key: str | None) -> str:
        path = f"{REPORT_PATH}/{report_id}/{action}"
        if key is None:  # the docs: the key is echoed only when the request carried one
            return path
        return f"{path}?{self.config.resource_key_param}={quote(key, safe='')}"

    def _balie(self, key: str | None) -> SandboxBalie | Answer:
        if key is None:
            return self.default_balie
        balie = self._by_key.get(key)
        if balie is None:
            return _error("UNKNOWN_BALIE_CONSUMERKEY", f"Unknown balie consumer key: {key}")
        return balie

    def create(self, params: Mapping[str, str], *, fail: bool = False) -> Answer:
        """Start generating a report (``POST .../organiser``)."""
        start_text, end_text = params.get("startDate", ""), params.get("endDate", "")
        if not start_text or not end_text:
            return _error("MISSING_REQUIRED_FIELDS", "startDate and endDate are required.")
        try:
            # The server widens each to the start and the end of its day.
            start, end = parse_w3c_day(start_text), parse_w3c_day(end_text)
        except ValueError:
            return _error(
                "PARSE_INVALID_DATE",
                "Dates must be W3C dates (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+01:00).",
            )
        if end < start:
            return _error("PARSE_INVALID_DATE", "endDate lies before startDate.")
        key = self.balie_key_of(params)
        balie = self._balie(key)
        if isinstance(balie, Answer):
            return balie
        report = self._new_report(balie, start, end, failed=fail)
        return _xml(resource_body(MESSAGE_IN_PROGRESS, self._resource(report.id, "status", key)))

    def _new_report(
        self, balie: SandboxBalie, start: date, end: date, *, failed: bool
    ) -> SandboxReport:
        now = self._clock()
        report = SandboxReport(
            id=str(self._next_id),
            balie_key=balie.key,
            start=start,
            end=end,
            created_at=now,
            ready_at=now + self.config.generation_seconds(self._rng),
            created_wall=self._wall_clock(),
            failed=failed,
        )
        self._next_id += 1
        self.reports[report.id] = report
        self.history[report.id] = report
        self.last_created = report
        self.stats.reports_created += 1
        request = (balie.key, start, end)
        if request in self._requested:
            self.stats.duplicate_creates += 1
        self._requested.add(request)
        return report

    def _owned_report(self, report_id: str, params: Mapping[str, str]) -> SandboxReport | Answer:
        key = self.balie_key_of(params)
        balie = self._balie(key)
        if isinstance(balie, Answer):
            return balie
        report = self.reports.get(report_id)
        if report is None:
            return _error("UNKNOWN_REPORT_ID", f"Unknown report id: {report_id}")
        if report.balie_key != balie.key:
            return _error(
                "ACCESS_DENIED",
                f"Balie {balie.key} has no access to report {report_id}.",
                REPORT_PERMISSION,
            )
        return report

    def status(self, report_id: str, params: Mapping[str, str]) -> Answer:
        """Say whether a report is still generating (``GET .../{id}/status``)."""
        report = self._owned_report(report_id, params)
        if isinstance(report, Answer):
            return report
        report.status_polls += 1
        if report.failed:
            return _error("ACTION_FAILED", "Generating the report failed.")
        key = self.balie_key_of(params)
        now = self._clock()
        if now < report.ready_at:
            return _xml(
                resource_body(MESSAGE_IN_PROGRESS, self._resource(report.id, "status", key))
            )
        if report.completed_seen_at is None:
            report.completed_seen_at = now
        return _xml(resource_body(MESSAGE_COMPLETED, self._resource(report.id, "download", key)))

    def download(self, report_id: str, params: Mapping[str, str]) -> Answer:
        """Return a completed report's zip (``GET .../{id}/download``)."""
        report = self._owned_report(report_id, params)
        if isinstance(report, Answer):
            return report
        if report.failed or self._clock() < report.ready_at:
            return _error("INVALID_REPORT_STATUS", "The report is not ready for download.")
        report.downloads += 1
        balie = self._by_key[report.balie_key]
        completed = to_brussels(report.completed_wall)
        body = self._zips.get(report.id)
        if body is None:
            sheets = generate_sheets(
                self.config.seed, balie.key, balie.name, report.start, report.end
            )
            body = report_zip(sheets, completed)
            self._zips[report.id] = body
            if len(self._zips) > _ZIP_CACHE_SIZE:
                self._zips.popitem(last=False)
        else:
            self._zips.move_to_end(report.id)
        filename = f"financialOverview_{balie.name}_{completed:%Y%m%d_%H%M}.zip"
        disposition = content_disposition(balie, filename)
        headers = () if disposition is None else (("Content-Disposition", disposition),)
        return Answer(200, body, ZIP_TYPE, headers)

    def periods(self, params: Mapping[str, str]) -> Answer:
        """List the balie's past quarters (``GET .../organiser/periods``)."""
        key = params.get("balieConsumerKey")
        if not key:
            return _error("MISSING_REQUIRED_FIELDS", "balieConsumerKey is required.")
        balie = self._balie(key)
        if isinstance(balie, Answer):
            return balie
        today = to_brussels(self._wall_clock()).date()
        return _xml(periods_body(past_quarters(today)))

    def price(self, params: Mapping[str, str]) -> Answer:
        """Price a card for a reason (``GET /uitpas/price``)."""
        balie = self._balie(params.get("balieConsumerKey") or None)
        if isinstance(balie, Answer):
            return balie
        result = quote_price(params, to_brussels(self._wall_clock()).date())
        if isinstance(result, PriceError):
            return _error(result.code, result.message)
        return _xml(result)

    def report_timings(self) -> dict[str, dict[str, Any]]:
        """Return every report's timing record, by id."""
        return {report_id: report.timing() for report_id, report in self.history.items()}

    def acting_balie(self, params: Mapping[str, str], report_id: str | None) -> str:
        """Return the balie key a request acts for, as fault rules match it."""
        key = self.balie_key_of(params)
        if key is not None:
            return key
        report = self.reports.get(report_id) if report_id else None
        return report.balie_key if report is not None else self.default_balie.key
