"""When to poll: scale-free scouts find when reports complete, then every job polls on a grid.

Reports started together by one server take similar, roughly lognormal times,
so the batch can learn its own timing. A job is enlisted as a *scout* (the
first few, then one in every ``scout_every``), a *probe* (one in ``probe_every``
of the others) or a *waiter*:

* Before anything has completed, only scouts poll, and they assume no time
  scale: the first poll comes ``first_poll`` (30 ms) after creation, and each
  wait is ``target_lag`` of the scout's age, a geometric ladder, so a scout
  costs ``log(G / first_poll) / log(1 + target_lag)`` polls: about 25 at 0.3 s,
  the same plus 25 per tenfold longer report (100 at 300 s). The others wait,
  spending no requests and no timers (or, should every scout fail first, back
  off on their own).
* Once ``probe_quantile`` (1.5%) of the scouts have completed, the probes start
  on the grid from that time. With the scouts they are the sample the grid
  start is learned from. The 3% quantile of about N/8 scouts alone lands
  anywhere from the 1% to the 6% quantile of the batch, too early (every job
  polls more) or too late (early reports are seen late) by turns; with about
  N/3 probes the sample is three times larger and the start twice as sure,
  for two or three more polls of each probe.
* Once ``start_quantile`` (4.5%) of the scouts and probes have completed, the
  schedule is learned: they are a random sample of the batch, so that time
  estimates the same quantile of every job. From it on, every job polls on a
  geometric grid, each poll at ``elapsed * (1 + target_lag)``. Such a grid
  bounds the detection lag as a fraction of the generation time, the figure
  that matters when generation times span an order of magnitude, and it needs
  no model of the distribution.
* Given a *history* (generation times observed in earlier runs: plain data
  that the caller reads from its journal, see :class:`GenerationHistory`) of
  at least ``MIN_HISTORY_SAMPLES``, the grid start is that history's 3% quantile,
  and the batch skips scouting: every job waits for the grid from its first poll.
* The batch is done when its last report is, so the last ``TAIL_SHARE`` of
  the jobs poll at a third of their grid step (no finer than the first step).
* When the client has a request-rate limit, polls are spaced so that the jobs
  waiting together spend at most ``POLL_RATE_SHARE`` of it, leaving the rest
  for creates and downloads. Under a rate limit every wasted poll delays the
  whole batch.

A job resumed from the journal is enlisted like any other when the journal
knows when its report was created: ``elapsed`` is the report's age. Only a job
whose creation time is unknown, and every job when learning is turned off,
polls on its own: exponential backoff with full jitter
(:class:`~uitpas_async.engine.config.PollPolicy`), or, once the grid is known,
one grid step of its age since the resume.

:class:`SingleReportSchedule` is the same idea for one report awaited alone:
a scale-free ladder without history, a fine grid from its history's early
quantile with one.

This module does no I/O and reads no clock; callers give it elapsed times.
"""

from __future__ import annotations

import bisect
import enum
import math
import random
import statistics
from collections.abc import Iterable, Sequence

import attrs

from uitpas_async.engine.config import DEFAULT_POLL_MAX_INTERVAL, PollPolicy

__all__ = [
    "BatchPollScheduler",
    "GenerationHistory",
    "GenerationSample",
    "PollRole",
    "SingleReportSchedule",
]

