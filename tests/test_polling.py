"""The batch poll schedule: scouts, the learned grid, the request budget; alone and in a batch.

The batch tests run the orchestrator in virtual time: every sleep is a timer on
a shared fake clock, and time jumps to the next timer only when every job is
blocked, so jobs interleave as they would in real time but nothing waits.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import date
from pathlib import Path

import attrs
import pytest
from virtual_time import VirtualClock

from uitpas_async import (
    Credentials,
    DownloadedReport,
    Limits,
    PollPolicy,
    ReportOrchestrator,
    ReportRequest,
    UitpasClient,
)
from uitpas_async.engine.backend import JobRequest, StartedReport
from uitpas_async.engine.polling import POLL_RATE_SHARE, TAIL_SHARE, BatchPollScheduler, PollRole
from uitpas_async.errors import UitpasError
from uitpas_async.finam import FinamClient
from uitpas_async.xml_api.backend import UitpasBackend

START, END = date(2024, 1, 1), date(2024, 3, 31)

# -- the scheduler alone ---------------------------------------------------------------


def test_first_jobs_and_then_one_in_ten_scout() -> None:
    """The first min_scouts jobs scout, then every scout_every-th; the rest wait."""
    scheduler = BatchPollScheduler(PollPolicy(), min_scouts=3, scout_every=10)
    roles = [scheduler.enlist() for _ in range(25)]
    scouts = [index for index, role in enumerate(roles) if role is PollRole.SCOUT]
    assert scouts == [0, 1, 2, 10, 20]
    assert all(role is PollRole.WAITER for index, role in enumerate(roles) if index not in scouts)


def test_untimed_jobs_and_unlearning_batches_poll_alone() -> None:
    """A job of unknown age, or any job when learning is off, backs off on its own."""
    policy = PollPolicy(initial_delay=2.0, multiplier=2.0, jitter=False)
    resumed = BatchPollScheduler(policy).enlist(timed=False)
    assert resumed is PollRole.SOLO
    scheduler = BatchPollScheduler(policy, learn=False)
    role = scheduler.enlist()
    assert role is PollRole.SOLO
    assert [scheduler.next_delay(0.0, n, role) for n in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert not scheduler.waits_for_learning(role)


def test_before_learning_scouts_poll_finely_and_waiters_wait() -> None:
    """Scouts start at the initial delay, then step target_lag of their age; waiters wait."""
    policy = PollPolicy(initial_delay=2.0, max_interval=60.0, jitter=False)
    scheduler = BatchPollScheduler(policy, min_scouts=1, target_lag=0.1)
    scout, waiter = scheduler.enlist(), scheduler.enlist()
    assert scout is PollRole.SCOUT
    assert waiter is PollRole.WAITER
    assert scheduler.next_delay(0.0, 0, scout) == 2.0
    assert 0.9 <= scheduler.next_delay(10.0, 3, scout) <= 1.0
    assert scheduler.scouting
    assert scheduler.waits_for_learning(waiter)
    assert not scheduler.waits_for_learning(scout)
    # The only scout gives up before anything completed: the waiter backs off alone.
    scheduler.retire(scout)
    assert not scheduler.scouting
    assert not scheduler.waits_for_learning(waiter)
    assert scheduler.next_delay(0.0, 0, waiter) == 2.0


def test_the_grid_starts_at_the_scouts_quantile() -> None:
    """Learned when start_quantile of the scouts completed; waiters' observations teach nothing."""
    scheduler = BatchPollScheduler(
        PollPolicy(), min_scouts=100, start_quantile=0.03, target_lag=0.1
    )
    roles = [scheduler.enlist() for _ in range(100)]
    assert not scheduler.observe(1.0, PollRole.WAITER)
    assert not scheduler.observe(14.0, roles[0])
    assert not scheduler.observe(12.0, roles[1])
    assert not scheduler.learned
    # Three of 100 scouts: the 3% quantile is the third smallest time, 14 s.
    assert scheduler.observe(13.0, roles[2])
    assert scheduler.grid_start == pytest.approx(14.0)
    # Only the observation that taught it says so.
    assert not scheduler.observe(15.0, roles[3])
    assert not scheduler.waits_for_learning(PollRole.WAITER)


