"""When to poll: a few scouts find when reports start completing, then every job polls on a grid.

Reports started together by one server take similar, roughly lognormal times,
so the batch can learn its own timing. A job is enlisted as a *scout* (the
first few, then one in every ``scout_every``) or as a waiting job:

* Before anything has completed, only scouts poll, on a fine geometric grid
  from the poll policy's initial delay. The others wait, spending no requests
  and no timers, until the scouts have learned something (or, should every
  scout fail first, back off on their own).
* Once ``start_quantile`` of the scouts have completed, the schedule is
  learned: the scouts are a random sample of the batch, so that generation
  time estimates the same quantile of every job. From it on, every job polls
  on a geometric grid, each poll at ``elapsed * (1 + target_lag)``. Such a grid
  bounds the detection lag as a fraction of the generation time, the figure
  that matters when generation times span an order of magnitude, and it needs
  no model of the distribution.
* The batch is done when its last report is, so the last ``TAIL_SHARE`` of
  the jobs keep polling at the first grid step's interval instead of a step
  that grows with their age.
* When the client has a request-rate limit, polls are spaced so that the jobs
  waiting together spend at most ``POLL_RATE_SHARE`` of it, leaving the rest
  for creates and downloads. Under a rate limit every wasted poll delays the
  whole batch.

A job whose creation time is unknown (resumed from the journal), and every job
when learning is turned off, polls on its own: exponential backoff with full
jitter (:class:`~uitpas_async.engine.config.PollPolicy`).

This module does no I/O; the orchestrator sleeps and wakes jobs as it says.
"""

from __future__ import annotations

import bisect
import enum
import math
import random

from uitpas_async.engine.config import PollPolicy

__all__ = ["BatchPollScheduler", "PollRole"]

#: Detection lag aimed at, as a fraction of a job's generation time.
DEFAULT_TARGET_LAG = 0.09
#: The grid starts once this fraction of the scouts has completed.
DEFAULT_START_QUANTILE = 0.035
#: After the first ``DEFAULT_MIN_SCOUTS`` jobs, one job in this many scouts.
DEFAULT_SCOUT_EVERY = 8
DEFAULT_MIN_SCOUTS = 5
#: Share of a rate-limited client's requests that polls may use.
POLL_RATE_SHARE = 0.8
#: Once no more than this share of the batch waits, polls keep the first grid step.
TAIL_SHARE = 0.05
#: Shortest wait between two polls of one job, in seconds.
MIN_INTERVAL = 1e-3


class PollRole(enum.Enum):
    """How one job of the batch polls."""

    #: Polls finely from the start, so the batch learns when reports complete.
    SCOUT = "scout"
    #: Waits until the scouts have learned, then polls on the grid.
    WAITER = "waiter"
    #: Backs off on its own: its creation time is unknown, or learning is off.
    SOLO = "solo"


