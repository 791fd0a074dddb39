"""``Retry-After``: the seconds a server asks for, as delta-seconds or an HTTP-date."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from uitpas_async.engine.errors import RateLimitedError, ServerError

__all__ = ["parse_retry_after", "raise_for_overload"]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def raise_for_overload(
    status: int,
    headers: Mapping[str, str],
    *,
    where: str,
    describe: Callable[[], str],
    now: datetime | None = None,
) -> None:
    """Raise the trunk's error for an answer that says "later": 429 or any 5xx.

    Both carry the ``Retry-After`` the server asked for; ``describe`` says what the
    body of a 5xx was (called only then, so a provider redacts it its own way).

    Raises:
        RateLimitedError: HTTP 429.
        ServerError: HTTP 5xx.
    """
    if status != 429 and status < 500:
        return
    retry_after = parse_retry_after(headers.get("Retry-After"), now)
    if status == 429:
        raise RateLimitedError(f"{where}: rate limited", retry_after=retry_after)
    raise ServerError(f"{where} with {describe()}", status=status, retry_after=retry_after)
