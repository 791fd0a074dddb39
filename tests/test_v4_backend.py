"""The 4.0 backend through the real orchestrator and journal, on an in-memory fake API.

What is proven here without HTTP: a create whose answer was lost is adopted
from the organizer's report list (never created twice), also after a kill
mid-create; a report from before the first attempt is not taken for ours;
FAILED is final; an unknown status fails the job at once; "latest" is the most
recent suggested period that has ended.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from uitpas_async.engine.config import PollPolicy, RetryPolicy
from uitpas_async.engine.errors import (
    ConnectError,
    ConnectionLostError,
    InvalidArgumentError,
    RequestTimeoutError,
    ServerError,
    UitpasError,
)
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.journal import Journal, JournalEntry
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.orchestrator import (
    ADOPTED_EVENT,
    CREATE_SENT_EVENT,
    ReportOrchestrator,
)
from uitpas_async.v4.backend import PROVIDER, UitpasV4Backend
from uitpas_async.v4.errors import UnknownReportStatusError, V4ReportFailedError
from uitpas_async.v4.models import (
    FinancialReport,
    OrganizerReportRequest,
    ReportPeriod,
    ReportStatus,
)
from uitpas_async.v4.protocol import parse_report

Q1 = ReportPeriod(date(2024, 1, 1), date(2024, 3, 31))
Q2 = ReportPeriod(date(2024, 4, 1), date(2024, 6, 30))
POLL = PollPolicy(initial_delay=0.01, max_interval=0.01, timeout=30.0)
JOB_RETRY = RetryPolicy(attempts=4, initial_backoff=0.001, max_backoff=0.001)


class FakeApi:
    """An organizer's reports in memory; faults lose a create's answer before or after it acts."""

    def __init__(self) -> None:
        self._ids = itertools.count(1000)
        #: organizer -> its reports, oldest first.
        self.reports: dict[str, list[FinancialReport]] = {}
        #: (organizer, period) -> reports created.
        self.created: Counter[tuple[str, ReportPeriod]] = Counter()
        #: organizer -> exceptions the next creates raise; ``True`` in the pair: after acting.
        self.create_faults: dict[str, list[tuple[UitpasError, bool]]] = {}
        #: organizer -> the status every report of it ends in.
        self.final_status: dict[str, str] = {}
        self.status_calls: Counter[str] = Counter()
        self.list_calls = 0
        self.periods: list[ReportPeriod] = [Q1, Q2]

    @property
    def request_rate(self) -> float | None:
        """No rate limit."""
        return None

    def add_report(self, organizer: str, period: ReportPeriod, created: datetime) -> int:
        """Put a report on the server directly (an earlier run's, say)."""
        report = FinancialReport(next(self._ids), ReportStatus.AVAILABLE, created, period)
        self.reports.setdefault(organizer, []).append(report)
        self.created[(organizer, period)] += 1
        return report.id

    async def get_financial_report_periods(self, organizer_id: str) -> list[ReportPeriod]:
        """Return the suggested periods."""
        return list(self.periods)

    async def create_financial_report(
        self, organizer_id: str, start: date, end: date
    ) -> FinancialReport:
        """Create, unless a fault strikes first; a fault after acting still creates."""
        faults = self.create_faults.get(organizer_id) or []
        fault = faults.pop(0) if faults else None
        if fault is not None and not fault[1]:
            raise fault[0]
        period = ReportPeriod(start, end)
        report = FinancialReport(
            next(self._ids), ReportStatus.STARTED, datetime.now(timezone.utc), period
        )
        self.reports.setdefault(organizer_id, []).append(report)
        self.created[(organizer_id, period)] += 1
        if fault is not None:
            raise fault[0]
        return FinancialReport(report.id, report.status, report.creation_date)

    def _find(self, organizer_id: str, report_id: int) -> FinancialReport:
        return next(r for r in self.reports[organizer_id] if r.id == report_id)

    async def get_financial_report(self, organizer_id: str, report_id: int) -> FinancialReport:
        """Return the status: ready at the first poll, in the organizer's final status."""
        self.status_calls[organizer_id] += 1
        report = self._find(organizer_id, report_id)
        status = self.final_status.get(organizer_id, "AVAILABLE")
        doc = {
            "id": report.id,
            "status": status,
            "creationDate": report.creation_date.isoformat(),
            "message": "Geen financieel overzicht beschikbaar voor periode 2024/01/01 - 2024/03/31",
        }
        return parse_report(doc)

    async def list_financial_reports(self, organizer_id: str) -> list[FinancialReport]:
        """Return the organizer's reports."""
        self.list_calls += 1
        return list(self.reports.get(organizer_id, []))

    async def download_financial_report(
        self, organizer_id: str, report_id: int, dest_dir: str | Path
    ) -> DownloadedReport:
        """Write a small file."""
        directory = Path(dest_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"report-{report_id}.zip"
        data = f"{organizer_id}:{report_id}".encode()
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        return DownloadedReport(
            str(report_id), path, path.name, "application/zip", len(data), digest
        )


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


def _orchestrator(api: FakeApi, out: Path) -> ReportOrchestrator:
    return ReportOrchestrator(
        UitpasV4Backend(api, today=lambda: date(2024, 7, 15)),
        out,
        poll=POLL,
        job_retry=JOB_RETRY,
        sleep=_no_wait,
    )


def _requests(*organizers: str) -> list[OrganizerReportRequest]:
    return [OrganizerReportRequest(o, Q1.start, Q1.end) for o in organizers]


LOST_AFTER_ACTING = [
    ConnectionLostError("reports.create: connection lost"),
    RequestTimeoutError("reports.create: no answer in time"),
    ServerError("reports.create: HTTP 502", status=502),
]


@pytest.mark.parametrize("fault", LOST_AFTER_ACTING, ids=lambda e: type(e).__name__)
async def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(
    tmp_path: Path, fault: UitpasError
) -> None:
    """Dropped, timed out or 5xx after acting: the listed report is adopted, one per period."""
    api = FakeApi()
    api.create_faults["org-a"] = [(fault, True)]
    orchestrator = _orchestrator(api, tmp_path)
    (result,) = await orchestrator.run(_requests("org-a"))
    assert result.ok, result.error
    assert api.created == {("org-a", Q1): 1}
    assert orchestrator.adopted_reports == 1
    assert orchestrator.possible_duplicate_creates == 0
    with Journal(tmp_path / "journal.sqlite") as journal:
        adopted = journal.events(ADOPTED_EVENT)
    assert adopted == [(PROVIDER, "org-a|2024-01-01|2024-03-31", ADOPTED_EVENT, result.report_id)]


async def test_a_create_lost_before_it_acted_is_created_once(tmp_path: Path) -> None:
    """When the list shows nothing, the create goes again, and still only one exists."""
    api = FakeApi()
    api.create_faults["org-a"] = [(ServerError("HTTP 503", status=503), False)] * 2
    orchestrator = _orchestrator(api, tmp_path)
    (result,) = await orchestrator.run(_requests("org-a"))
    assert result.ok
    assert api.created == {("org-a", Q1): 1}
    assert orchestrator.adopted_reports == 0
    # Each lost create is looked for twice: at once, and after the settle time.
    assert api.list_calls == 4


class LateLandingApi(FakeApi):
    """A create that timed out on our side lands at the server only after our first look."""

    async def create_financial_report(
        self, organizer_id: str, start: date, end: date
    ) -> FinancialReport:
        """Time out the first create; its report appears while the client looks for it."""
        if not self.created:
            self.landing = (organizer_id, ReportPeriod(start, end))
            raise RequestTimeoutError("reports.create: no answer in time")
        return await super().create_financial_report(organizer_id, start, end)

    async def list_financial_reports(self, organizer_id: str) -> list[FinancialReport]:
        """The first look finds nothing; by the second the late create has landed."""
        found = await super().list_financial_reports(organizer_id)
        landing = getattr(self, "landing", None)
        if landing is not None:
            self.add_report(*landing, datetime.now(timezone.utc))
            self.landing = None
        return found


async def test_a_create_that_lands_after_the_first_look_is_still_adopted(
    tmp_path: Path,
) -> None:
    """The orchestrator looks again after a settle time before it creates a second report."""
    api = LateLandingApi()
    orchestrator = _orchestrator(api, tmp_path)
    (result,) = await orchestrator.run(_requests("org-a"))
    assert result.ok, result.error
    assert api.created == {("org-a", Q1): 1}
    assert orchestrator.adopted_reports == 1
    assert api.list_calls == 2


async def test_no_list_call_when_nothing_was_lost(tmp_path: Path) -> None:
    """A create refused before sending (connect error aside) or answered needs no list call."""
    api = FakeApi()
    results = await _orchestrator(api, tmp_path).run(_requests("a", "b", "c"))
    assert all(r.ok for r in results)
    assert api.list_calls == 0
    assert sum(api.created.values()) == 3


async def test_an_earlier_runs_report_is_not_taken_for_ours(tmp_path: Path) -> None:
    """A same-period report created well before the first attempt is left alone."""
    api = FakeApi()
    old = api.add_report("org-a", Q1, datetime.now(timezone.utc) - timedelta(days=30))
    api.create_faults["org-a"] = [(ConnectError("refused"), False)]
    (result,) = await _orchestrator(api, tmp_path).run(_requests("org-a"))
    assert result.ok
    assert result.report_id != str(old)
    assert api.created[("org-a", Q1)] == 2  # the old one and exactly one new one


async def test_resume_after_a_kill_mid_create_adopts_the_report(tmp_path: Path) -> None:
    """A journal left in CREATING (killed after the POST left) adopts what the server made."""
    api = FakeApi()
    request = _requests("org-a")[0]
    journal_path = tmp_path / "journal.sqlite"
    with Journal(journal_path) as journal:
        journal.record_event(PROVIDER, request.job_key, CREATE_SENT_EVENT)
        journal.save(JournalEntry(PROVIDER, request.job_key, request.label, JobState.CREATING))
    # The killed run's create did reach the server.
    made = api.add_report("org-a", Q1, datetime.now(timezone.utc))
    orchestrator = _orchestrator(api, tmp_path)
    (result,) = await orchestrator.run([request])
    assert result.ok
    assert result.report_id == str(made)
    assert api.created == {("org-a", Q1): 1}
    assert orchestrator.adopted_reports == 1


async def test_many_kills_mid_create_keep_the_first_attempts_time(tmp_path: Path) -> None:
    """Resumes that create again do not move the bound: a late-listed first report is adopted."""
    api = FakeApi()
    request = _requests("org-a")[0]
    with Journal(tmp_path / "journal.sqlite") as journal:
        first = journal.record_event(PROVIDER, request.job_key, CREATE_SENT_EVENT)
        journal.save(JournalEntry(PROVIDER, request.job_key, request.label, JobState.CREATING))
    # The server shows nothing yet; this resume creates, and "dies" (its answer is lost).
    api.create_faults["org-a"] = [(ConnectionLostError("lost"), False)] * 4
    (result,) = await _orchestrator(api, tmp_path).run([request])
    assert not result.ok
    with Journal(tmp_path / "journal.sqlite") as journal:
        assert journal.last_event_at(PROVIDER, request.job_key, CREATE_SENT_EVENT) == first
        # The failed job starts a new episode next time; put it back in CREATING as a kill would.
        journal.save(JournalEntry(PROVIDER, request.job_key, request.label, JobState.CREATING))
    made = api.add_report("org-a", Q1, datetime.fromtimestamp(first, timezone.utc))
    (result,) = await _orchestrator(api, tmp_path).run([request])
    assert result.ok
    assert result.report_id == str(made)


async def test_failed_is_final_and_not_retried(tmp_path: Path) -> None:
    """A FAILED report fails its job at once with the server's message; one status call."""
    api = FakeApi()
    api.final_status["org-a"] = "FAILED"
    (result,) = await _orchestrator(api, tmp_path).run(_requests("org-a"))
    assert result.state is JobState.FAILED
    assert isinstance(result.error, V4ReportFailedError)
    assert "Geen financieel overzicht" in result.error.message
    assert api.status_calls["org-a"] == 1
    assert api.created == {("org-a", Q1): 1}


async def test_an_unknown_status_fails_the_job_without_retries(tmp_path: Path) -> None:
    """A status this code does not know is a protocol error that ends the job, not a crash."""
    api = FakeApi()
    api.final_status["org-a"] = "ARCHIVED"
    results = await _orchestrator(api, tmp_path).run(_requests("org-a", "org-b"))
    assert isinstance(results[0].error, UnknownReportStatusError)
    assert api.status_calls["org-a"] == 1
    assert results[1].ok


async def test_latest_is_the_most_recent_ended_period(tmp_path: Path) -> None:
    """``period="latest"`` resolves to the newest suggested period that ended before today."""
    api = FakeApi()
    api.periods = [Q1, Q2, ReportPeriod(date(2024, 7, 1), date(2024, 9, 30))]
    request = OrganizerReportRequest("org-a", period="latest")
    (result,) = await _orchestrator(api, tmp_path).run([request])
    assert result.ok
    assert (result.start, result.end) == (Q2.start, Q2.end)
    assert api.created == {("org-a", Q2): 1}


async def test_no_ended_period_fails_only_that_request(tmp_path: Path) -> None:
    """An organizer without an ended period fails with an InvalidArgumentError; nothing is made."""
    api = FakeApi()
    api.periods = []
    (result,) = await _orchestrator(api, tmp_path).run(
        [OrganizerReportRequest("org-a", period="latest")]
    )
    assert isinstance(result.error, InvalidArgumentError)
    assert not api.created


async def test_the_backend_takes_only_its_own_requests() -> None:
    """Another provider's request is refused before any call."""
    backend = UitpasV4Backend(FakeApi())

    class Other:
        job_key = "x"
        label = "x"

    with pytest.raises(InvalidArgumentError):
        await backend.start_report(Other())
