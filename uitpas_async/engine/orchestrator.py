"""Fetch many reports at once: bounded, resumable, and never losing one.

``ReportOrchestrator.run`` takes one request per report and returns one
:class:`ReportResult` per request, in order. Up to ``max_in_flight`` jobs run
at once (a job holds its place from creation until its download ends, so the
server never has more generation jobs of ours than that); the client below
bounds concurrent HTTP requests and the request rate. Every state change goes
through :func:`~uitpas_async.engine.jobs.advance` and is committed to the journal
before the job moves on, so a run killed at any point resumes where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import attrs

from uitpas_async.engine.backend import HasReportBackend, JobRequest, ReportBackend, as_backend
from uitpas_async.engine.config import PollPolicy, RetryPolicy
from uitpas_async.engine.errors import (
    ConfigurationError,
    DownloadError,
    InvalidArgumentError,
    MalformedResponseError,
    RateLimitedError,
    ReportNotReadyError,
    ReportTimeoutError,
    ReportTooLargeError,
    ServerError,
    TransportError,
    UitpasError,
)
from uitpas_async.engine.jobs import InvalidTransitionError, JobEvent, JobState, advance
from uitpas_async.engine.journal import Journal, JournalEntry
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.polling import BatchPollScheduler
from uitpas_async.engine.storage import TEMPORARY_PREFIX, name_for_period

__all__ = ["ReportOrchestrator", "ReportResult"]

log = logging.getLogger("uitpas_async")

DEFAULT_MAX_IN_FLIGHT = 50
#: How a job retries a step after a transient fault outlived the client's own retries.
DEFAULT_JOB_RETRY = RetryPolicy(attempts=4, initial_backoff=1.0, max_backoff=30.0)
#: Times a report the server forgot is created again before the job fails.
DEFAULT_MAX_RECREATES = 2

#: Faults worth another try of the same step, once the client's retries are spent.
_TRANSIENT = (TransportError, ServerError, RateLimitedError, MalformedResponseError)
#: Faults after which a create may have reached the server (a retry may duplicate it).
_CREATE_MAYBE_SENT = (TransportError, ServerError, MalformedResponseError)


@attrs.frozen
class ReportResult:
    """How one request ended: a downloaded report, or the typed error that stopped it."""

    request: Any
    state: JobState
    report_id: str | None = None
    start: date | None = None
    end: date | None = None
    report: DownloadedReport | None = None
    error: UitpasError | None = None
    #: The journal's key of the job (None when the request never got a period).
    job_key: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the report was downloaded."""
        return self.state is JobState.DONE


@attrs.define
class _Job:
    """The mutable working state of one job during a run."""

    index: int
    #: The request as the caller gave it (results and events carry this one).
    asked: JobRequest
    #: The request with its period settled: keyed, journaled and sent.
    request: JobRequest
    entry: JournalEntry
    #: Monotonic time the report was created in this run (None when resumed).
    created_at: float | None = None
    polls: int = 0
    recreates: int = 0
    report: DownloadedReport | None = None
    error: UitpasError | None = None


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _remove_partial_files(out_dir: Path) -> int:
    """Remove temporary downloads a killed run left behind; return how many."""
    removed = 0
    for partial in out_dir.glob(f"*/{TEMPORARY_PREFIX}*"):
        with contextlib.suppress(OSError):
            partial.unlink()
            removed += 1
    return removed


