"""Orchestrator decisions with an in-memory backend and a fake clock: no waiting, no HTTP."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import date
from pathlib import Path

import attrs
import pytest

from uitpas_async import (
    DownloadedReport,
    JobEvent,
    JobState,
    PollPolicy,
    ReportOrchestrator,
    ReportRequest,
    RetryPolicy,
    ServerError,
    UitpasError,
    UnknownReportError,
)
from uitpas_async.engine.backend import JobRequest, StartedReport
from uitpas_async.engine.journal import Journal
from uitpas_async.engine.polling import DEFAULT_FIRST_POLL

START, END = date(2024, 1, 1), date(2024, 3, 31)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self, *, yielding: bool = False) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        # Yield to the loop on every sleep, so other jobs interleave.
        self.yielding = yielding

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.yielding:
            await asyncio.sleep(0)


@attrs.define
class FakeBackend:
    """Reports that become ready ``generation[key]`` fake seconds after creation."""

    clock: FakeClock
    generation: dict[str, float]
    provider: str = "fake"
    created: list[str] = attrs.Factory(list)
    ready_at: dict[str, float] = attrs.Factory(dict)
    polls: dict[str, int] = attrs.Factory(dict)
    forget_once: set[str] = attrs.Factory(set)
    fail_creates: dict[str, int] = attrs.Factory(dict)

    async def resolve_request(self, request: JobRequest) -> JobRequest:
        return request

    async def start_report(self, request: JobRequest) -> StartedReport:
        key = request.job_key
        if self.fail_creates.get(key, 0) > 0:
            self.fail_creates[key] -= 1
            raise ServerError("create: HTTP 503", status=503)
        report_id = str(len(self.created) + 1)
        self.created.append(key)
        self.ready_at[report_id] = self.clock.now + self.generation[request.label]
        return StartedReport(report_id, START, END)

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        self.polls[report_id] = self.polls.get(report_id, 0) + 1
        if report_id in self.forget_once:
            self.forget_once.discard(report_id)
            raise UnknownReportError("UNKNOWN_REPORT_ID", "gone", status=400)
        return self.clock.now >= self.ready_at[report_id]

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        path = dest_dir / f"{report_id}.zip"
        return DownloadedReport(report_id, path, path.name, "application/zip", 1, "0" * 64)

    def is_report_gone(self, error: UitpasError) -> bool:
        return isinstance(error, UnknownReportError)


def _requests(count: int) -> list[ReportRequest]:
    return [ReportRequest(f"B{i:04d}", START, END) for i in range(count)]


def _orchestrator(
    backend: FakeBackend, tmp_path: Path, clock: FakeClock, **options: object
) -> ReportOrchestrator:
    return ReportOrchestrator(
        backend,
        tmp_path / "out",
        journal=tmp_path / "journal.sqlite",
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(1),
        job_retry=RetryPolicy(attempts=3, initial_backoff=0.1),
        **options,  # type: ignore[arg-type]
    )


async def test_every_request_gets_one_result_in_order(tmp_path: Path) -> None:
    """Results come back one per request, in the order asked, all done."""
    clock = FakeClock()
    requests = _requests(20)
    backend = FakeBackend(clock, {r.label: 10.0 + i for i, r in enumerate(requests)})
    results = await _orchestrator(backend, tmp_path, clock, max_in_flight=5).run(requests)
    assert [result.request for result in results] == requests
    assert all(result.ok for result in results)
    assert sorted(backend.created) == sorted(r.job_key for r in requests)


async def test_first_poll_waits(tmp_path: Path) -> None:
    """Polling alone, no job polls before the policy's initial delay has passed."""
    clock = FakeClock()
    backend = FakeBackend(clock, {"B0000": 0.5})
    policy = PollPolicy(initial_delay=3.0)
    orchestrator = _orchestrator(backend, tmp_path, clock, poll=policy, learn_from_batch=False)
    await orchestrator.run(_requests(1))
    assert clock.sleeps[0] == pytest.approx(3.0)
    assert backend.polls["1"] == 1


async def test_a_learning_batch_assumes_no_time_scale(tmp_path: Path) -> None:
    """A learning batch's first poll comes DEFAULT_FIRST_POLL after creation, not 2 s."""
    clock = FakeClock()
    backend = FakeBackend(clock, {"B0000": 0.5})
    await _orchestrator(backend, tmp_path, clock, poll=PollPolicy()).run(_requests(1))
    assert DEFAULT_FIRST_POLL <= clock.sleeps[0] <= DEFAULT_FIRST_POLL * 1.1
    # Seen at most one 9% step after it completed, not at the policy's 2 s.
    assert clock.now <= 0.5 * 1.1


async def test_deadline_stops_before_a_sleep_that_would_cross_it(tmp_path: Path) -> None:
    """A report that never completes fails with REPORT_TIMEOUT, never sleeping past the deadline."""
    clock = FakeClock()
    backend = FakeBackend(clock, {"B0000": math.inf})
    policy = PollPolicy(initial_delay=1.0, multiplier=2.0, max_interval=100.0, timeout=50.0)
    [result] = await _orchestrator(backend, tmp_path, clock, poll=policy).run(_requests(1))
    assert result.state is JobState.FAILED
    assert result.error is not None
    assert result.error.code == "REPORT_TIMEOUT"
    assert clock.now <= 50.0


