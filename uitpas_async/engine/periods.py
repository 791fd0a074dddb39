"""Report periods: two dates, in order, or a request's ``period="latest"``."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from uitpas_async.engine.errors import InvalidArgumentError

__all__ = ["LATEST", "period_job_key", "period_label", "validate_period", "validate_period_request"]

#: The one named period a request may ask for: its owner's most recent one.
LATEST = "latest"


def validate_period(start: object, end: object) -> tuple[date, date]:
    """Check that a report period is two ``date`` objects in order.

    Raises:
        InvalidArgumentError: not dates, datetimes, or end before start.
    """
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise InvalidArgumentError(
                f"{name} must be a datetime.date, not {type(value).__name__}"
            )
    assert isinstance(start, date)
    assert isinstance(end, date)
    if end < start:
        raise InvalidArgumentError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return start, end


def period_label(start: date, end: date) -> str:
    """Return ``2024-Q1`` for a calendar quarter, else ``2024-01-01..2024-02-15``.

    Both forms are what ``--period`` accepts, so a label can be pasted back.
    """
    quarter, remainder = divmod(start.month - 1, 3)
    if start.day == 1 and remainder == 0:
        after = date(start.year + 1, 1, 1) if quarter == 3 else date(start.year, start.month + 3, 1)
        if end == after - timedelta(days=1):
            return f"{start.year}-Q{quarter + 1}"
    return f"{start.isoformat()}..{end.isoformat()}"


def validate_period_request(start: object, end: object, period: object) -> None:
    """Check a report request's period: ``period="latest"`` alone, or start and end in order.

    Raises:
        InvalidArgumentError: both forms, neither, an unknown period, or bad dates.
    """
    if period == LATEST:
        if start is not None or end is not None:
            raise InvalidArgumentError("give either period='latest' or start and end, not both")
    elif period is not None:
        raise InvalidArgumentError(f"unknown period {period!r}; use 'latest'")
    elif start is None or end is None:
        raise InvalidArgumentError("a report request needs start and end, or period='latest'")
    else:
        validate_period(start, end)


def period_job_key(owner: str, start: date | None, end: date | None, period: object) -> str:
    """Return a request's journal key: ``OWNER|START|END`` or ``OWNER|latest``."""
    if period == LATEST:
        return f"{owner}|{LATEST}"
    assert start is not None
    assert end is not None
    return f"{owner}|{start.isoformat()}|{end.isoformat()}"
