"""Fetch many reports at once: bounded, resumable, and never losing one.

``ReportOrchestrator.run`` takes one request per report and returns one
:class:`ReportResult` per request, in order. Up to ``max_in_flight`` jobs run
at once (a job holds its place from creation until its download ends, so the
server never has more generation jobs of ours than that); the client below
bounds concurrent HTTP requests and the request rate. Every state change goes
through :func:`~uitpas_async.engine.jobs.advance` and is committed to the journal
before the job moves on, so a run killed at any point resumes where it was.

Failures stay with their job: a typed error fails that job only, and so does any
other exception (as :class:`~uitpas_async.engine.errors.UnexpectedError`, logged
with its traceback). Two things stop the batch: cancellation, and a
:class:`~uitpas_async.engine.errors.JournalError`, since without a sound journal
a later run could not tell which reports exist.

Creates are resent after a fault that may have reached the server only when
``job_retry.retry_unsafe_creates`` is set (the client's own retries follow its
``RetryPolicy`` the same way); every create that may have started a report we
never heard of, at either layer, is a possible duplicate: counted in
:attr:`ReportOrchestrator.possible_duplicate_creates` for this run, and kept in
the journal for every later one (:attr:`ReportOrchestrator.journal_possible_duplicates`).

Each job's download has one deadline over all its attempts
(:attr:`~uitpas_async.engine.config.PollPolicy.download_timeout`), as its
polling has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from uitpas_async.engine.backend import (
    FindsStartedReports,
    HasReportBackend,
    JobRequest,
    ReportBackend,
    as_backend,
)
from uitpas_async.engine.config import PollPolicy, RetryPolicy
from uitpas_async.engine.errors import (
    ConfigurationError,
    DownloadError,
    DownloadTimeoutError,
    InvalidArgumentError,
    JournalError,
    MalformedResponseError,
    RateLimitedError,
    ReportNotReadyError,
    ReportTimeoutError,
    ReportTooLargeError,
    ServerError,
    TransportError,
    UitpasError,
    UnexpectedError,
)
from uitpas_async.engine.jobs import InvalidTransitionError, JobEvent, JobState, advance
from uitpas_async.engine.journal import (
    POSSIBLE_DUPLICATE_CREATE,
    Journal,
    JournalEntry,
    PossibleDuplicate,
)
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.polling import BatchPollScheduler, GenerationSample, PollRole
from uitpas_async.engine.reconcile import (
    VerifiedReports,
    file_sha256,
    find_verified_reports,
    has_earlier_output,
)
from uitpas_async.engine.retry import counting_unsafe_resends, may_have_reached_server
from uitpas_async.engine.storage import TEMPORARY_PREFIX, name_for_period

__all__ = ["ReportOrchestrator", "ReportResult"]

log = logging.getLogger("uitpas_async")

DEFAULT_MAX_IN_FLIGHT = 50
#: How a job retries a step after a transient fault outlived the client's own retries.
DEFAULT_JOB_RETRY = RetryPolicy(attempts=4, initial_backoff=1.0, max_backoff=30.0)
#: Times a report the server forgot is created again before the job fails.
DEFAULT_MAX_RECREATES = 2
#: Seconds a backend that finds started reports waits before it looks a second time for
#: the report of a lost create: a create that timed out may still be landing at the server.
DEFAULT_LOST_CREATE_SETTLE = 2.0

#: Faults worth another try of the same step, once the client's retries are spent.
_TRANSIENT = (TransportError, ServerError, RateLimitedError, MalformedResponseError)
#: Faults after which a create may have reached the server (a retry may duplicate it).
_CREATE_MAYBE_SENT = (TransportError, ServerError, MalformedResponseError)
#: Journal event: a create is about to leave (its time bounds what a later adoption takes).
CREATE_SENT_EVENT = "create_sent"
#: Journal event: a report a lost create started was found and adopted.
ADOPTED_EVENT = "report_adopted"


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
    #: The journal key of the request as run (its period settled), if it got that far.
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
    #: Monotonic time the report was created, on this run's clock (None while unknown:
    #: a report resumed from the journal or adopted gets it from the journal's wall-clock
    #: creation time when it starts waiting, if the journal has one).
    created_at: float | None = None
    #: Monotonic time past which this job's download is given up (set at its first try).
    download_deadline: float | None = None
    polls: int = 0
    recreates: int = 0
    report: DownloadedReport | None = None
    error: UitpasError | None = None
    #: Whether a create may have reached the server without our hearing back.
    create_lost: bool = False
    #: Wall-clock time the first create of the current creating episode left, if known.
    create_since: float | None = None


async def _within(work: Awaitable[DownloadedReport], seconds: float) -> DownloadedReport:
    """Await ``work`` for at most ``seconds``, in this task (no task of its own where possible)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await work
    return await asyncio.wait_for(work, seconds)  # pragma: no cover - Python 3.10


