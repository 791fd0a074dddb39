"""The seam between the orchestrator and a report provider: start, poll, download.

The orchestrator knows nothing else about a provider. A backend turns one
request into a started report, answers whether it is ready, and downloads it;
it also says which errors mean "the server forgot this report".

A client may be a backend itself (``FinamClient``) or name its adapter through
:class:`HasReportBackend` (``UitpasClient.report_backend()``), so that
``ReportOrchestrator(client, ...)`` works for every provider without the engine
knowing any.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import attrs

from uitpas_async.engine.errors import InvalidArgumentError, UitpasError
from uitpas_async.engine.models import DownloadedReport

__all__ = [
    "FindsStartedReports",
    "HasReportBackend",
    "JobRequest",
    "ReportBackend",
    "StartedReport",
    "as_backend",
    "expect_request",
]

_Request = TypeVar("_Request")


@runtime_checkable
class JobRequest(Protocol):
    """What the orchestrator needs from any provider's request."""

    @property
    def job_key(self) -> str:
        """A stable identity of the request within its provider (journal key)."""
        ...

    @property
    def label(self) -> str:
        """The owner of the report (balie, account), used as its folder name."""
        ...


@attrs.frozen
class StartedReport:
    """A report a provider has started, with the period it covers."""

    report_id: str
    start: date | None = None
    end: date | None = None


@runtime_checkable
class ReportBackend(Protocol):
    """A provider of asynchronously generated reports."""

    #: Short provider name, part of every journal key.
    provider: str

    async def resolve_request(self, request: JobRequest) -> JobRequest:
        """Settle what the journal key depends on (such as "latest" as concrete dates)."""
        ...

    async def start_report(self, request: JobRequest) -> StartedReport:
        """Start generating the report for ``request``."""
        ...

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        """Return whether the report can be downloaded."""
        ...

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        """Download the finished report into ``dest_dir``."""
        ...

    def is_report_gone(self, error: UitpasError) -> bool:
        """Return whether ``error`` means the server no longer knows the report."""
        ...

    # Optional: a backend may also have ``request_rate`` (float | None), the most
    # status calls per second its client admits. The orchestrator then spaces the
    # batch's polls to keep within it rather than queueing at the limiter. And it
    # may implement :class:`FindsStartedReports`.


@runtime_checkable
class FindsStartedReports(Protocol):
    """A backend that can find a report a create started even though its answer was lost.

    Optional. When a create may have reached the server without us hearing back
    (a dropped connection, a timeout, a 5xx, a run killed mid-create), the
    orchestrator asks this before creating again, and adopts what it returns,
    so the server never holds two reports for one request.
    """

    async def find_started_report(
        self, request: JobRequest, since: datetime | None
    ) -> StartedReport | None:
        """Return a report for ``request`` started at or after ``since`` (aware), if any."""
        ...


@runtime_checkable
class HasReportBackend(Protocol):
    """A client that is not a backend itself but can give one."""

    def report_backend(self) -> ReportBackend:
        """Return the backend that drives this client's reports."""
        ...


def as_backend(source: ReportBackend | HasReportBackend) -> ReportBackend:
    """Return ``source`` as a backend: itself, or the one it names."""
    if isinstance(source, HasReportBackend):
        return source.report_backend()
    return source


def expect_request(request: JobRequest, kind: type[_Request], provider_name: str) -> _Request:
    """Return ``request`` as the backend's own request type, or refuse another provider's.

    Raises:
        InvalidArgumentError: ``request`` is not a ``kind``.
    """
    if not isinstance(request, kind):
        raise InvalidArgumentError(
            f"the {provider_name} backend takes {kind.__name__}, not {type(request).__name__}"
        )
    return request