#: Longest a job goes unseen on the grid, as a fraction of its age: each grid step is
#: this fraction of the job's age, exactly (no jitter: the random phase at which jobs
#: join keeps them apart, and a jittered step is a shorter one, more polls for no lag
#: gained). 2% under the 10% target, the room the machine takes (a poll sent late, a
#: status call in flight). See benchmarks/README.md for the figures behind it.
DEFAULT_TARGET_LAG = 0.098
#: The grid starts once this fraction of the scouts and probes has completed.
DEFAULT_START_QUANTILE = 0.045
#: From a history the grid starts at this quantile of it. No sample of this run's
#: decides it, so it can start earlier for the same polls: a history is last quarter's
#: draws, not this one's, and the 4.5% left this run's p95 lag at 9.9% in virtual time.
DEFAULT_HISTORY_QUANTILE = 0.03
#: After the first ``DEFAULT_MIN_SCOUTS`` jobs, one job in this many scouts.
DEFAULT_SCOUT_EVERY = 8
DEFAULT_MIN_SCOUTS = 5
#: Of the other jobs, one in this many probes: it starts on the grid once this
#: fraction of the scouts has completed ...
DEFAULT_PROBE_EVERY = 3
DEFAULT_PROBE_QUANTILE = 0.015
#: A scout's first poll, in seconds after creation: below any report seen so far, and
#: low enough that at a 0.3 s median with sigma 1 only 1% of reports are done by then
#: (at 50 ms, 4%: the grid was learned from the first polls and started too late).
DEFAULT_FIRST_POLL = 0.03
#: Before any report has completed, each scout waits ``scout_widen - 1`` of its age;
#: once one has, ``target_lag``. By default both are ``target_lag``. A coarser first
#: ladder saves scout polls, but a scout asleep on a coarse step when the first reports
#: complete sees its own up to one such step late, and the grid is learned late: the
#: batch's earliest jobs, the ones the grid start is for, are then seen late (p95 lag
#: 16% with 1.25, in virtual time).
#: Share of a rate-limited client's requests that polls may use.
POLL_RATE_SHARE = 0.8
#: Once no more than this share of the batch waits, polls keep the first grid step.
TAIL_SHARE = 0.05
#: ... and each of those polls at this fraction of its grid step.
TAIL_STEP = 1 / 3
#: Shortest wait between two polls of one job, in seconds.
MIN_INTERVAL = 1e-3
#: Samples of history the batch needs to start its grid without scouting.
MIN_HISTORY_SAMPLES = 30
#: History older than this (seconds; about four months, so last quarter counts) is ignored.
DEFAULT_HISTORY_MAX_AGE = 120 * 86400.0
#: Samples a history keeps per provider, newest first (bounded memory).
DEFAULT_HISTORY_KEEP = 5000
#: Ladder positions within this of a whole step count as on it (float rounding).
_LADDER_EPSILON = 1e-9


# -- history: plain data ------------------------------------------------------------------


@attrs.frozen
class GenerationSample:
    """One report's observed generation time: created to first seen completed."""

    #: Seconds from creation until a status call first said "completed".
    seconds: float
    provider: str
    balie: str
    #: Wall-clock time (seconds since the epoch) it was seen completed.
    observed_at: float


@attrs.frozen
class GenerationHistory:
    """Observed generation times, newest first: what a journal or a client remembers."""

    samples: tuple[GenerationSample, ...] = ()

    def recent(
        self,
        *,
        provider: str,
        now: float,
        balie: str | None = None,
        max_age: float = DEFAULT_HISTORY_MAX_AGE,
    ) -> tuple[float, ...]:
        """Return the times of ``provider`` (and ``balie``) seen within ``max_age`` of ``now``."""
        return tuple(
            sample.seconds
            for sample in self.samples
            if sample.provider == provider
            and (balie is None or sample.balie == balie)
            and now - max_age <= sample.observed_at
            and math.isfinite(sample.seconds)
            and sample.seconds > 0
        )

    def adding(
        self, samples: Iterable[GenerationSample], *, keep: int = DEFAULT_HISTORY_KEEP
    ) -> GenerationHistory:
        """Return this history with ``samples`` in front, at most ``keep`` per provider."""
        merged = sorted((*samples, *self.samples), key=lambda s: s.observed_at, reverse=True)
        counts: dict[str, int] = {}
        kept = []
        for sample in merged:
            seen = counts.get(sample.provider, 0)
            if seen < keep:
                counts[sample.provider] = seen + 1
                kept.append(sample)
        return GenerationHistory(tuple(kept))