class ReportOrchestrator:
    """Runs a batch of report jobs against one backend, with a durable journal."""

    _scheduler: BatchPollScheduler
    _scouting_over: asyncio.Event

    def __init__(
        self,
        backend: ReportBackend | HasReportBackend,
        out_dir: str | Path,
        *,
        journal: str | Path | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        poll: PollPolicy | None = None,
        learn_from_batch: bool = True,
        job_retry: RetryPolicy = DEFAULT_JOB_RETRY,
        max_recreates: int = DEFAULT_MAX_RECREATES,
        on_event: Callable[[JobEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise InvalidArgumentError("max_in_flight must be at least 1")
        self.backend: ReportBackend = as_backend(backend)
        self.out_dir = Path(out_dir)
        self.journal_path = Path(journal) if journal is not None else None
        self.max_in_flight = max_in_flight
        self.poll_policy = (
            poll
            or getattr(backend, "poll_policy", None)
            or getattr(self.backend, "poll_policy", None)
            or PollPolicy()
        )
        self.learn_from_batch = learn_from_batch
        self.job_retry = job_retry
        self.max_recreates = max_recreates
        self.on_event = on_event
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._journal: Journal | None = None
        #: Creates in the last run that may have started a second report (see the journal).
        self.possible_duplicate_creates = 0

    # -- the batch ----------------------------------------------------------------

    def _new_scheduler(self) -> BatchPollScheduler:
        # A backend may say how many requests per second its client admits; polls
        # then keep within part of that.
        rate = getattr(self.backend, "request_rate", None)
        return BatchPollScheduler(
            self.poll_policy,
            rng=self._rng,
            learn=self.learn_from_batch,
            request_rate=rate if isinstance(rate, (int, float)) else None,
        )

    async def run(self, requests: Iterable[JobRequest]) -> list[ReportResult]:
        """Run every request to done or failed; return one result per request, in order."""
        batch = list(requests)
        keys = [request.job_key for request in batch]
        if len(set(keys)) != len(keys):
            raise InvalidArgumentError("the batch holds the same request twice")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigurationError(f"cannot create {self.out_dir}: {exc.strerror}") from exc
        removed = _remove_partial_files(self.out_dir)
        if removed:
            log.info("removed %d partial downloads left by an earlier run", removed)
        journal_path = self.journal_path or self.out_dir / "journal.sqlite"
        self._journal = Journal(journal_path)
        self.possible_duplicate_creates = 0
        # Per run: what the batch learns about its timing, and the gate its waiting
        # jobs wait at until the scouts have learned it.
        self._scheduler = self._new_scheduler()
        self._scouting_over = asyncio.Event()
        results: list[ReportResult | None] = [None] * len(batch)
        queue = iter(enumerate(batch))

        async def worker() -> None:
            for index, request in queue:
                results[index] = await self._run_job(index, request)

        workers = [
            asyncio.ensure_future(worker()) for _ in range(min(self.max_in_flight, len(batch)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._journal.close()
            self._journal = None
        return [result for result in results if result is not None]

    # -- one job ------------------------------------------------------------------

    @property
    def _provider(self) -> str:
        return self.backend.provider

    def _load(self, index: int, asked: JobRequest, request: JobRequest) -> _Job:
        assert self._journal is not None
        entry = self._journal.get(self._provider, request.job_key)
        if entry is None:
            entry = JournalEntry(self._provider, request.job_key, request.label, JobState.QUEUED)
        return _Job(index, asked, request, entry)

    def _move(self, job: _Job, state: JobState, **changes: Any) -> None:
        """Make one allowed state change, commit it, and report it."""
        assert self._journal is not None
        previous = job.entry.state
        advance(previous, state)
        job.entry = attrs.evolve(job.entry, state=state, **changes)
        self._journal.save(job.entry)
        self._emit(
            JobEvent(
                job.index,
                job.asked,
                previous,
                state,
                job.entry.report_id,
                job.report,
                job.error,
                job.entry.start,
                job.entry.end,
                job.request.job_key,
            )
        )

    def _emit(self, event: JobEvent) -> None:
        """Tell the progress callback; a failing callback must not sink the batch."""
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("the on_event callback failed; the batch goes on")

    def _result(self, job: _Job) -> ReportResult:
        return ReportResult(
            job.asked,
            job.entry.state,
            job.entry.report_id,
            job.entry.start,
            job.entry.end,
            job.report,
            job.error,
            job.request.job_key,
        )

    async def _run_job(self, index: int, asked: JobRequest) -> ReportResult:
        try:
            request = await self.backend.resolve_request(asked)
        except UitpasError as exc:
            # Nothing was started, and without a period there is no journal key.
            self._emit(JobEvent(index, asked, JobState.QUEUED, JobState.FAILED, error=exc))
            return ReportResult(asked, JobState.FAILED, error=exc)
        job = self._load(index, asked, request)
        previous = job.entry
        # Every job of this run starts queued; the journal's state says where to resume.
        job.entry = attrs.evolve(previous, state=JobState.QUEUED, label=request.label)
        if previous.state is JobState.DONE and await self._restore_done(job):
            return self._result(job)
        if previous.state is JobState.CREATING:
            # Killed mid-create: the server may hold a report we never heard of.
            self._record_possible_duplicate(request, "resumed")
        resumable = previous.report_id is not None and previous.state is not JobState.FAILED
        if resumable:
            self._move(job, JobState.GENERATING, error_code=None, error_message=None)
        else:
            self._move(job, JobState.CREATING, report_id=None, error_code=None, error_message=None)
        await self._drive(job)
        return self._result(job)

    async def _restore_done(self, job: _Job) -> bool:
        """Accept a job done in an earlier run if its file is intact."""
        entry = job.entry
        path = Path(entry.path) if entry.path else None
        if path is None or not entry.sha256:
            return False
        digest = await asyncio.to_thread(_sha256, path)
        if digest != entry.sha256:
            log.info("%s: stored report changed or missing; fetching it again", job.request.label)
            return False
        job.report = DownloadedReport(
            entry.report_id or "", path, path.name, "", entry.size or 0, digest
        )
        self._move(job, JobState.DONE)
        return True

    async def _drive(self, job: _Job) -> None:
        """Run a job from its current state to done or failed."""
        attempts = 0
        while not job.entry.state.finished:
            state = job.entry.state
            try:
                if state is JobState.CREATING:
                    await self._create(job)
                elif state is JobState.GENERATING:
                    await self._wait_until_ready(job)
                    self._move(job, JobState.DOWNLOADING)
                elif state is JobState.DOWNLOADING:
                    await self._download(job)
            except InvalidTransitionError:
                raise  # a lifecycle bug, not a fault of this job
            except UitpasError as exc:
                attempts += 1
                next_state = self._after_error(job, state, exc, attempts)
                if next_state is JobState.FAILED:
                    job.error = exc
                    self._move(
                        job,
                        JobState.FAILED,
                        attempts=job.entry.attempts + 1,
                        error_code=exc.code,
                        error_message=exc.message,
                    )
                elif next_state is not state:
                    self._move(job, next_state, attempts=job.entry.attempts + 1)
                else:
                    delay = self.job_retry.backoff(attempts, self._rng)
                    log.debug(
                        "%s: %s during %s; retrying in %.2fs",
                        job.request.label,
                        type(exc).__name__,
                        state.value,
                        delay,
                    )
                    await self._sleep(delay)

    def _after_error(self, job: _Job, state: JobState, exc: UitpasError, attempts: int) -> JobState:
        """Decide where a job goes after an error in ``state``."""
        assert self._journal is not None
        if self.backend.is_report_gone(exc) and state is not JobState.CREATING:
            if job.recreates >= self.max_recreates:
                return JobState.FAILED
            job.recreates += 1
            self._journal.record_event(
                self._provider,
                job.request.job_key,
                "report_forgotten",
                report_id=job.entry.report_id,
            )
            return JobState.CREATING
        if isinstance(exc, ReportNotReadyError) and state is JobState.DOWNLOADING:
            return JobState.GENERATING if attempts < self.job_retry.attempts else JobState.FAILED
        transient = isinstance(exc, _TRANSIENT) or (
            isinstance(exc, DownloadError) and not isinstance(exc, ReportTooLargeError)
        )
        if not transient or attempts >= self.job_retry.attempts:
            return JobState.FAILED
        if state is JobState.CREATING and isinstance(exc, _CREATE_MAYBE_SENT):
            # The create may have reached the server; trying again can duplicate it.
            self._record_possible_duplicate(job.request, type(exc).__name__)
        return state

    def _record_possible_duplicate(self, request: JobRequest, reason: str) -> None:
        """Journal a create that may have started a report we never heard of."""
        assert self._journal is not None
        self.possible_duplicate_creates += 1
        self._journal.record_event(
            self._provider, request.job_key, "possible_duplicate_create", detail=reason
        )

    async def _create(self, job: _Job) -> None:
        started = await self.backend.start_report(job.request)
        job.created_at = self._clock()
        job.polls = 0
        self._move(
            job,
            JobState.GENERATING,
            report_id=started.report_id,
            start=started.start or job.entry.start,
            end=started.end or job.entry.end,
            creates=job.entry.creates + 1,
        )

    async def _wait_until_ready(self, job: _Job) -> None:
        """Poll until the report is ready, never sleeping past the job's deadline."""
        report_id = job.entry.report_id
        assert report_id is not None
        # A job resumed from the journal was created at an unknown time: its
        # deadline counts from now, and it backs off on its own.
        created_in_this_run = job.created_at is not None
        origin = job.created_at if job.created_at is not None else self._clock()
        job.created_at = origin
        deadline = origin + self.poll_policy.timeout
        scheduler = self._scheduler
        role = scheduler.enlist(timed=created_in_this_run)
        self._sync_scouting_gate()
        try:
            while True:
                now = self._clock()
                if scheduler.waits_for_learning(role):
                    # Scouts finish by their own deadlines, so this wait ends too.
                    await self._scouting_over.wait()
                    continue
                delay = scheduler.next_delay(now - origin, job.polls, role)
                if now + delay > deadline:
                    raise self._not_ready_in_time(job)
                await self._sleep(delay)
                ready = await self.backend.report_ready(job.request, report_id)
                job.polls += 1
                if ready:
                    scheduler.observe(self._clock() - origin, role)
                    return
        finally:
            scheduler.retire(role)
            self._sync_scouting_gate()

    def _sync_scouting_gate(self) -> None:
        """Open the waiting jobs' gate exactly when the scheduler has stopped scouting."""
        if self._scheduler.scouting:
            self._scouting_over.clear()
        else:
            self._scouting_over.set()

    def _not_ready_in_time(self, job: _Job) -> ReportTimeoutError:
        return ReportTimeoutError(
            f"report {job.entry.report_id} of {job.request.label} not ready within "
            f"{self.poll_policy.timeout:g}s ({job.polls} polls)"
        )

    async def _download(self, job: _Job) -> None:
        report_id = job.entry.report_id
        assert report_id is not None
        directory = self.out_dir / job.request.label
        report = await self.backend.download_report(job.request, report_id, directory)
        if job.entry.start is not None and job.entry.end is not None:
            # The period in the name keeps one owner's quarters apart in one folder.
            report = name_for_period(report, job.entry.start, job.entry.end)
        job.report = report
        self._move(
            job,
            JobState.DONE,
            path=str(job.report.path),
            sha256=job.report.sha256,
            size=job.report.size,
            error_code=None,
            error_message=None,
        )
