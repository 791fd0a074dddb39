"""Retrying transient faults on purpose: an explicit predicate, Retry-After first, then jitter.

tenacity stays private to this module. A fresh ``AsyncRetrying`` is built for
every call, because one shared object carries state between coroutines.
``asyncio.CancelledError`` is never retried: it is not an ``Exception``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity as _t

from .config import RetryPolicy
from .errors import (
    ConnectError,
    ConnectionLostError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
)

__all__ = ["is_transient", "retry_call"]

log = logging.getLogger("uitpas_async")

T = TypeVar("T")

#: 5xx statuses that mean "try again later" rather than "this request is wrong".
RETRYABLE_SERVER_STATUSES = frozenset({502, 503, 504})


def is_transient(exc: BaseException, *, idempotent: bool, policy: RetryPolicy) -> bool:
    """Return whether ``exc`` is worth another attempt of the same request.

    A request that is not idempotent (creating a report) is retried only when it
    certainly did not reach the server (no connection, or an explicit 429), unless
    the policy allows unsafe retries.
    """
    if isinstance(exc, (ConnectError, RateLimitedError)):
        return True
    if not (idempotent or policy.retry_unsafe_creates):
        return False
    if isinstance(exc, ServerError):
        return exc.status in RETRYABLE_SERVER_STATUSES
    return isinstance(exc, (ConnectionLostError, RequestTimeoutError))


def _server_delay(exc: BaseException | None) -> float | None:
    if isinstance(exc, (RateLimitedError, ServerError)):
        return exc.retry_after
    return None


async def retry_call(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    idempotent: bool,
    sleep: Callable[[float], Awaitable[None]],
    endpoint: str,
) -> T:
    """Await ``attempt()`` until it succeeds, a fault is not transient, or attempts run out."""

    def wait(state: _t.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        server_delay = _server_delay(exc)
        if server_delay is not None:
            return min(server_delay, policy.max_retry_after)
        return policy.backoff(state.attempt_number)

    def retryable(exc: BaseException) -> bool:
        return is_transient(exc, idempotent=idempotent, policy=policy)

    def before_sleep(state: _t.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.debug(
            "retrying %s after %s (attempt %d of %d) in %.2fs",
            endpoint,
            type(exc).__name__,
            state.attempt_number,
            policy.attempts,
            delay,
        )

    retrying = _t.AsyncRetrying(
        stop=_t.stop_after_attempt(policy.attempts),
        wait=wait,
        retry=_t.retry_if_exception(retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt)
