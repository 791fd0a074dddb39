"""The counters every sandbox keeps, for tests and benchmarks; a provider adds its own."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Protocol

import attrs

__all__ = ["RequestStats", "TimedReport", "report_timing"]


def _per_endpoint(stats: RequestStats) -> dict[str, int]:
    return dict.fromkeys(stats.ENDPOINTS, 0)


def _per_fault_kind(stats: RequestStats) -> dict[str, int]:
    return dict.fromkeys(stats.FAULT_KINDS, 0)


@attrs.define
class RequestStats:
    """Counters the request pipeline keeps; a provider subclasses it with its names and extras.

    The subclass sets ``ENDPOINTS`` and ``FAULT_KINDS`` (so every counter starts at
    zero and shows in ``as_dict``) and adds its own counters as fields with defaults.
    """

    #: The provider's endpoint names, the keys of ``requests`` and ``successes``.
    ENDPOINTS: ClassVar[tuple[str, ...]] = ()
    #: The provider's fault kinds, the keys of ``faults``.
    FAULT_KINDS: ClassVar[tuple[str, ...]] = ()

    #: Requests received per endpoint, whatever became of them.
    requests: dict[str, int] = attrs.field(default=attrs.Factory(_per_endpoint, takes_self=True))
    #: Requests per endpoint answered with the API's success (200, no fault).
    successes: dict[str, int] = attrs.field(default=attrs.Factory(_per_endpoint, takes_self=True))
    #: Requests refused with 401 by the provider's auth check.
    auth_failures: int = 0
    #: 429 answers sent by the rate limiter (429s injected as faults count under faults).
    rate_limited: int = 0
    #: Faults injected, per kind.
    faults: dict[str, int] = attrs.field(default=attrs.Factory(_per_fault_kind, takes_self=True))
    reports_created: int = 0
    #: Creates for a request (same subject, period, ...) that already had a report.
    duplicate_creates: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as JSON-ready data."""
        return attrs.asdict(self)


class TimedReport(Protocol):
    """What a sandbox's report records for ``GET /_sandbox/stats`` (server monotonic clock)."""

    start: date
    end: date
    created_at: float
    #: From this instant the status says it is ready.
    ready_at: float
    #: The first status answer that said ready, if any.
    completed_seen_at: float | None
    status_polls: int
    failed: bool
    forgotten: bool


def report_timing(report: TimedReport, subject: str) -> dict[str, Any]:
    """Return a report's timings as the benchmarks read them (``subject`` under "balie")."""
    return {
        "balie": subject,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "created_at": report.created_at,
        "ready_at": report.ready_at,
        "completed_seen_at": report.completed_seen_at,
        "status_polls": report.status_polls,
        "failed": report.failed,
        "forgotten": report.forgotten,
    }
