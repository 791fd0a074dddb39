"""Frozen value objects of Finam's account reports, and the request the orchestrator runs."""

from __future__ import annotations

import enum
import re
from datetime import date, datetime, time, timedelta, timezone
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


#: Finam refuses report ranges longer than this.
MAX_RANGE = timedelta(days=92)


#: Whole-day requests are sent as days in this zone (Finam's timestamps are UTC instants).
REPORT_TIMEZONE = timezone.utc


#: The ids Finam's int64 fields can hold.
INT64_RANGE = (-(2**63), 2**63 - 1)


def validate_account_id(account_id: object) -> str:
    """Return an account id as its int64 decimal string.

    Raises:
        InvalidArgumentError: not an integer within int64.
    """
    text = str(account_id).strip() if isinstance(account_id, (str, int)) else ""
    if isinstance(account_id, bool) or not re.fullmatch(r"-?\d+", text):
        raise InvalidArgumentError(f"account_id must be an integer id, not {account_id!r}")
    if not INT64_RANGE[0] <= int(text) <= INT64_RANGE[1]:
        raise InvalidArgumentError("account_id is out of the int64 range")
    return str(int(text))


def validate_form(form: object) -> ReportForm:
    """Return the report form, which must be SHORT or LONG.

    Raises:
        InvalidArgumentError: unknown, or ``REPORT_FORM_UNKNOWN``.
    """
    parsed = ReportForm.parse(form)
    if parsed is ReportForm.UNKNOWN:
        raise InvalidArgumentError("report form must be SHORT or LONG")
    return parsed


def _instant(value: object, name: str, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgumentError(f"{name} must be an aware datetime (or a date)")
        return value
    if isinstance(value, date):
        # A date means the whole day: from its first second to its last.
        moment = time(23, 59, 59) if end else time(0, 0, 0)
        return datetime.combine(value, moment, tzinfo=REPORT_TIMEZONE)
    raise InvalidArgumentError(f"{name} must be a date or datetime, not {type(value).__name__}")


def validate_range(start: object, end: object) -> DateRange:
    """Return the report interval; dates are whole days, so ``end`` is inclusive.

    Raises:
        InvalidArgumentError: not dates or aware datetimes, end before start, or over 92 days.
    """
    begin = _instant(start, "start", end=False)
    finish = _instant(end, "end", end=True)
    if finish < begin:
        raise InvalidArgumentError(f"end {end} is before start {start}")
    # A run of whole days ends one second short of its last midnight.
    span = finish - begin + (timedelta(seconds=1) if not isinstance(end, datetime) else timedelta())
    if span > MAX_RANGE:
        raise InvalidArgumentError(
            f"report range {start}..{end} is longer than Finam's {MAX_RANGE.days} days"
        )
    return DateRange(begin, finish)