def _parse_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


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
    #: Per role that waits for the scouts: set once that role may poll.
    _gates: dict[PollRole, asyncio.Event]
    _verified: VerifiedReports

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
        lost_create_settle: float = DEFAULT_LOST_CREATE_SETTLE,
        on_event: Callable[[JobEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise InvalidArgumentError("max_in_flight must be at least 1")
        self.backend: ReportBackend = as_backend(backend)
        #: The backend, if it can find a report a lost create started (then none is duplicated).
        self._finder: FindsStartedReports | None = (
            self.backend if isinstance(self.backend, FindsStartedReports) else None
        )
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
        self.lost_create_settle = lost_create_settle
        self.on_event = on_event
        self._sleep = sleep
        self._clock = clock
        # What survives the process: the journal's times, and so a report's age on resume.
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._journal: Journal | None = None
        #: Generation times the journal remembers from earlier runs (read per run).
        self._history: tuple[float, ...] = ()
        #: Creates in the last run that may have started a second report (see the journal).
        self.possible_duplicate_creates = 0
        #: Every possible duplicate create the journal holds, from every run of it.
        self.journal_possible_duplicates: tuple[PossibleDuplicate, ...] = ()
        #: Reports of lost creates the last run found and adopted instead of creating again.
        self.adopted_reports = 0

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
            history=self._history,
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
        self._journal = Journal(journal_path, clock=self._wall_clock)
        self.possible_duplicate_creates = 0
        self.adopted_reports = 0
        try:
            self._verified = VerifiedReports(())
            if self._journal.is_empty() and has_earlier_output(self.out_dir):
                # A new, emptied or deleted journal beside earlier reports must not
                # start blind: it would create and download every report again.
                self._verified = await asyncio.to_thread(
                    find_verified_reports, self.out_dir, journal_path
                )
        except BaseException:
            self._journal.close()
            self._journal = None
            raise
        # Per run: what the batch learns about its timing (from the journal's earlier
        # runs, or from its scouts), and the gates its waiting jobs wait at until then.
        self._history = self._read_history()
        self._scheduler = self._new_scheduler()
        self._gates = {role: asyncio.Event() for role in (PollRole.PROBE, PollRole.WAITER)}
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
            try:
                self.journal_possible_duplicates = tuple(self._journal.possible_duplicates())
            except JournalError:
                log.warning("cannot list the journal's possible duplicate creates")
            with contextlib.suppress(JournalError):
                self._journal.prune_generation(self._provider)
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
        found = self._verified.match(request) if entry is None and self._verified else None
        if found is not None:
            # The manifest vouches for it: done in a run whose journal is gone.
            entry = JournalEntry(
                self._provider,
                request.job_key,
                request.label,
                JobState.DONE,
                start=_parse_date(found.start),
                end=_parse_date(found.end),
                report_id=found.report_id,
                path=str(found.path),
                sha256=found.sha256,
                size=found.size,
            )
            self._journal.save(entry)
            self._journal.record_event(
                self._provider, request.job_key, "reconciled", report_id=found.report_id
            )
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
        except Exception as exc:
            # Nothing was started, and without a period there is no journal key.
            error = self._typed(exc, "resolving the request", asked.label)
            self._emit(JobEvent(index, asked, JobState.QUEUED, JobState.FAILED, error=error))
            return ReportResult(asked, JobState.FAILED, error=error)
        job = self._load(index, asked, request)
        previous = job.entry
        # Every job of this run starts queued; the journal's state says where to resume.
        job.entry = attrs.evolve(previous, state=JobState.QUEUED, label=request.label)
        if previous.state is JobState.DONE and await self._restore_done(job):
            return self._result(job)
        if previous.state is JobState.CREATING:
            # Killed mid-create: the server may hold a report we never heard of.
            self._create_lost(job, "resumed")
            assert self._journal is not None
            job.create_since = self._journal.last_event_at(
                self._provider, request.job_key, CREATE_SENT_EVENT
            )
        resumable = previous.report_id is not None and previous.state is not JobState.FAILED
        if resumable:
            self._move(job, JobState.GENERATING, error_code=None, error_message=None)
        else:
            self._move(
                job,
                JobState.CREATING,
                report_id=None,
                created_at=None,
                error_code=None,
                error_message=None,
            )
        await self._drive(job)
        return self._result(job)

    async def _restore_done(self, job: _Job) -> bool:
        """Accept a job done in an earlier run if its file is intact."""
        entry = job.entry
        path = Path(entry.path) if entry.path else None
        if path is None or not entry.sha256:
            return False
        digest = await asyncio.to_thread(file_sha256, path)
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
            except (InvalidTransitionError, JournalError):
                raise  # a lifecycle bug or a broken journal: no job can go on safely
            except Exception as exc:
                if not isinstance(exc, UitpasError):
                    # Not a fault of ours to retry: fail this job alone, loudly.
                    self._fail(job, self._typed(exc, state.value, job.request.label))
                    continue
                attempts += 1
                next_state = self._after_error(job, state, exc, attempts)
                if next_state is JobState.FAILED:
                    self._fail(job, exc)
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

    def _fail(self, job: _Job, error: UitpasError) -> None:
        job.error = error
        self._move(
            job,
            JobState.FAILED,
            attempts=job.entry.attempts + 1,
            error_code=error.code,
            error_message=error.message,
        )

    @staticmethod
    def _typed(exc: Exception, step: str, label: str) -> UitpasError:
        """Return ``exc`` if it is one of ours, else an UnexpectedError naming it (logged)."""
        if isinstance(exc, UitpasError):
            return exc
        log.error("%s: unexpected %s while %s", label, type(exc).__name__, step, exc_info=exc)
        return UnexpectedError(
            f"unexpected {type(exc).__name__} while {step}; the job failed, the batch went on",
            kind=type(exc).__name__,
        )

    def _after_error(self, job: _Job, state: JobState, exc: UitpasError, attempts: int) -> JobState:
        """Decide where a job goes after an error in ``state``."""
        assert self._journal is not None
        if self.backend.is_report_gone(exc) and state is not JobState.CREATING:
            if job.recreates >= self.max_recreates:
                return JobState.FAILED
            job.recreates += 1
            # A new report is due: what an earlier create left no longer matters.
            job.create_lost = False
            job.create_since = None
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
        maybe_sent = (
            state is JobState.CREATING
            and isinstance(exc, _CREATE_MAYBE_SENT)
            and may_have_reached_server(exc)
        )
        if maybe_sent:
            self._create_lost(job, type(exc).__name__)
            if self._finder is None and not self.job_retry.retry_unsafe_creates:
                return JobState.FAILED
        if not transient or attempts >= self.job_retry.attempts:
            return JobState.FAILED
        return state

    def _create_lost(self, job: _Job, reason: str) -> None:
        """Note that a create may have reached the server without our hearing back.

        Without a finder, that report is a possible duplicate whether or not the
        create is sent again; with one, the next create first looks for it and adopts it.
        """
        job.create_lost = True
        if self._finder is None:
            self._record_possible_duplicate(job.request, reason)

    def _record_possible_duplicate(self, request: JobRequest, reason: str) -> None:
        """Journal a create that may have started a report we never heard of."""
        assert self._journal is not None
        self.possible_duplicate_creates += 1
        self._journal.record_event(
            self._provider, request.job_key, POSSIBLE_DUPLICATE_CREATE, detail=reason
        )

    async def _create(self, job: _Job) -> None:
        assert self._journal is not None
        if job.create_lost and self._finder is not None and await self._adopt(job):
            return
        if self._finder is not None and job.create_since is None:
            # Only reports created since this moment can be the answer of a lost create.
            job.create_since = self._journal.record_event(
                self._provider, job.request.job_key, CREATE_SENT_EVENT
            )
        with counting_unsafe_resends() as resends:
            try:
                started = await self.backend.start_report(job.request)
            finally:
                # Each resend the client made after such a fault may have left a report.
                for fault in resends:
                    self._record_possible_duplicate(job.request, f"client resent after {fault}")
        job.create_lost = False
        job.created_at = self._clock()
        job.download_deadline = None
        job.polls = 0
        self._move(
            job,
            JobState.GENERATING,
            report_id=started.report_id,
            start=started.start or job.entry.start,
            end=started.end or job.entry.end,
            creates=job.entry.creates + 1,
            created_at=self._wall_clock(),
        )

    async def _adopt(self, job: _Job) -> bool:
        """Take over the report a lost create started, if the backend finds one."""
        assert self._finder is not None
        assert self._journal is not None
        since = (
            datetime.fromtimestamp(job.create_since, timezone.utc)
            if job.create_since is not None
            else None
        )
        found = await self._finder.find_started_report(job.request, since)
        if found is None and self.lost_create_settle > 0:
            # The lost create may still be on its way through the server: look once more
            # after it has had time to land, rather than racing it with a second create.
            await self._sleep(self.lost_create_settle)
            found = await self._finder.find_started_report(job.request, since)
        job.create_lost = False
        if found is None:
            log.debug("%s: the lost create started no report; creating it", job.request.label)
            return False
        self._journal.record_event(
            self._provider, job.request.job_key, ADOPTED_EVENT, report_id=found.report_id
        )
        self.adopted_reports += 1
        log.info("%s: adopted report %s of a lost create", job.request.label, found.report_id)
        # Created by the lost create, so no earlier than it left: it polls like a resumed
        # job, at most that old (a create that took long to land makes it a little younger).
        job.created_at = None
        job.polls = 0
        self._move(
            job,
            JobState.GENERATING,
            report_id=found.report_id,
            start=found.start or job.entry.start,
            end=found.end or job.entry.end,
            creates=job.entry.creates + 1,
            created_at=job.create_since,
        )
        return True

    async def _wait_until_ready(self, job: _Job) -> None:
        """Poll until the report is ready, never sleeping past the job's deadline."""
        report_id = job.entry.report_id
        assert report_id is not None
        resumed = job.created_at is None
        if resumed and job.entry.created_at is not None:
            # Resumed (or adopted), and the journal knows when its report was created:
            # that age, carried over to this run's clock, places it on the batch's grid,
            # and its deadline counts from the creation, not from the resume.
            age = max(0.0, self._wall_clock() - job.entry.created_at)
            job.created_at = self._clock() - age
        # Only a report of unknown age backs off on its own, its deadline from now.
        timed = job.created_at is not None
        origin = job.created_at if job.created_at is not None else self._clock()
        job.created_at = origin
        deadline = origin + self.poll_policy.timeout
        scheduler = self._scheduler
        role = scheduler.enlist(timed=timed)
        self._sync_scouting_gate()
        try:
            while True:
                now = self._clock()
                if scheduler.waits_for_learning(role):
                    # Scouts finish by their own deadlines, so this wait ends too.
                    await self._gates[role].wait()
                    continue
                delay = scheduler.next_delay(now - origin, job.polls, role)
                if now + delay > deadline:
                    if not resumed or job.polls:
                        raise self._not_ready_in_time(job)
                    # Resumed past its deadline: it may well be ready, so look once.
                    delay = 0.0
                await self._sleep(delay)
                ready = await self.backend.report_ready(job.request, report_id)
                job.polls += 1
                if ready:
                    seen = self._clock() - origin
                    # It completed by now either way; but a resumed report ready at its
                    # first look completed at an unknown time, which is no sample.
                    scheduler.observe(seen, role)
                    if timed and not (resumed and job.polls == 1):
                        self._remember_generation(job, seen)
                    return
        finally:
            scheduler.retire(role)
            self._sync_scouting_gate()

    def _read_history(self) -> tuple[float, ...]:
        """Return the journal's recent generation times of this provider (none if unreadable)."""
        assert self._journal is not None
        now = self._wall_clock()
        try:
            history = self._journal.generation_history(self._provider, now=now)
        except JournalError:
            log.warning("cannot read the journal's generation times; the batch scouts")
            return ()
        return history.recent(provider=self._provider, now=now)

    def _remember_generation(self, job: _Job, seconds: float) -> None:
        """Journal how long the report took, for the next run's poll grid."""
        assert self._journal is not None
        sample = GenerationSample(seconds, self._provider, job.request.label, self._wall_clock())
        try:
            self._journal.record_generation(sample)
        except JournalError:
            # Only the next run's schedule loses; the job's own state is saved apart.
            log.warning("%s: cannot journal its generation time", job.request.label)

    def _sync_scouting_gate(self) -> None:
        """Open each waiting role's gate exactly when the scheduler lets that role poll."""
        for role, gate in self._gates.items():
            if self._scheduler.waits_for_learning(role):
                gate.clear()
            else:
                gate.set()

    def _not_ready_in_time(self, job: _Job) -> ReportTimeoutError:
        return ReportTimeoutError(
            f"report {job.entry.report_id} of {job.request.label} not ready within "
            f"{self.poll_policy.timeout:g}s ({job.polls} polls)"
        )

    def _download_too_slow(self, job: _Job) -> DownloadTimeoutError:
        return DownloadTimeoutError(
            f"report {job.entry.report_id} of {job.request.label} not downloaded within "
            f"{self.poll_policy.download_timeout:g}s"
        )

    async def _download(self, job: _Job) -> None:
        report_id = job.entry.report_id
        assert report_id is not None
        directory = self.out_dir / job.request.label
        limit = self.poll_policy.download_timeout
        if job.download_deadline is None:
            job.download_deadline = self._clock() + limit
        remaining = job.download_deadline - self._clock()
        if remaining <= 0:
            raise self._download_too_slow(job)
        try:
            report = await _within(
                self.backend.download_report(job.request, report_id, directory), remaining
            )
        except asyncio.TimeoutError:
            raise self._download_too_slow(job) from None
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
