"""A token bucket that says how long a refused request should have waited, and how to say it."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["TokenBucket", "format_retry_after"]


class TokenBucket:
    """Admits ``rate`` requests per second with at most ``capacity`` back to back."""

    __slots__ = ("_capacity", "_clock", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        #: Tokens added per second.
        self._rate = rate
        #: Most tokens the bucket holds: the largest burst admitted after a quiet spell.
        self._capacity = capacity
        #: Monotonic clock in seconds.
        self._clock = clock
        #: Tokens available at ``_updated``; starts full.
        self._tokens = capacity
        #: Clock reading of the last refill.
        self._updated = clock()

    def take(self) -> float:
        """Take one token: return 0.0 when admitted, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


def format_retry_after(seconds: float) -> str:
    """Return delta-seconds for Retry-After: an integer from 1 s up, a decimal below."""
    if seconds >= 1.0:
        return str(math.ceil(seconds))
    # Sub-second only happens with time_scale < 1; plain HTTP allows integers only,
    # so the decimal is a sandbox liberty that clients must parse as a float.
    return f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".")
