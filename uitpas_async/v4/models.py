"""Frozen value objects of UiTPAS API 4.0's financial reports, and the orchestrator's request.

Dates are what the API gives: a report period is two calendar dates (both
inclusive, ``format: date``), a report's ``creationDate`` an aware datetime.
Nothing secret is ever in a repr: the client secret, the access token and the
short-lived download link (which needs no further authentication) are hidden.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Literal

import attrs

from uitpas_async.engine.config import credentials_from_env
from uitpas_async.engine.errors import ConfigurationError, InvalidArgumentError
from uitpas_async.engine.filenames import safe_filename
from uitpas_async.engine.periods import period_job_key, validate_period, validate_period_request

__all__ = [
    "CLIENT_ID_VARIABLE",
    "CLIENT_SECRET_VARIABLE",
    "REPORTS_PERMISSION",
    "AccessToken",
    "ClientCredentials",
    "DownloadLink",
    "FinancialReport",
    "Organizer",
    "OrganizerReportRequest",
    "Problem",
    "ReportPeriod",
    "ReportStatus",
]

#: Environment variables of the client credentials (publiq's platform issues them).
CLIENT_ID_VARIABLE = "UITPAS_CLIENT_ID"
CLIENT_SECRET_VARIABLE = "UITPAS_CLIENT_SECRET"  # noqa: S105 (a variable name)
#: The permission an organizer must grant for its financial reports.
REPORTS_PERMISSION = "ORGANIZERS_REPORTS"
#: Characters of a client id shown in a repr; the rest is masked.
_SHOWN_ID_CHARS = 4


def _mask_id(value: str) -> str:
    if len(value) <= _SHOWN_ID_CHARS * 2:
        return "***"
    return "***" + value[-_SHOWN_ID_CHARS:]


@attrs.frozen(repr=False)
class ClientCredentials:
    """An OAuth2 client id and secret for the client-credentials flow."""

    client_id: str
    client_secret: str

    def __attrs_post_init__(self) -> None:
        for name in ("client_id", "client_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{name} must be a non-empty string")

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={_mask_id(self.client_id)!r}, client_secret='***')"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientCredentials:
        """Read ``UITPAS_CLIENT_ID`` and ``UITPAS_CLIENT_SECRET``.

        Raises:
            ConfigurationError: one or both are missing or empty.
        """
        names = (CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE)
        client_id, client_secret = credentials_from_env(names, environ, strip=True)
        return cls(client_id, client_secret)


@attrs.frozen(repr=False)
class AccessToken:
    """A bearer token and how long it stays valid; opaque (never parsed as a JWT)."""

    value: str
    #: Seconds the token stays valid from the moment it was issued.
    expires_in: float

    def __repr__(self) -> str:
        return f"AccessToken(value='***', expires_in={self.expires_in:g})"

    __str__ = __repr__


@attrs.frozen
class Problem:
    """An RFC 7807 ``application/problem+json`` body, bounded and stripped."""

    type: str
    title: str
    status: int | None = None
    detail: str | None = None
    #: The Dutch ``endUserMessage``, meant to be shown to people.
    end_user_message: str | None = None


@attrs.frozen
class Organizer:
    """An organizer the credentials may act for, with the permissions granted on it."""

    id: str
    name: str | None = None
    permissions: frozenset[str] = frozenset()

    @property
    def can_report(self) -> bool:
        """Whether financial reports are allowed (``ORGANIZERS_REPORTS``)."""
        return REPORTS_PERMISSION in self.permissions


@attrs.frozen
class ReportPeriod:
    """A report period: two calendar dates, both inclusive."""

    start: date
    end: date

    def __attrs_post_init__(self) -> None:
        validate_period(self.start, self.end)


class ReportStatus(str, enum.Enum):
    """Where a report export is: started, available for download, or failed (final)."""

    STARTED = "STARTED"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"


@attrs.frozen
class FinancialReport:
    """A financial report export, as the API describes it (``Report``)."""

    id: int
    status: ReportStatus
    #: When the export was requested (aware).
    creation_date: datetime
    #: The period, when the answer names it (list answers do; the status answer may not).
    period: ReportPeriod | None = None
    #: Why it failed; only given with ``FAILED``.
    message: str | None = None

    @property
    def available(self) -> bool:
        """Whether the report can be downloaded."""
        return self.status is ReportStatus.AVAILABLE

    @property
    def failed(self) -> bool:
        """Whether the export failed (final: it never becomes available)."""
        return self.status is ReportStatus.FAILED


@attrs.frozen(repr=False)
class DownloadLink:
    """A short-lived link that downloads a report without authentication: a credential."""

    url: str

    def __repr__(self) -> str:
        return "DownloadLink(url='***')"

    __str__ = __repr__


def _validate_request(instance: OrganizerReportRequest, _: object, __: object) -> None:
    organizer = instance.organizer_id
    if not isinstance(organizer, str) or not organizer.strip():
        raise InvalidArgumentError("organizer_id must be a non-empty string")
    if organizer != organizer.strip() or any(ord(char) < 0x20 for char in organizer):
        raise InvalidArgumentError("organizer_id must not hold spaces around it or control chars")
    validate_period_request(instance.start, instance.end, instance.period)


@attrs.frozen
class OrganizerReportRequest:
    """One organizer's financial report: explicit dates, or ``period="latest"``."""

    organizer_id: str
    start: date | None = None
    end: date | None = None
    #: ``"latest"`` takes the most recent suggested period that has ended.
    period: Literal["latest"] | None = attrs.field(default=None, validator=_validate_request)
    #: A human name for the organizer, shown in progress and manifests.
    name: str | None = None

    @property
    def job_key(self) -> str:
        """``ORGANIZER|START|END`` or ``ORGANIZER|latest``."""
        return period_job_key(self.organizer_id, self.start, self.end, self.period)

    @property
    def label(self) -> str:
        """The organizer id, safe as a folder name."""
        return safe_filename(self.organizer_id, "organizer")

    def with_period(self, period: ReportPeriod) -> OrganizerReportRequest:
        """Return this request for explicit dates."""
        return OrganizerReportRequest(self.organizer_id, period.start, period.end, name=self.name)