def _quantile(ordered: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` quantile of sorted values, interpolating linearly."""
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _history_start(history: Sequence[float], quantile: float, target_lag: float) -> float:
    """Return where a grid learned from ``history`` starts.

    A past time was seen up to one grid step after the report completed, so half a
    step on average: the start moves that much earlier. And the earliest past times
    are censored: a report that completed before the past run's grid start was seen
    at it. So the start is also no later than the same quantile of a lognormal fitted
    to the history's middle (16% to 84%), which no grid start censors.
    """
    ordered = sorted(history)
    logs = [math.log(_quantile(ordered, q)) for q in (0.16, 0.5, 0.84)]
    z = statistics.NormalDist().inv_cdf(quantile)
    fitted = math.exp(logs[1] + z * (logs[2] - logs[0]) / 2)
    return min(_quantile(ordered, quantile), fitted) / (1 + target_lag / 2)


class PollRole(enum.Enum):
    """How one job of the batch polls."""

    #: Polls from the start, so the batch learns when reports complete.
    SCOUT = "scout"
    #: Waits until the first scouts have completed, then polls on the grid from there:
    #: with the scouts, the sample the grid start is learned from.
    PROBE = "probe"
    #: Waits until the scouts and probes have learned, then polls on the grid.
    WAITER = "waiter"
    #: Backs off on its own: its creation time is unknown, or learning is off.
    SOLO = "solo"


class BatchPollScheduler:
    """Shared by the jobs of one batch: enlists scouts, learns when to poll, hands out delays."""

    __slots__ = (
        "_enlisted",
        "_first_poll",
        "_first_seen",
        "_from_history",
        "_grid_start",
        "_learn",
        "_min_scouts",
        "_policy",
        "_poll_rate",
        "_probe_every",
        "_probe_quantile",
        "_probe_start",
        "_probes",
        "_rng",
        "_sample_times",
        "_scout_every",
        "_scout_widen",
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
        history_quantile: float = DEFAULT_HISTORY_QUANTILE,
        scout_every: int = DEFAULT_SCOUT_EVERY,
        min_scouts: int = DEFAULT_MIN_SCOUTS,
        probe_every: int | None = DEFAULT_PROBE_EVERY,
        probe_quantile: float = DEFAULT_PROBE_QUANTILE,
        first_poll: float = DEFAULT_FIRST_POLL,
        scout_widen: float | None = None,
        request_rate: float | None = None,
        history: Sequence[float] = (),
    ) -> None:
        self._policy = policy
        self._rng = rng or random.Random()
        self._learn = learn
        self._target_lag = target_lag
        self._start_quantile = start_quantile
        self._scout_every = scout_every
        self._min_scouts = min_scouts
        self._probe_every = probe_every
        self._probe_quantile = probe_quantile
        self._first_poll = first_poll
        # By default the scouts' ladder is the grid's own (see the module's constants).
        self._scout_widen = 1 + target_lag if scout_widen is None else scout_widen
        # Polls per second the batch may spend, or None when the client is not limited.
        self._poll_rate = request_rate * POLL_RATE_SHARE if request_rate else None
        # Jobs enlisted so far, and how many of them scout and probe.
        self._enlisted = 0
        self._scouts = 0
        self._probes = 0
        # Jobs now waiting for their report, and how many of them scout.
        self._waiting = 0
        self._waiting_scouts = 0
        # The observed generation times of scouts and probes, sorted, until learned.
        self._sample_times: list[float] = []
        # The first time a scout saw its report, ending the coarse phase.
        self._first_seen: float | None = None
        # Elapsed time of the probes' first poll, once the first scouts have completed.
        self._probe_start: float | None = None
        # Elapsed time of the first poll on the learned grid.
        self._grid_start: float | None = None
        usable = [t for t in history if math.isfinite(t) and t > 0]
        self._from_history = learn and len(usable) >= MIN_HISTORY_SAMPLES
        if self._from_history:
            self._grid_start = _history_start(usable, history_quantile, target_lag)

    @property
    def learned(self) -> bool:
        """Whether the batch knows when its reports start completing."""
        return self._grid_start is not None

    @property
    def from_history(self) -> bool:
        """Whether the grid came from the history given, so nobody scouts."""
        return self._from_history

    @property
    def grid_start(self) -> float | None:
        """Return the elapsed time of the first poll on the learned grid, if learned."""
        return self._grid_start

    def enlist(self, *, timed: bool = True) -> PollRole:
        """Count a job that starts waiting for its report; return how it polls.

        ``timed`` says whether the job's creation time is known (it is not for a
        job resumed from a journal that did not record it).
        """
        if not (self._learn and timed):
            role = PollRole.SOLO
        elif self._from_history:
            role = PollRole.WAITER
        elif self._enlisted < self._min_scouts or self._enlisted % self._scout_every == 0:
            role = PollRole.SCOUT
        elif self._probe_every and (self._enlisted - self._scouts) % self._probe_every == 0:
            role = PollRole.PROBE
        else:
            role = PollRole.WAITER
        self._enlisted += 1
        self._waiting += 1
        if role is PollRole.SCOUT:
            self._scouts += 1
            self._waiting_scouts += 1
        elif role is PollRole.PROBE:
            self._probes += 1
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
        """Whether a job should wait, without polling, until the scouts release its role.

        Waiters wait while :attr:`scouting`; probes only until the first scouts
        have completed (or every scout has given up).
        """
        if role is PollRole.PROBE:
            return self._probe_start is None and self.scouting
        return role is PollRole.WAITER and self.scouting

    def observe(self, generation_time: float, role: PollRole) -> bool:
        """Record a job seen completed ``generation_time`` after creation.

        Return True when this observation releases waiting jobs (the probes, or
        everyone once the schedule is learned), so that the caller can wake them.
        """
        if role not in (PollRole.SCOUT, PollRole.PROBE) or self.learned:
            return False
        if self._first_seen is None:
            self._first_seen = generation_time
        bisect.insort(self._sample_times, generation_time)
        # A time is when the job was seen completed: up to one fine step after it
        # completed, half a step on average. The grid starts that much earlier.
        early = 1 + self._target_lag / 2
        released = False
        if self._probe_start is None and self._probe_every:
            # Only scouts poll yet: their first completions release the probes.
            needed = max(1, math.ceil(self._probe_quantile * self._scouts))
            if len(self._sample_times) < needed:
                return False
            self._probe_start = self._sample_times[needed - 1] / early
            released = True
        # Scouts and probes are one random sample of the batch from here: a probe
        # seen at its first poll completed before it, and counts as completed.
        needed = max(1, math.ceil(self._start_quantile * (self._scouts + self._probes)))
        if len(self._sample_times) < needed:
            return released
        self._grid_start = self._sample_times[needed - 1] / early
        self._sample_times = []
        return True

    def next_delay(self, elapsed: float, poll_number: int, role: PollRole) -> float:
        """Return how long a job ``elapsed`` seconds old waits before its next poll.

        Not asked while the job :meth:`waits_for_learning`.
        """
        start = self._grid_start
        if role is PollRole.SOLO:
            if start is None:
                return self._policy.delay(poll_number, self._rng)
            # Age unknown, but at least the time since the resume: a grid step of
            # that (or of the grid start) is never coarser than the grid.
            return self._interval(max(elapsed, start), self._waiting)
        if start is None and role is PollRole.PROBE:
            start = self._probe_start
        if start is None:
            if role is not PollRole.SCOUT:
                # Every scout gave up before any completed: back off alone, the first
                # poll at once, since the job has waited for the scouts already (maybe
                # until just before its own deadline).
                if poll_number == 0:
                    return min(self._policy.initial_delay, self._first_poll)
                return self._policy.delay(poll_number, self._rng)
            return self._scout_delay(elapsed)
        if elapsed < start:
            # Land on the first grid point, spread over one grid step so that jobs
            # created together do not arrive at once.
            spread = max(start * self._target_lag, self._budget_interval(self._waiting))
            return start - elapsed + spread * self._rng.random()
        if role is not PollRole.SCOUT and poll_number == 0:
            # Woken past the grid start: join the grid at a random phase of one step,
            # not all together.
            return self._interval(elapsed, self._waiting) * self._rng.random()
        return self._interval(elapsed, self._waiting)

    def _scout_delay(self, elapsed: float) -> float:
        """A scout's wait before anything is learned: scale-free, coarse then fine."""
        if elapsed < self._first_poll:
            # Past first_poll, jittered by one step, so the next call is past it too.
            spread = max(
                self._first_poll * self._target_lag, self._budget_interval(self._waiting_scouts)
            )
            return self._first_poll - elapsed + spread * self._rng.random()
        widen = self._scout_widen - 1 if self._first_seen is None else self._target_lag
        step = max(elapsed * widen, self._budget_interval(self._waiting_scouts))
        return min(self._policy.max_interval, max(step, MIN_INTERVAL))

    def _interval(self, elapsed: float, polling_jobs: int) -> float:
        """One grid step from ``elapsed``, widened to keep ``polling_jobs`` within the budget."""
        step = elapsed * self._target_lag
        if self._grid_start is not None and self._waiting <= TAIL_SHARE * self._enlisted:
            # The batch's last jobs decide when it is done: they poll TAIL_STEP of a grid
            # step (but no finer than the first one), which ends the batch sooner and,
            # unlike the first step's interval, costs a bounded number of polls however
            # long the tail is.
            step = min(step, max(self._grid_start * self._target_lag, step * TAIL_STEP))
        step = max(step, self._budget_interval(polling_jobs))
        return min(self._policy.max_interval, max(step, MIN_INTERVAL))

    def _budget_interval(self, polling_jobs: int) -> float:
        """Shortest interval per job that keeps ``polling_jobs`` within the poll budget."""
        if self._poll_rate is None:
            return 0.0
        return polling_jobs / self._poll_rate


# -- one report awaited alone ---------------------------------------------------------------

#: One report without history: the first poll comes this long after creation (at
#: most one ratio later, for the random phase) ...
SINGLE_FIRST_POLL = 0.12
#: ... and each poll this factor after the one before. With a random phase the p95
#: detection lag is ``ratio ** 0.95 - 1`` (23.6%) at every time scale above a few first
#: polls; at a 0.3 s median (sigma 0.5) 1% of reports come before the first poll, and it
#: is 24.2%: a point under the 25% target left for the machine (the ladder of 1.26 from
#: 0.1 s had 24.8%, and measured 26% there). A report of ``G`` seconds needs
#: ``1 + log(G / 0.12) / log(1.25)`` polls: 5 at 0.3 s, 24 at 20 s, 36 at 300 s.
SINGLE_BLIND_RATIO = 1.25
#: Samples of history a single report needs to use it.
SINGLE_MIN_HISTORY = 3
#: With history the grid starts this many (log) standard deviations below its log-mean:
#: 4% of reports come earlier, seen late, which leaves room for the offset between the
#: server's creation time and the client's (a round trip, more on a loaded machine).
SINGLE_START_Z = 1.75
#: A few samples say little about the spread: their log standard deviation is pooled
#: with this prior, as if ``SINGLE_PRIOR_WEIGHT`` more samples had shown it.
SINGLE_PRIOR_SIGMA = 0.5
SINGLE_PRIOR_WEIGHT = 4


@attrs.frozen
class SingleReportSchedule:
    """When to poll one report: a geometric ladder of poll times from ``first_poll``.

    Build one with :meth:`for_report`; :meth:`delay` is a pure function of the
    report's age, so a report resumed in another process keeps its schedule.
    """

    #: Age of the report (seconds since its creation) at its first poll.
    first_poll: float
    #: Each poll comes this factor of the report's age after the previous one.
    ratio: float
    max_interval: float = DEFAULT_POLL_MAX_INTERVAL
    #: Whether the ladder was placed from history (else it assumes no time scale).
    from_history: bool = False

    @classmethod
    def for_report(
        cls,
        history: Sequence[float] = (),
        *,
        rng: random.Random | None = None,
        max_interval: float = DEFAULT_POLL_MAX_INTERVAL,
        target_lag: float = DEFAULT_TARGET_LAG,
    ) -> SingleReportSchedule:
        """Return the schedule of a report whose like took ``history`` seconds before.

        Without enough history, the ladder starts at ``SINGLE_FIRST_POLL`` and
        steps by ``SINGLE_BLIND_RATIO``; with it, it starts below the history's
        early quantile and steps by ``1 + target_lag``. The ladder's phase is
        random, so no report's time falls always just after a poll.
        """
        phase = (rng or random).random()
        usable = [t for t in history if math.isfinite(t) and t > 0]
        if len(usable) < SINGLE_MIN_HISTORY:
            return cls(
                SINGLE_FIRST_POLL * SINGLE_BLIND_RATIO**phase, SINGLE_BLIND_RATIO, max_interval
            )
        logs = [math.log(t) for t in usable]
        mean = statistics.fmean(logs)
        spread = sum((x - mean) ** 2 for x in logs)
        pooled = math.sqrt(
            (spread + SINGLE_PRIOR_WEIGHT * SINGLE_PRIOR_SIGMA**2)
            / (len(logs) - 1 + SINGLE_PRIOR_WEIGHT)
        )
        # History holds estimates of when reports completed (between the last two
        # polls, see engine.single), not when they were seen.
        start = math.exp(mean - SINGLE_START_Z * pooled)
        ratio = 1 + target_lag
        return cls(start * ratio**phase, ratio, max_interval, from_history=True)

    def delay(self, elapsed: float) -> float:
        """Return the wait from a report ``elapsed`` seconds old to its next poll."""
        if elapsed < self.first_poll:
            return max(self.first_poll - elapsed, MIN_INTERVAL)
        # At a ladder point the logarithm may round just below a whole number.
        position = math.log(elapsed / self.first_poll) / math.log(self.ratio)
        wait = (
            self.first_poll * self.ratio ** (math.floor(position + _LADDER_EPSILON) + 1) - elapsed
        )
        return min(self.max_interval, max(wait, MIN_INTERVAL))
