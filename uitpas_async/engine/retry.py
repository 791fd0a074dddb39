"""Retrying transient faults on purpose: an explicit predicate, Retry-After first, then jitter.

The first attempt runs bare: nearly every call succeeds at once, and
tenacity's per-call bookkeeping costs about as much as signing the request.
Only after a transient fault does tenacity take over, for the remaining
attempts. It stays private to this module, and a fresh ``AsyncRetrying`` is
built for each call that needs one, because one shared object carries state
between coroutines. ``asyncio.CancelledError`` is never retried: it is not an
``Exception``.

One rule for resending a create, at every layer: a create is resent after a
fault that may have reached the server (a dropped connection, a timeout, a 5xx,
a malformed answer) only when the resending layer's policy has
``retry_unsafe_creates=True``: the client's :class:`RetryPolicy` for its own
attempts, the orchestrator's ``job_retry`` for a job's. Each such resend is
noted for :func:`counting_unsafe_resends`, so the orchestrator can record every
possible duplicate, whichever layer made it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import tenacity as _t

from uitpas_async.engine.config import RetryPolicy
from uitpas_async.engine.errors import (
    ConnectError,
    ConnectionLostError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
)

__all__ = ["counting_unsafe_resends", "is_transient", "may_have_reached_server", "retry_call"]

log = logging.getLogger("uitpas_async")

A = TypeVar("A")
T = TypeVar("T")

#: 5xx statuses that mean "try again later" rather than "this request is wrong".
RETRYABLE_SERVER_STATUSES = frozenset({502, 503, 504})


#: Where the current task's unsafe resends are noted, if anyone is counting.
_UNSAFE_RESENDS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "uitpas_async_unsafe_resends", default=None
)


@contextlib.contextmanager
def counting_unsafe_resends() -> Iterator[list[str]]:
    """Collect, in this task, the fault type of every non-idempotent call resent after it."""
    resends: list[str] = []
    token = _UNSAFE_RESENDS.set(resends)
    try:
        yield resends
    finally:
        _UNSAFE_RESENDS.reset(token)


def may_have_reached_server(exc: BaseException) -> bool:
    """Return whether a failed request may still have been acted on by the server."""
    return not isinstance(exc, (ConnectError, RateLimitedError))


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


def _wait(exc: BaseException | None, retry_number: int, policy: RetryPolicy) -> float:
    """Return the wait before the n-th retry (1-based): Retry-After first, else backoff."""
    server_delay = exc.retry_after if isinstance(exc, (RateLimitedError, ServerError)) else None
    if server_delay is not None:
        return min(server_delay, policy.max_retry_after)
    return policy.backoff(retry_number)


async def retry_call(
    attempt: Callable[[A], Awaitable[T]],
    argument: A,
    *,
    policy: RetryPolicy,
    idempotent: bool,
    sleep: Callable[[float], Awaitable[None]],
    endpoint: str,
) -> T:
    """Await ``attempt(argument)`` until it succeeds, a fault is not transient, or none are left.

    ``argument`` lets a caller pass a bound method and its call's state instead of
    building a closure for every call.
    """
    try:
        return await attempt(argument)
    except Exception as exc:
        if policy.attempts < 2 or not is_transient(exc, idempotent=idempotent, policy=policy):
            raise
        first_failure = exc
    return await _retry_after_failure(
        attempt,
        argument,
        first_failure,
        policy=policy,
        idempotent=idempotent,
        sleep=sleep,
        endpoint=endpoint,
    )


async def _retry_after_failure(
    attempt: Callable[[A], Awaitable[T]],
    argument: A,
    first_failure: Exception,
    *,
    policy: RetryPolicy,
    idempotent: bool,
    sleep: Callable[[float], Awaitable[None]],
    endpoint: str,
) -> T:
    """Run the attempts left after a transient first failure, under tenacity."""

    def retryable(exc: BaseException) -> bool:
        return is_transient(exc, idempotent=idempotent, policy=policy)

    def log_retry(exc: BaseException | None, attempt_number: int, delay: float) -> None:
        resends = _UNSAFE_RESENDS.get()
        if not idempotent and exc is not None and may_have_reached_server(exc):
            log.warning("resending %s after %s: may duplicate it", endpoint, type(exc).__name__)
            if resends is not None:
                resends.append(type(exc).__name__)
        log.debug(
            "retrying %s after %s (attempt %d of %d) in %.2fs",
            endpoint,
            type(exc).__name__,
            attempt_number,
            policy.attempts,
            delay,
        )

    delay = _wait(first_failure, 1, policy)
    log_retry(first_failure, 1, delay)
    await sleep(delay)

    # Attempt numbers below count from the first retry; the bare attempt came before.
    def wait(state: _t.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return _wait(exc, state.attempt_number + 1, policy)

    def before_sleep(state: _t.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log_retry(exc, state.attempt_number + 1, delay)

    retrying = _t.AsyncRetrying(
        stop=_t.stop_after_attempt(policy.attempts - 1),
        wait=wait,
        retry=_t.retry_if_exception(retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt, argument)