async def test_forgotten_report_is_created_again(tmp_path: Path) -> None:
    """UNKNOWN_REPORT_ID while polling sends the job back to creating, and it is journaled."""
    clock = FakeClock()
    backend = FakeBackend(clock, {"B0000": 5.0}, forget_once={"1"})
    events: list[JobEvent] = []
    [result] = await _orchestrator(backend, tmp_path, clock, on_event=events.append).run(
        _requests(1)
    )
    assert result.ok
    assert result.report_id == "2"
    assert [event.state for event in events] == [
        JobState.CREATING,
        JobState.GENERATING,
        JobState.CREATING,
        JobState.GENERATING,
        JobState.DOWNLOADING,
        JobState.DONE,
    ]
    with Journal(tmp_path / "journal.sqlite") as journal:
        assert [event[2] for event in journal.events()] == ["report_forgotten"]


async def test_create_not_resent_after_ambiguous_fault_by_default(tmp_path: Path) -> None:
    """A create that answered 503 is not sent again, and its possible report is recorded."""
    clock = FakeClock()
    backend = FakeBackend(clock, {"B0000": 5.0}, fail_creates={"B0000|2024-01-01|2024-03-31": 1})
    orchestrator = _orchestrator(backend, tmp_path, clock)
    [result] = await orchestrator.run(_requests(1))
    assert result.state is JobState.FAILED
    assert backend.created == []
    assert orchestrator.possible_duplicate_creates == 1
    with Journal(tmp_path / "journal.sqlite") as journal:
        assert [event[2] for event in journal.events()] == ["possible_duplicate_create"]


async def test_create_retried_after_ambiguous_fault_is_recorded(tmp_path: Path) -> None:
    """With retry_unsafe_creates a create is resent after a 503, and the journal says so."""
    clock = FakeClock()
    backend = FakeBackend(clock, {"B0000": 5.0}, fail_creates={"B0000|2024-01-01|2024-03-31": 1})
    unsafe = RetryPolicy(attempts=3, initial_backoff=0.1, retry_unsafe_creates=True)
    orchestrator = _orchestrator(backend, tmp_path, clock)
    orchestrator.job_retry = unsafe
    [result] = await orchestrator.run(_requests(1))
    assert result.ok
    assert orchestrator.possible_duplicate_creates == 1
    assert len(orchestrator.journal_possible_duplicates) == 1
    with Journal(tmp_path / "journal.sqlite") as journal:
        assert [event[2] for event in journal.events()] == ["possible_duplicate_create"]


async def test_transient_faults_past_the_budget_fail_the_job(tmp_path: Path) -> None:
    """A job whose create keeps failing ends failed with the last error's code."""
    clock = FakeClock()
    backend = FakeBackend(clock, {"B0000": 5.0}, fail_creates={"B0000|2024-01-01|2024-03-31": 99})
    [result] = await _orchestrator(backend, tmp_path, clock).run(_requests(1))
    assert result.state is JobState.FAILED
    assert result.error is not None
    assert result.error.code == "SERVER_ERROR"
    assert backend.created == []


async def test_max_in_flight_bounds_reports_being_generated(tmp_path: Path) -> None:
    """Never more than max_in_flight reports are created but not yet downloaded."""
    clock = FakeClock(yielding=True)
    requests = _requests(40)
    backend = FakeBackend(clock, {r.label: 7.0 for r in requests})
    in_flight = 0
    peak = 0

    def track(event: JobEvent) -> None:
        nonlocal in_flight, peak
        if event.state is JobState.GENERATING and event.previous is JobState.CREATING:
            in_flight += 1
        if event.state.finished:
            in_flight -= 1
        peak = max(peak, in_flight)

    await _orchestrator(backend, tmp_path, clock, max_in_flight=6, on_event=track).run(requests)
    assert peak == 6


def test_duplicate_requests_are_refused(tmp_path: Path) -> None:
    """The same request twice in one batch is a usage error, not two reports."""
    clock = FakeClock()
    backend = FakeBackend(clock, {})
    orchestrator = _orchestrator(backend, tmp_path, clock)
    request = ReportRequest("B0000", START, END)
    with pytest.raises(ValueError, match="twice"):
        asyncio.run(orchestrator.run([request, request]))


async def test_a_failing_progress_callback_does_not_sink_the_batch(tmp_path: Path) -> None:
    """An on_event callback that raises is logged; every job still finishes."""
    clock = FakeClock()
    requests = _requests(3)
    backend = FakeBackend(clock, {r.label: 5.0 for r in requests})

    def broken(event: JobEvent) -> None:
        raise RuntimeError("progress bar fell over")

    results = await _orchestrator(backend, tmp_path, clock, on_event=broken).run(requests)
    assert all(result.ok for result in results)
