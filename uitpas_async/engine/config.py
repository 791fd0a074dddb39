"""Frozen policy objects that configure the client, with their defaults as named constants."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from uitpas_async.engine.errors import ConfigurationError, InvalidArgumentError

__all__ = ["Limits", "PollPolicy", "RetryPolicy", "Timeouts", "credentials_from_env"]


DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_DOWNLOAD_TIMEOUT = 600.0
DEFAULT_MAX_CONCURRENT_REQUESTS = 20
DEFAULT_MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
DEFAULT_RETRY_ATTEMPTS = 5
DEFAULT_INITIAL_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 30.0
DEFAULT_MAX_RETRY_AFTER = 120.0
DEFAULT_POLL_INITIAL_DELAY = 2.0
DEFAULT_POLL_MULTIPLIER = 1.5
DEFAULT_POLL_MAX_INTERVAL = 60.0
DEFAULT_POLL_TIMEOUT = 3600.0
#: Three full download attempts of DEFAULT_DOWNLOAD_TIMEOUT, whichever layer makes them.
DEFAULT_JOB_DOWNLOAD_TIMEOUT = 1800.0


def capped_growth(initial: float, factor: float, steps: int, cap: float) -> float:
    """Return ``min(cap, initial * factor**steps)`` without overflowing for huge ``steps``."""
    if factor > 1 and cap > initial:
        # Past this many steps the product is above the cap anyway.
        steps = min(steps, math.ceil(math.log(cap / initial, factor)) + 1)
    elif factor > 1:
        return cap
    return min(cap, initial * factor**steps)


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise InvalidArgumentError(f"{attribute.name} must be positive, got {value!r}")


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise InvalidArgumentError(f"{attribute.name} must be positive or None, got {value!r}")


@attrs.frozen
class Timeouts:
    """Per-attempt timeouts in seconds; waiting for a slot or a rate token never counts."""

    connect: float = attrs.field(default=DEFAULT_CONNECT_TIMEOUT, validator=_positive)
    #: Whole API call (send and read the XML answer), per attempt.
    request: float = attrs.field(default=DEFAULT_REQUEST_TIMEOUT, validator=_positive)
    #: Whole report download, per attempt.
    download: float = attrs.field(default=DEFAULT_DOWNLOAD_TIMEOUT, validator=_positive)


@attrs.frozen
class Limits:
    """How hard the client may push the server."""

    #: HTTP requests in flight at once, across all callers of one client.
    max_concurrent_requests: int = attrs.field(
        default=DEFAULT_MAX_CONCURRENT_REQUESTS, validator=_positive
    )
    #: Requests per second across the client (token bucket, no initial burst); None = unlimited.
    rate_limit: float | None = attrs.field(default=None, validator=_optional_positive)
    #: Largest report download accepted, in bytes.
    max_download_bytes: int = attrs.field(default=DEFAULT_MAX_DOWNLOAD_BYTES, validator=_positive)


@attrs.frozen
class RetryPolicy:
    """Which transient faults are retried, and how long to wait between attempts.

    Waits honour ``Retry-After`` (capped at ``max_retry_after``) and otherwise
    back off exponentially with full jitter, capped at ``max_backoff``.
    """

    #: Attempts per call, the first one included; 1 disables retries.
    attempts: int = attrs.field(default=DEFAULT_RETRY_ATTEMPTS, validator=_positive)
    initial_backoff: float = attrs.field(default=DEFAULT_INITIAL_BACKOFF, validator=_positive)
    max_backoff: float = attrs.field(default=DEFAULT_MAX_BACKOFF, validator=_positive)
    max_retry_after: float = attrs.field(default=DEFAULT_MAX_RETRY_AFTER, validator=_positive)
    #: Retry a create whose request may have reached the server (risks a duplicate report).
    retry_unsafe_creates: bool = False

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Return a full-jitter exponential wait for the n-th retry (1-based)."""
        ceiling = capped_growth(self.initial_backoff, 2.0, retry_number - 1, self.max_backoff)
        return (rng or random).uniform(0, ceiling)

    @classmethod
    def none(cls) -> RetryPolicy:
        """Return a policy that never retries."""
        return cls(attempts=1)


@attrs.frozen
class PollPolicy:
    """How to poll one report: wait first, back off with full jitter, stop at a deadline.

    The deadlines of a report job: ``timeout`` for its generation (polling), and
    ``download_timeout`` for its download.
    """

    #: Wait before the first poll; generation never finishes instantly.
    initial_delay: float = attrs.field(default=DEFAULT_POLL_INITIAL_DELAY, validator=_positive)
    multiplier: float = attrs.field(default=DEFAULT_POLL_MULTIPLIER, validator=_positive)
    max_interval: float = attrs.field(default=DEFAULT_POLL_MAX_INTERVAL, validator=_positive)
    #: Give up on a report this long after it was created.
    timeout: float = attrs.field(default=DEFAULT_POLL_TIMEOUT, validator=_positive)
    #: Give up on a report's download this long after it first started, over every
    #: attempt of the client and the orchestrator (``Timeouts.download`` bounds one).
    download_timeout: float = attrs.field(default=DEFAULT_JOB_DOWNLOAD_TIMEOUT, validator=_positive)
    #: Spread waits uniformly below the exponential envelope, so jobs started together
    #: do not poll in lockstep.
    jitter: bool = True

    def delay(self, poll_number: int, rng: random.Random | None = None) -> float:
        """Return the wait before the n-th poll (0-based: 0 is the first poll)."""
        if poll_number == 0:
            return self.initial_delay
        ceiling = capped_growth(self.initial_delay, self.multiplier, poll_number, self.max_interval)
        if not self.jitter:
            return ceiling
        # Full jitter, but never below the first delay's scale: polling faster than
        # the initial delay only burns requests.
        return (rng or random).uniform(min(self.initial_delay, ceiling), ceiling)


#: The defaults, shared because the policies are frozen.
DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_LIMITS = Limits()
DEFAULT_RETRY = RetryPolicy()
DEFAULT_POLL = PollPolicy()


def credentials_from_env(
    names: Sequence[str], environ: Mapping[str, str] | None = None, *, strip: bool = False
) -> tuple[str, ...]:
    """Return the named credential variables' values, in order, or name the missing ones.

    ``strip`` takes blank space around a value off (and so a blank value as missing).

    Raises:
        ConfigurationError: one or more are missing or empty; no value is shown.
    """
    env = os.environ if environ is None else environ
    values = tuple(env.get(name, "").strip() if strip else env.get(name, "") for name in names)
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        listed = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
        raise ConfigurationError(f"missing credentials: set {listed} (or use --sandbox)")
    return values