def test_learned_grid_is_geometric() -> None:
    """A young job lands within one step after the grid start; an older one steps its age."""
    scheduler = BatchPollScheduler(PollPolicy(), min_scouts=1, target_lag=0.1)
    role = scheduler.enlist()
    assert scheduler.observe(20.0, role)
    start = 20.0
    assert scheduler.grid_start == pytest.approx(start)
    for _ in range(50):
        assert start - 10.0 <= scheduler.next_delay(10.0, 0, role) <= start * 1.1 - 10.0
        assert 0.9 * 3.0 <= scheduler.next_delay(30.0, 5, role) <= 3.0


def test_the_last_jobs_keep_the_first_grid_step() -> None:
    """Once at most TAIL_SHARE of the batch waits, an old job polls at the first step's interval."""
    scheduler = BatchPollScheduler(PollPolicy(), min_scouts=1, target_lag=0.1)
    roles = [scheduler.enlist() for _ in range(100)]
    assert scheduler.observe(10.0, roles[0])
    assert 9.0 <= scheduler.next_delay(100.0, 9, roles[99]) <= 10.0
    for role in roles[: 100 - int(TAIL_SHARE * 100)]:
        scheduler.retire(role)
    assert 0.9 <= scheduler.next_delay(100.0, 9, roles[99]) <= 1.0


def test_a_rate_limit_widens_the_grid_to_fit_the_budget() -> None:
    """With R requests/s, n waiting jobs poll each at most every n / (share * R) seconds."""
    scheduler = BatchPollScheduler(PollPolicy(), min_scouts=1, target_lag=0.1, request_rate=10.0)
    roles = [scheduler.enlist() for _ in range(100)]
    assert scheduler.observe(5.0, roles[0])
    budget = 100 / (POLL_RATE_SHARE * 10.0)
    assert 0.9 * budget <= scheduler.next_delay(10.0, 3, roles[1]) <= budget
    # As jobs finish, the others may poll more often.
    for role in roles[:95]:
        scheduler.retire(role)
    assert scheduler.next_delay(10.0, 3, roles[99]) <= 1.0


# -- a whole batch in virtual time ---------------------------------------------------------


@attrs.define
class TimedBackend:
    """Reports ready ``generation[label]`` virtual seconds after creation; records every poll."""

    clock: VirtualClock
    generation: dict[str, float]
    request_rate: float | None = None
    provider: str = "timed"
    ready_at: dict[str, float] = attrs.Factory(dict)
    created_at: dict[str, float] = attrs.Factory(dict)
    seen_at: dict[str, float] = attrs.Factory(dict)
    poll_times: dict[str, list[float]] = attrs.Factory(dict)

    async def resolve_request(self, request: JobRequest) -> JobRequest:
        return request

    async def start_report(self, request: JobRequest) -> StartedReport:
        label = request.label
        self.created_at[label] = self.clock.now
        self.ready_at[label] = self.clock.now + self.generation[label]
        return StartedReport(label, START, END)

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        self.poll_times.setdefault(report_id, []).append(self.clock.now)
        ready = self.clock.now >= self.ready_at[report_id]
        if ready:
            self.seen_at[report_id] = self.clock.now
        return ready

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        path = dest_dir / f"{report_id}.zip"
        return DownloadedReport(report_id, path, path.name, "application/zip", 1, "0" * 64)

    def is_report_gone(self, error: UitpasError) -> bool:
        return False

    def lags(self) -> list[float]:
        """Detection lag of every report as a fraction of its generation time."""
        return [
            (self.seen_at[label] - self.ready_at[label]) / self.generation[label]
            for label in self.generation
        ]


