"""One shared bearer token per client: renewed before it expires, once, however many jobs wait.

Theory of operation: an authenticated request takes its token at the moment it
leaves, after every queue (the Retry-After hold, the pacers, the slot; see
:mod:`uitpas_async.engine.calls`), never before: a token checked before a queue
of seconds may expire in it. While the token is fresh, :attr:`TokenManager.fresh`
is a plain read, with no await. When it is stale (or a 401 marked it so),
:meth:`TokenManager.token` renews it: the first caller takes the lock and
renews, everyone else queues on the lock and then finds the fresh token, so a
thousand waiting jobs cause one renewal. A 401 only invalidates the token that
was actually sent, so a late 401 for an old token cannot throw away a new one.

"Stale" comes before "expired" by a margin (a quarter of the lifetime for
short-lived tokens), so a token taken fresh still lives when the server reads
it. An expired token can then reach the server only from a request still in
flight when its token went stale, and in a busy client someone renews at that
moment: :attr:`TokenManager.raced_renewals` counts the renewals that began
while requests were in flight, what tests bound the server's count by.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

__all__ = ["DEFAULT_RENEW_MARGIN", "RENEW_FRACTION", "TokenManager"]

log = logging.getLogger("uitpas_async")

#: Renew this many seconds before expiry: a request must not leave with a dying token.
DEFAULT_RENEW_MARGIN = 60.0
#: For short-lived tokens, renew once this share of the lifetime is left instead.
RENEW_FRACTION = 0.25

#: Returns a new token and the seconds it stays valid.
Renew = Callable[[], Awaitable[tuple[str, float]]]


class TokenManager:
    """Holds the current bearer token and renews it single-flight."""

    __slots__ = (
        "_clock",
        "_lock",
        "_margin",
        "_refresh_at",
        "_renew",
        "_token",
        "in_flight",
        "raced_renewals",
        "renewals",
    )

    def __init__(
        self,
        renew: Renew,
        *,
        clock: Callable[[], float],
        margin: float = DEFAULT_RENEW_MARGIN,
    ) -> None:
        #: Fetches a new token; only ever called with the lock held.
        self._renew = renew
        #: Monotonic clock in seconds.
        self._clock = clock
        #: Seconds before expiry at which the token counts as stale.
        self._margin = margin
        #: Serialises renewals: one in flight at a time.
        self._lock = asyncio.Lock()
        #: The current token, or None before the first renewal.
        self._token: str | None = None
        #: Clock reading from which the token counts as stale.
        self._refresh_at = -math.inf
        #: How many renewals succeeded (for tests and logs).
        self.renewals = 0
        #: Requests sent with a token and not answered yet (the call pipeline counts them).
        self.in_flight = 0
        #: Renewals that began while requests were in flight with the old token.
        self.raced_renewals = 0

    def __repr__(self) -> str:
        return f"TokenManager(renewals={self.renewals}, fresh={self.fresh is not None})"

    @property
    def current(self) -> str | None:
        """Return the newest token, fresh or not: to redact from errors, never to send."""
        return self._token

    @property
    def fresh(self) -> str | None:
        """Return the token if it is fresh now, else None (then await :meth:`token`)."""
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token
        return None

    async def token(self) -> str:
        """Return a fresh token, renewing it first if needed (at most one renewal at a time)."""
        token = self.fresh
        if token is not None:
            return token
        async with self._lock:
            # Whoever held the lock before us may have renewed already.
            token = self.fresh
            if token is not None:
                return token
            if self.in_flight:
                self.raced_renewals += 1
            token, lifetime = await self._renew()
            now = self._clock()
            self._token = token
            self._refresh_at = now + lifetime - min(self._margin, lifetime * RENEW_FRACTION)
            self.renewals += 1
            log.debug("token renewed; valid for %.1fs", lifetime)
            return token

    def invalidate(self, token: str | None) -> None:
        """Mark ``token`` stale after a 401, unless a newer one already replaced it."""
        if token is not None and token == self._token:
            self._refresh_at = -math.inf
