"""What every sandbox's frozen config shares: attrs validators and the common tunables."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import attrs

__all__ = [
    "DEFAULT_GENERATION_MEDIAN",
    "DEFAULT_RATE_BURST",
    "DEFAULT_TIME_SCALE",
    "BaseSandboxConfig",
    "SandboxSetup",
    "check_non_negative",
    "check_positive",
    "check_positive_or_none",
    "check_probability",
    "count_or_items",
]

_Item = TypeVar("_Item")
#: Covariant: a setup is read-only, so a provider's setup is a setup of the base config.
_Config = TypeVar("_Config", bound="BaseSandboxConfig", covariant=True)

#: Server seconds a report takes to generate when nothing else is said.
DEFAULT_GENERATION_MEDIAN = 2.0
#: Token-bucket capacity of the rate limit: 1 means no burst at all.
DEFAULT_RATE_BURST = 1.0
#: Server time runs as fast as real time.
DEFAULT_TIME_SCALE = 1.0


def check_probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    """Refuse a chance outside [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must lie in [0, 1], not {value!r}")


def check_non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    """Refuse a negative number."""
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value!r}")


def check_positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    """Refuse zero or a negative number."""
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def check_positive_or_none(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    """Refuse zero or a negative number; None (for "off") passes."""
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive or None, not {value!r}")


def count_or_items(value: int | Iterable[_Item], what: str) -> int | tuple[_Item, ...]:
    """Return how many ``what`` to generate (at least 1), or the given ones as a non-empty tuple."""
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{what} must be at least 1")
        return value
    items = tuple(value)
    if not items:
        raise ValueError(f"{what} must not be empty")
    return items


@attrs.frozen(kw_only=True)
class BaseSandboxConfig:
    """The tunables every sandbox has (keyword-only); all durations are server seconds.

    A provider's config subclasses this with ``@attrs.frozen`` and adds its own
    fields (its fault rules, credentials, paths); these stay keyword-only so the
    subclass's own fields keep their positions.
    """

    #: Median seconds a report takes to generate.
    generation_median: float = attrs.field(
        default=DEFAULT_GENERATION_MEDIAN, validator=check_non_negative
    )
    #: Lognormal sigma of generation times; 0 makes every report take exactly the median.
    generation_sigma: float = attrs.field(default=0.0, validator=check_non_negative)
    #: Multiplies every server-side duration (generation, slow answers, Retry-After, ...).
    time_scale: float = attrs.field(default=DEFAULT_TIME_SCALE, validator=check_non_negative)
    #: Seeds every random choice: ids, generation times, faults, report content.
    seed: int = 0
    #: Requests per real second the token bucket admits; None disables the limit.
    rate_limit: float | None = attrs.field(default=None, validator=check_positive_or_none)
    #: Token-bucket capacity (requests admitted back to back after a quiet spell).
    rate_burst: float = attrs.field(default=DEFAULT_RATE_BURST, validator=check_positive)

    def scaled(self, seconds: float) -> float:
        """Return ``seconds`` of server time in real seconds."""
        return seconds * self.time_scale

    def generation_seconds(self, rng: random.Random) -> float:
        """Return the real seconds one report takes to generate, lognormal around the median."""
        median, sigma = self.generation_median, self.generation_sigma
        if median <= 0:
            return 0.0
        # Draw only when there is spread, so sigma 0 leaves the RNG sequence to the rest.
        drawn = rng.lognormvariate(math.log(median), sigma) if sigma > 0 else median
        return self.scaled(drawn)


@attrs.frozen
class SandboxSetup(Generic[_Config]):
    """What a provider builds its sandbox from: config, seeded RNG and the two clocks."""

    config: _Config
    #: The one RNG every random choice draws from (ids, generation, faults, content).
    rng: random.Random
    #: Monotonic seconds (generation, tokens, rate limit) and POSIX seconds (dates, stamps).
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