class BatchPollScheduler:
    """Shared by the jobs of one batch: enlists scouts, learns when to poll, hands out delays."""

    __slots__ = (
        "_enlisted",
        "_grid_start",
        "_learn",
        "_min_scouts",
        "_policy",
        "_poll_rate",
        "_rng",
        "_scout_every",
        "_scout_times",
        "_scouts",
        "_start_quantile",
        "_target_lag",
        "_waiting",
        "_waiting_scouts",
    )

    def __init__(
        self,
        policy: PollPolicy,
        *,
        rng: random.Random | None = None,
        learn: bool = True,
        target_lag: float = DEFAULT_TARGET_LAG,
        start_quantile: float = DEFAULT_START_QUANTILE,
        scout_every: int = DEFAULT_SCOUT_EVERY,
        min_scouts: int = DEFAULT_MIN_SCOUTS,
        request_rate: float | None = None,
    ) -> None:
        self._policy = policy
        self._rng = rng or random.Random()
        self._learn = learn
        self._target_lag = target_lag
        self._start_quantile = start_quantile
        self._scout_every = scout_every
        self._min_scouts = min_scouts
        # Polls per second the batch may spend, or None when the client is not limited.
        self._poll_rate = request_rate * POLL_RATE_SHARE if request_rate else None
        # Jobs enlisted so far, and how many of them scout.
        self._enlisted = 0
        self._scouts = 0
        # Jobs now waiting for their report, and how many of them scout.
        self._waiting = 0
        self._waiting_scouts = 0
        # The scouts' observed generation times, sorted, until the grid is learned.
        self._scout_times: list[float] = []
        # Elapsed time of the first poll on the learned grid.
        self._grid_start: float | None = None

    @property
    def learned(self) -> bool:
        """Whether the scouts have found when the batch's reports start completing."""
        return self._grid_start is not None

    @property
    def grid_start(self) -> float | None:
        """Return the elapsed time of the first poll on the learned grid, if learned."""
        return self._grid_start

    def enlist(self, *, timed: bool = True) -> PollRole:
        """Count a job that starts waiting for its report; return how it polls.

        ``timed`` says whether the job's creation time is known (it is not for a
        job resumed from the journal).
        """
        if not (self._learn and timed):
            role = PollRole.SOLO
        elif self._enlisted < self._min_scouts or self._enlisted % self._scout_every == 0:
            role = PollRole.SCOUT
        else:
            role = PollRole.WAITER
        self._enlisted += 1
        self._waiting += 1
        if role is PollRole.SCOUT:
            self._scouts += 1
            self._waiting_scouts += 1
        return role

    def retire(self, role: PollRole) -> None:
        """Count a job that no longer waits (its report is ready, or it failed)."""
        self._waiting -= 1
        if role is PollRole.SCOUT:
            self._waiting_scouts -= 1

    @property
    def scouting(self) -> bool:
        """Whether waiters should keep waiting: nothing learned yet, and scouts still out."""
        return not self.learned and self._waiting_scouts > 0

    def waits_for_learning(self, role: PollRole) -> bool:
        """Whether a job should wait, without polling, until :attr:`scouting` ends."""
        return role is PollRole.WAITER and self.scouting

    def observe(self, generation_time: float, role: PollRole) -> bool:
        """Record a job seen completed ``generation_time`` after creation.

        Return True when this observation is the one that makes the schedule
        learned, so that the caller can wake the waiting jobs.
        """
        if role is not PollRole.SCOUT or self.learned:
            return False
        bisect.insort(self._scout_times, generation_time)
        needed = max(1, math.ceil(self._start_quantile * self._scouts))
        if len(self._scout_times) < needed:
            return False
        # A scout's time is when it was seen completed: up to one fine step after it
        # completed. The grid starts there, so the step after it is already late.
        self._grid_start = self._scout_times[needed - 1]
        self._scout_times = []
        return True

    def next_delay(self, elapsed: float, poll_number: int, role: PollRole) -> float:
        """Return how long a job ``elapsed`` seconds old waits before its next poll.

        Not asked while the job :meth:`waits_for_learning`.
        """
        if role is PollRole.SOLO:
            return self._policy.delay(poll_number, self._rng)
        start = self._grid_start
        if start is None:
            if role is PollRole.WAITER:
                # Every scout gave up before any completed: back off alone.
                return self._policy.delay(poll_number, self._rng)
            if poll_number == 0:
                return self._policy.initial_delay
            return self._interval(elapsed, self._waiting_scouts)
        if elapsed < start:
            # Land on the first grid point, spread over one grid step so that jobs
            # created together do not arrive at once.
            spread = max(start * self._target_lag, self._budget_interval(self._waiting))
            return start - elapsed + spread * self._rng.random()
        if role is PollRole.WAITER and poll_number == 0:
            # Woken past the grid start: join the grid at a random phase of one step,
            # not all together.
            return self._interval(elapsed, self._waiting) * self._rng.random()
        return self._interval(elapsed, self._waiting)

    def _interval(self, elapsed: float, polling_jobs: int) -> float:
        """One grid step from ``elapsed``, widened to keep ``polling_jobs`` within the budget."""
        step = elapsed * self._target_lag
        if self._grid_start is not None and self._waiting <= TAIL_SHARE * self._enlisted:
            # The batch's last jobs decide when it is done; polling them at the first
            # grid step's interval costs few requests and ends the batch sooner.
            step = min(step, self._grid_start * self._target_lag)
        step = max(step, self._budget_interval(polling_jobs))
        step *= self._rng.uniform(0.9, 1.0)
        return min(self._policy.max_interval, max(step, MIN_INTERVAL))

    def _budget_interval(self, polling_jobs: int) -> float:
        """Shortest interval per job that keeps ``polling_jobs`` within the poll budget."""
        if self._poll_rate is None:
            return 0.0
        return polling_jobs / self._poll_rate
