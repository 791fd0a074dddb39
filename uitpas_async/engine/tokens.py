"""One shared JWT per client: renewed before it expires, once, however many jobs wait.

Theory of operation: every authenticated request asks :meth:`TokenManager.token`
first. While the token is fresh that is a plain read. When it is stale (or a
401 marked it so), the first caller takes the lock and renews; everyone else
queues on the lock and then finds the fresh token, so a thousand waiting jobs
cause one ``POST /v1/sessions``. A 401 only invalidates the token that was
actually sent, so a late 401 for an old token cannot throw away a new one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

__all__ = ["DEFAULT_RENEW_MARGIN", "RENEW_FRACTION", "TokenManager"]

log = logging.getLogger("uitpas_async.finam")

#: Renew this many seconds before expiry: a request must not leave with a dying token.
DEFAULT_RENEW_MARGIN = 60.0
#: For short-lived tokens, renew once this share of the lifetime is left instead.
RENEW_FRACTION = 0.25

#: Returns a new JWT and the seconds it stays valid.
Renew = Callable[[], Awaitable[tuple[str, float]]]


class TokenManager:
    """Holds the current JWT and renews it single-flight."""

    __slots__ = ("_clock", "_lock", "_margin", "_refresh_at", "_renew", "_token", "renewals")

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
        #: The current JWT, or None before the first renewal.
        self._token: str | None = None
        #: Clock reading from which the token counts as stale.
        self._refresh_at = -math.inf
        #: How many renewals succeeded (for tests and logs).
        self.renewals = 0

    def __repr__(self) -> str:
        return f"TokenManager(renewals={self.renewals}, fresh={self._fresh()})"

    @property
    def current(self) -> str | None:
        """Return the newest token, fresh or not (what a request about to leave should carry)."""
        return self._token

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._refresh_at

    async def token(self) -> str:
        """Return a fresh token, renewing it first if needed (at most one renewal at a time)."""
        token = self._token
        if token is not None and self._fresh():
            return token
        async with self._lock:
            # Whoever held the lock before us may have renewed already.
            token = self._token
            if token is not None and self._fresh():
                return token
            token, lifetime = await self._renew()
            now = self._clock()
            self._token = token
            self._refresh_at = now + lifetime - min(self._margin, lifetime * RENEW_FRACTION)
            self.renewals += 1
            log.debug("session token renewed; valid for %.1fs", lifetime)
            return token

    def invalidate(self, token: str | None) -> None:
        """Mark ``token`` stale after a 401, unless a newer one already replaced it."""
        if token is not None and token == self._token:
            self._refresh_at = -math.inf
