"""UiTPAS API 4.0 (publiq's JSON API): financial reports as a provider beside the XML API."""

from __future__ import annotations

from uitpas_async.v4.backend import UitpasV4Backend
from uitpas_async.v4.client import UitpasV4Client
from uitpas_async.v4.errors import (
    OrganizerNotFoundError,
    TokenRequestError,
    UnknownReportStatusError,
    V4AccessDeniedError,
    V4ApiError,
    V4AuthenticationError,
    V4InvalidRequestError,
    V4RateLimitedError,
    V4ReportFailedError,
    V4ReportInvalidStatusError,
    V4ReportNotFoundError,
)
from uitpas_async.v4.models import (
    AccessToken,
    ClientCredentials,
    DownloadLink,
    FinancialReport,
    Organizer,
    OrganizerReportRequest,
    Problem,
    ReportPeriod,
    ReportStatus,
)

__all__ = [
    "AccessToken",
    "ClientCredentials",
    "DownloadLink",
    "FinancialReport",
    "Organizer",
    "OrganizerNotFoundError",
    "OrganizerReportRequest",
    "Problem",
    "ReportPeriod",
    "ReportStatus",
    "TokenRequestError",
    "UitpasV4Backend",
    "UitpasV4Client",
    "UnknownReportStatusError",
    "V4AccessDeniedError",
    "V4ApiError",
    "V4AuthenticationError",
    "V4InvalidRequestError",
    "V4RateLimitedError",
    "V4ReportFailedError",
    "V4ReportInvalidStatusError",
    "V4ReportNotFoundError",
]
