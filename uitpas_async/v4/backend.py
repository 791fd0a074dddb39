"""UiTPAS API 4.0 behind the engine's seam: one organizer's report per request.

Beyond the seam's five operations this backend can *find a started report*
(:class:`~uitpas_async.engine.backend.FindsStartedReports`): the API lists an
organizer's earlier exports, so after a create whose answer was lost the
orchestrator adopts the report that create started instead of making a second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

from uitpas_async.engine.backend import JobRequest, StartedReport, expect_request
from uitpas_async.engine.errors import InvalidArgumentError, UitpasError, UnknownReportError
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.v4.models import FinancialReport, OrganizerReportRequest, ReportPeriod
from uitpas_async.v4.protocol import check_report, find_adoptable, latest_period

__all__ = ["PROVIDER", "ReportClient", "UitpasV4Backend"]

#: The provider name in journal keys (distinct from the XML API's "uitpas").
PROVIDER = "uitpas4"


class ReportClient(Protocol):
    """What the backend needs of a client (``UitpasV4Client``, or a fake in tests)."""

    @property
    def request_rate(self) -> float | None:
        """The most requests a second the client sends, or None."""
        ...

    async def get_financial_report_periods(self, organizer_id: str) -> list[ReportPeriod]:
        """Return the organizer's suggested periods."""
        ...

    async def create_financial_report(
        self, organizer_id: str, start: date, end: date
    ) -> FinancialReport:
        """Start an export."""
        ...

    async def get_financial_report(self, organizer_id: str, report_id: int) -> FinancialReport:
        """Return one export's status."""
        ...

    async def list_financial_reports(self, organizer_id: str) -> list[FinancialReport]:
        """Return the organizer's earlier exports."""
        ...

    async def download_financial_report(
        self, organizer_id: str, report_id: int, dest_dir: str | Path
    ) -> DownloadedReport:
        """Download an available export into ``dest_dir``."""
        ...


def _report_id(report_id: str) -> int:
    if not report_id.isdigit():
        raise InvalidArgumentError(f"not a UiTPAS 4.0 report id: {report_id[:40]!r}")
    return int(report_id)


class UitpasV4Backend:
    """Drives UiTPAS API 4.0 financial reports through a client."""

    provider = PROVIDER

    def __init__(self, client: ReportClient, *, today: Callable[[], date] = date.today) -> None:
        self.client = client
        #: Today's date, for "latest" (a period counts once it has ended).
        self._today = today

    @property
    def request_rate(self) -> float | None:
        """The client's request-rate limit; polls keep within it."""
        return self.client.request_rate

    @staticmethod
    def _request(request: JobRequest) -> OrganizerReportRequest:
        return expect_request(request, OrganizerReportRequest, "UiTPAS 4.0")

    @classmethod
    def _period(cls, request: JobRequest) -> tuple[OrganizerReportRequest, ReportPeriod]:
        req = cls._request(request)
        if req.start is None or req.end is None:
            raise InvalidArgumentError("resolve a period='latest' request before starting it")
        return req, ReportPeriod(req.start, req.end)

    async def resolve_request(self, request: JobRequest) -> OrganizerReportRequest:
        """Turn ``period="latest"`` into the most recent suggested period that has ended."""
        req = self._request(request)
        if req.period != "latest":
            return req
        periods = await self.client.get_financial_report_periods(req.organizer_id)
        latest = latest_period(periods, self._today())
        if latest is None:
            raise InvalidArgumentError(f"organizer {req.label} has no ended report period")
        return req.with_period(latest)

    async def start_report(self, request: JobRequest) -> StartedReport:
        """Start the export of a resolved request; one that fails at once fails here."""
        req, period = self._period(request)
        report = await self.client.create_financial_report(
            req.organizer_id, period.start, period.end
        )
        check_report(report, endpoint="reports.create")
        return StartedReport(str(report.id), period.start, period.end)

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        """Poll the status once; FAILED raises ``V4ReportFailedError`` (final)."""
        req = self._request(request)
        report = await self.client.get_financial_report(req.organizer_id, _report_id(report_id))
        return check_report(report)

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        """Download the report into ``dest_dir``."""
        req = self._request(request)
        return await self.client.download_financial_report(
            req.organizer_id, _report_id(report_id), dest_dir
        )

    def is_report_gone(self, error: UitpasError) -> bool:
        """``report-not-found`` means the server forgot the report."""
        return isinstance(error, UnknownReportError)

    async def find_started_report(
        self, request: JobRequest, since: datetime | None
    ) -> StartedReport | None:
        """Return the export a lost create started: same period, created since ``since``."""
        req, period = self._period(request)
        reports = await self.client.list_financial_reports(req.organizer_id)
        found = find_adoptable(reports, period, since)
        if found is None:
            return None
        return StartedReport(str(found.id), period.start, period.end)
