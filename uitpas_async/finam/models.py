"""Frozen value objects of Finam's account reports, and the request the orchestrator runs."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TypeVar

import attrs

from uitpas_async.engine.errors import InvalidArgumentError
from uitpas_async.engine.filenames import safe_filename

__all__ = [
    "AccountReportInfo",
    "AccountReportJob",
    "AccountReportRequest",
    "DateRange",
    "ReportCreationStatus",
    "ReportForm",
    "TokenDetails",
]


_E = TypeVar("_E", bound=enum.Enum)


def _parse_enum(cls: type[_E], value: object, prefix: str) -> _E:
    """Return the member named (with or without ``prefix``) or numbered by ``value``."""
    if isinstance(value, cls):
        return value
    members = list(cls)
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(members):
            return members[value]
    elif isinstance(value, str):
        text = value.strip().upper()
        if text.isdigit():
            return _parse_enum(cls, int(text), prefix)
        name = text.removeprefix(prefix)
        for member in members:
            if member.name == name:
                return member
    raise InvalidArgumentError(f"not a {cls.__name__}: {value!r}")


class ReportForm(str, enum.Enum):
    """How detailed a broker report is; values are the REST names, numbers are gRPC's."""

    UNKNOWN = "REPORT_FORM_UNKNOWN"
    SHORT = "REPORT_FORM_SHORT"
    LONG = "REPORT_FORM_LONG"

    @classmethod
    def parse(cls, value: object) -> ReportForm:
        """Accept a member, ``REPORT_FORM_LONG``, ``long`` or the gRPC number ``2``."""
        return _parse_enum(cls, value, "REPORT_FORM_")


class ReportCreationStatus(str, enum.Enum):
    """Where a report's generation is; numbers 0 to 4 are gRPC's, in this order."""

    NOT_FOUND = "NOT_FOUND"
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"

    @classmethod
    def parse(cls, value: object) -> ReportCreationStatus:
        """Accept a member, ``SUCCESS``, ``REPORT_CREATION_STATUS_SUCCESS`` or ``3``."""
        return _parse_enum(cls, value, "REPORT_CREATION_STATUS_")


@attrs.frozen
class DateRange:
    """The interval a report covers; both ends are aware datetimes."""

    begin: datetime
    end: datetime


@attrs.frozen
class AccountReportInfo:
    """What ``GET /v1/report/{id}/info`` says about one report."""

    report_id: str
    status: ReportCreationStatus
    #: Download link; only set once the status is SUCCESS.
    url: str | None = attrs.field(default=None, repr=False)
    date_range: DateRange | None = None
    report_form: ReportForm = ReportForm.UNKNOWN
    #: The account (an int64, kept as its decimal string).
    account_id: str | None = None

    @property
    def ready(self) -> bool:
        """Whether the report can be downloaded."""
        return self.status is ReportCreationStatus.SUCCESS


@attrs.frozen
class AccountReportJob:
    """A report generation Finam accepted: its id and what was asked for."""

    report_id: str
    account_id: str
    date_range: DateRange
    report_form: ReportForm


@attrs.frozen
class TokenDetails:
    """What ``POST /v1/sessions/details`` says about a JWT (never the JWT itself)."""

    expires_at: datetime | None
    created_at: datetime | None = None
    account_ids: tuple[str, ...] = ()


def _validate_request(instance: AccountReportRequest, _: object, __: object) -> None:
    from uitpas_async.finam.protocol import validate_account_id, validate_form, validate_range

    validate_account_id(instance.account_id)
    validate_range(instance.start, instance.end)
    validate_form(instance.form)


def _to_form(value: object) -> ReportForm:
    return ReportForm.parse(value)


@attrs.frozen
class AccountReportRequest:
    """One account's broker report for whole days ``start`` to ``end`` (inclusive)."""

    account_id: str = attrs.field(converter=str)
    start: date
    end: date
    form: ReportForm = attrs.field(
        default=ReportForm.LONG, converter=_to_form, validator=_validate_request
    )

    @property
    def job_key(self) -> str:
        """``ACCOUNT|START|END|FORM``: one journal entry per distinct report."""
        return f"{self.account_id}|{self.start.isoformat()}|{self.end.isoformat()}|{self.form.name}"

    @property
    def label(self) -> str:
        """The account id, safe as a folder name."""
        return safe_filename(self.account_id, "account")
