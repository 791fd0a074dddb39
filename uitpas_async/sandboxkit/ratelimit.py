"""The sandboxes' rate limit: token buckets, the wait a refusal asks for, and how to say it."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["RateLimit", "TokenBucket", "format_retry_after"]


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


class RateLimit:
    """The sandbox's rate limit: one token bucket, or one per endpoint, and the wait it asks for."""

    __slots__ = ("_buckets", "_burst", "_clock", "_per_endpoint", "_rate", "_second")

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float],
        *,
        per_endpoint: bool = False,
        server_second: float | None = None,
    ) -> None:
        #: Requests per real second, and how many may come back to back.
        self._rate = rate
        self._burst = burst
        #: Monotonic clock in seconds.
        self._clock = clock
        #: True gives each endpoint a bucket of its own; False shares one.
        self._per_endpoint = per_endpoint
        #: Real length of one server second: refusals then ask for whole server seconds
        #: (never less than the real wait); None asks for exactly the real wait.
        self._second = server_second
        #: Buckets by endpoint ("" when they share one), made on first use.
        self._buckets: dict[str, TokenBucket] = {}

    def refuse(self, endpoint: str) -> float | None:
        """Take a token for a request: return None when admitted, else the Retry-After seconds."""
        key = endpoint if self._per_endpoint else ""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._clock)
        wait = bucket.take()
        if wait <= 0:
            return None
        if self._second is None:
            return wait
        # Never ask for less than the real wait, so obeying it is enough.
        return max(wait, self._second * max(1.0, math.ceil(wait)))
