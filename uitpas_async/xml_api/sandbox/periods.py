"""Quarterly reporting periods with Europe/Brussels offsets, as the real server lists them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo

__all__ = [
    "PERIOD_COUNT",
    "brussels_offset",
    "eu_offset",
    "format_period_end",
    "format_period_start",
    "past_quarters",
]

#: Two years of quarters, the span the periods endpoint covers.
PERIOD_COUNT = 8
_CET = timedelta(hours=1)
_CEST = timedelta(hours=2)


def _last_sunday(year: int, month: int) -> date:
    """Return the last Sunday of a 31-day month (March or October)."""
    last = date(year, month, 31)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def eu_offset(local: datetime) -> timedelta:
    """Return the Brussels UTC offset of a naive local time by the EU rule (no tz database)."""
    # Summer time runs from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
    # last Sunday of October: 02:00 local (CET) to 03:00 local (CEST).
    start = datetime.combine(_last_sunday(local.year, 3), time(2))
    end = datetime.combine(_last_sunday(local.year, 10), time(3))
    return _CEST if start <= local < end else _CET


def _zoneinfo_offset() -> Callable[[datetime], timedelta] | None:
    """Return an offset function backed by the tz database, or None when it is missing."""
    try:
        from zoneinfo import ZoneInfo

        zone: tzinfo = ZoneInfo("Europe/Brussels")
    except Exception:  # no zoneinfo module or no tz data (slim Windows installs)
        return None

    def offset(local: datetime) -> timedelta:
        value = local.replace(tzinfo=zone).utcoffset()
        return value if value is not None else _CET

    return offset


#: The offset function in use: the tz database when present, else the EU rule by hand.
brussels_offset: Callable[[datetime], timedelta] = _zoneinfo_offset() or eu_offset


def _iso(local: datetime, *, millis: bool) -> str:
    aware = local.replace(tzinfo=timezone(brussels_offset(local)))
    return aware.isoformat(timespec="milliseconds" if millis else "seconds")


def format_period_start(day: date) -> str:
    """Return the start of ``day`` as ``2020-04-01T00:00:00+02:00``."""
    return _iso(datetime.combine(day, time(0)), millis=False)


def format_period_end(day: date) -> str:
    """Return the end of ``day`` as ``2020-06-30T23:59:59.999+02:00``."""
    return _iso(datetime.combine(day, time(23, 59, 59, 999_000)), millis=True)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def past_quarters(today: date, count: int = PERIOD_COUNT) -> list[tuple[date, date]]:
    """Return the last ``count`` completed quarters before ``today``, newest first."""
    periods: list[tuple[date, date]] = []
    end = _quarter_start(today) - timedelta(days=1)
    for _ in range(count):
        start = _quarter_start(end)
        periods.append((start, end))
        end = start - timedelta(days=1)
    return periods


def to_brussels(timestamp: float) -> datetime:
    """Return the naive Brussels local time of a POSIX timestamp."""
    utc = datetime.fromtimestamp(timestamp, timezone.utc).replace(tzinfo=None)
    # The offset of "utc + 1h" is right except within an hour of a switch, where
    # an hour's error in a report's file name does not matter.
    return utc + brussels_offset(utc + _CET)
