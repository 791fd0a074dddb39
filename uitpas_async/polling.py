"""When to poll: blind backoff at first, then a schedule learned from the batch.

Reports started together by one server take similar, roughly lognormal times.
Until a few have completed, each job backs off exponentially with full jitter
(:class:`~uitpas_async.config.PollPolicy`). Once ``min_samples`` jobs have
completed, the scheduler fits a lognormal to their observed generation times
and polls every job on a geometric grid: the first poll near a low quantile
of the fitted distribution, then each poll at ``elapsed * (1 + target_lag)``.
A geometric grid bounds the detection lag as a fraction of the generation
time (a report done at ``G`` is seen by ``G * (1 + target_lag)``), which is
the figure that matters when generation times span an order of magnitude.
"""

from __future__ import annotations

import math
import random

from .config import PollPolicy

__all__ = ["BatchPollScheduler"]

#: Completions needed before the batch's timing is trusted over blind backoff.
DEFAULT_MIN_SAMPLES = 5
#: Detection lag aimed at, as a fraction of a job's generation time.
DEFAULT_TARGET_LAG = 0.08
#: Shortest wait between two polls of one job on the learned grid, in seconds.
MIN_LEARNED_INTERVAL = 1e-3
#: The first learned poll lands this many standard deviations below the log-mean.
DEFAULT_LOW_QUANTILE_Z = 2.0


class BatchPollScheduler:
    """Shared by the jobs of one batch: learns generation times, hands out poll delays."""

    __slots__ = (
        "_count",
        "_min_samples",
        "_policy",
        "_rng",
        "_sum",
        "_sum_squares",
        "_target_lag",
        "_z",
    )

    def __init__(
        self,
        policy: PollPolicy,
        *,
        rng: random.Random | None = None,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        target_lag: float = DEFAULT_TARGET_LAG,
        low_quantile_z: float = DEFAULT_LOW_QUANTILE_Z,
    ) -> None:
        # Blind backoff until the batch has taught us something.
        self._policy = policy
        self._rng = rng or random.Random()
        # Running count, sum and sum of squares of the observed generation times'
        # natural logs: O(1) per poll however large the batch.
        self._count = 0
        self._sum = 0.0
        self._sum_squares = 0.0
        self._min_samples = min_samples
        self._target_lag = target_lag
        self._z = low_quantile_z

    @property
    def learned(self) -> bool:
        """Whether enough jobs have completed to schedule from their times."""
        return self._count >= self._min_samples

    def observe(self, generation_time: float) -> None:
        """Record how long one job took from creation until it was seen completed."""
        if generation_time > 0:
            value = math.log(generation_time)
            self._count += 1
            self._sum += value
            self._sum_squares += value * value

    def first_learned_poll(self) -> float | None:
        """Return the elapsed time of the first poll on the learned grid, if learned."""
        if not self.learned:
            return None
        mu = self._sum / self._count
        variance = max(0.0, self._sum_squares / self._count - mu * mu)
        return math.exp(mu - self._z * math.sqrt(variance))

    def next_delay(self, elapsed: float, poll_number: int) -> float:
        """Return how long to wait before the next poll of a job ``elapsed`` seconds old."""
        first = self.first_learned_poll()
        if first is None:
            return self._policy.delay(poll_number, self._rng)
        if elapsed < first:
            # Land on or just after the first grid point, spread over one grid step so
            # jobs created together do not arrive at once (and never short of it, or
            # the waits would shrink towards it forever).
            return first - elapsed + first * self._target_lag * self._rng.random()
        interval = elapsed * self._target_lag * self._rng.uniform(0.9, 1.0)
        return min(self._policy.max_interval, max(interval, MIN_LEARNED_INTERVAL))
