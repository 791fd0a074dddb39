"""Report periods: two dates, in order."""

from __future__ import annotations

from datetime import date, datetime

from uitpas_async.engine.errors import InvalidArgumentError

__all__ = ["validate_period"]


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