def _lognormal_batch(count: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    return {f"B{i:04d}": 20.0 * math.exp(rng.gauss(0.0, 0.5)) for i in range(count)}


async def _run_batch(tmp_path: Path, backend: TimedBackend, clock: VirtualClock) -> None:
    orchestrator = ReportOrchestrator(
        backend,
        tmp_path / "out",
        poll=PollPolicy(initial_delay=2.0, multiplier=1.5, max_interval=60.0),
        max_in_flight=len(backend.generation),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(3),
    )
    requests = [ReportRequest(label, START, END) for label in backend.generation]
    results = await clock.run(orchestrator.run(requests))
    assert all(result.ok for result in results)


async def test_a_lognormal_batch_is_seen_within_the_target_lag_with_few_polls(
    tmp_path: Path,
) -> None:
    """1,000 lognormal jobs (median 20 s, sigma 0.5): p95 lag under 10%, median polls <= 12."""
    clock = VirtualClock()
    backend = TimedBackend(clock, _lognormal_batch(1000, seed=11))
    await _run_batch(tmp_path, backend, clock)
    lags = sorted(backend.lags())
    assert lags[int(0.95 * len(lags))] <= 0.10
    polls = [len(times) for times in backend.poll_times.values()]
    assert statistics.median(polls) <= 12


async def test_waiting_jobs_do_not_poll_before_the_scouts_learn(tmp_path: Path) -> None:
    """Until the first reports complete, only the scouts (about one in eight) poll."""
    clock = VirtualClock()
    generation = _lognormal_batch(200, seed=5)
    backend = TimedBackend(clock, generation)
    await _run_batch(tmp_path, backend, clock)
    first_seen = min(backend.seen_at.values())
    early = {label for label, times in backend.poll_times.items() if times[0] < first_seen}
    assert 0 < len(early) <= 5 + len(generation) // 8


def _busiest_window(backend: TimedBackend, window: float) -> int:
    times = sorted(t for polls in backend.poll_times.values() for t in polls)
    starts = (step * 0.5 for step in range(int(times[-1] * 2)))
    return max(sum(1 for t in times if start <= t < start + window) for start in starts)


async def test_polls_keep_within_the_clients_rate_limit(tmp_path: Path) -> None:
    """With request_rate R, polls in any 10 s window stay about within R; unlimited, far above."""
    rate, window = 20.0, 10.0
    generation = _lognormal_batch(300, seed=2)
    limited_clock, free_clock = VirtualClock(), VirtualClock()
    limited = TimedBackend(limited_clock, generation, request_rate=rate)
    free = TimedBackend(free_clock, generation)
    await _run_batch(tmp_path / "limited", limited, limited_clock)
    await _run_batch(tmp_path / "free", free, free_clock)
    # Polls aim at POLL_RATE_SHARE of R; where the scouts' schedule hands over to
    # the grid the two overlap for a moment, and a window runs somewhat past R.
    assert _busiest_window(limited, window) <= 1.25 * rate * window
    assert _busiest_window(free, window) > 3 * rate * window


def test_backends_tell_the_orchestrator_their_request_rate(credentials: Credentials) -> None:
    """UiTPAS: the client's Limits.rate_limit; Finam: that or its per-method limit, the lower."""
    base_url = "https://test.uitid.be/uitid/rest"
    limited = UitpasClient(base_url, credentials, limits=Limits(rate_limit=7.0))
    assert UitpasBackend(limited).request_rate == 7.0
    assert UitpasBackend(UitpasClient(base_url, credentials)).request_rate is None
    assert FinamClient("s", rate_per_method=3.0).request_rate == 3.0
    assert FinamClient("s", rate_per_method=None).request_rate is None
    assert FinamClient("s", limits=Limits(rate_limit=2.0), rate_per_method=3.0).request_rate == 2.0


async def test_waiting_jobs_go_on_alone_when_every_scout_fails(tmp_path: Path) -> None:
    """Scouts whose reports never complete time out; the jobs that waited still finish."""
    clock = VirtualClock()
    # With the defaults the first five jobs scout; the sixth waits.
    generation = {f"B{i:04d}": math.inf for i in range(5)} | {"B0005": 10.0}
    backend = TimedBackend(clock, generation)
    orchestrator = ReportOrchestrator(
        backend,
        tmp_path / "out",
        poll=PollPolicy(initial_delay=2.0, max_interval=20.0, timeout=100.0),
        max_in_flight=6,
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(3),
    )
    requests = [ReportRequest(label, START, END) for label in generation]
    results = await clock.run(orchestrator.run(requests))
    assert [result.ok for result in results] == [False] * 5 + [True]
    assert {result.error.code for result in results[:5] if result.error} == {"REPORT_TIMEOUT"}
    # The waiter spent no request until the last scout gave up.
    last_scout_poll = max(max(backend.poll_times[f"B{i:04d}"]) for i in range(5))
    assert backend.poll_times["B0005"][0] >= last_scout_poll
