"""The UiTPAS XML API behind the engine's seam: one balie's report per request."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from uitpas_async.engine.backend import JobRequest, StartedReport, expect_request
from uitpas_async.engine.errors import InvalidArgumentError, UitpasError, UnknownReportError
from uitpas_async.engine.filenames import safe_filename
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.periods import period_job_key, validate_period_request

if TYPE_CHECKING:  # the client builds its backend, so only the type is needed here
    from uitpas_async.xml_api.client import UitpasClient

__all__ = ["ReportRequest", "UitpasBackend"]


def _validate_request(instance: ReportRequest, _: object, __: object) -> None:
    if not instance.balie_consumer_key or not instance.balie_consumer_key.strip():
        raise InvalidArgumentError("balie_consumer_key must not be empty")
    validate_period_request(instance.start, instance.end, instance.period)


@attrs.frozen
class ReportRequest:
    """One balie's financial report for a period (explicit dates, or its latest period)."""

    balie_consumer_key: str
    start: date | None = None
    end: date | None = attrs.field(default=None)
    #: ``"latest"`` asks the periods endpoint for the balie's most recent completed period.
    period: Literal["latest"] | None = attrs.field(default=None, validator=_validate_request)
    #: A human name for the balie, shown in progress and manifests.
    name: str | None = None

    @property
    def job_key(self) -> str:
        """``KEY|START|END`` or ``KEY|latest``."""
        return period_job_key(self.balie_consumer_key, self.start, self.end, self.period)

    @property
    def label(self) -> str:
        """The balie key, safe as a folder name."""
        return safe_filename(self.balie_consumer_key, "balie")


class UitpasBackend:
    """Drives UiTPAS financial reports through a :class:`UitpasClient`."""

    provider = "uitpas"

    def __init__(self, client: UitpasClient) -> None:
        self.client = client

    @property
    def request_rate(self) -> float | None:
        """The client's request-rate limit (``Limits.rate_limit``); polls keep within it."""
        return self.client.limits.rate_limit

    @staticmethod
    def _request(request: JobRequest) -> ReportRequest:
        return expect_request(request, ReportRequest, "UiTPAS")

    async def resolve_request(self, request: JobRequest) -> ReportRequest:
        """Turn ``period="latest"`` into the balie's most recent completed period.

        The journal keys jobs by balie and dates, so a quarterly run with the same
        journal fetches the new quarter instead of finding last quarter's report.
        """
        req = self._request(request)
        if req.period != "latest":
            return req
        periods = await self.client.get_financial_report_periods(
            balie_consumer_key=req.balie_consumer_key
        )
        if not periods:
            raise InvalidArgumentError(f"balie {req.label} has no completed reporting period")
        latest = periods[0]
        return ReportRequest(
            req.balie_consumer_key, latest.start.date(), latest.end.date(), name=req.name
        )

    async def start_report(self, request: JobRequest) -> StartedReport:
        """Create the report for a resolved request (explicit dates)."""
        req = self._request(request)
        if req.start is None or req.end is None:
            raise InvalidArgumentError("resolve a period='latest' request before starting it")
        job = await self.client.create_financial_report(
            req.start, req.end, balie_consumer_key=req.balie_consumer_key
        )
        return StartedReport(job.report_id, req.start, req.end)

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        """Poll the report's status once."""
        status = await self.client.get_financial_report_status(
            report_id, balie_consumer_key=self._request(request).balie_consumer_key
        )
        return status.completed

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        """Download the report into ``dest_dir``."""
        return await self.client.download_financial_report(
            report_id, dest_dir, balie_consumer_key=self._request(request).balie_consumer_key
        )

    def is_report_gone(self, error: UitpasError) -> bool:
        """``UNKNOWN_REPORT_ID`` means the server forgot the report."""
        return isinstance(error, UnknownReportError)
