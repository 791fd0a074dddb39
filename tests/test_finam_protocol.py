"""Finam's report protocol without I/O: the seed's example, both JSON dialects, validation."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from uitpas_async.errors import (
    AccessDeniedError,
    ApiError,
    AuthenticationError,
    HttpStatusError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
)
from uitpas_async.finam import AccountReportRequest, ReportCreationStatus, ReportForm, protocol

SEED = Path(__file__).resolve().parent.parent / ".." / "shared" / "seeds"
SEED_FILE = SEED / "003_a181825bdfda4d29.txt"
UTC = timezone.utc


def _seed_example() -> dict[str, object]:
    if not SEED_FILE.is_file():
        pytest.skip("seed 003 is absent")
    text = SEED_FILE.read_text(encoding="utf-8")
    match = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert match is not None
    doc = json.loads(match[1])
    assert isinstance(doc, dict)
    return doc


def test_seed_example_parses() -> None:
    """The seed's gRPC-style example: numbers for enums, {seconds, nanos}, url.value."""
    info = protocol.parse_report_info(_seed_example())
    assert info.report_id == "string"
    assert info.status is ReportCreationStatus.NOT_FOUND
    assert info.report_form is ReportForm.UNKNOWN
    assert info.account_id == "0"
    assert info.url == "string"
    assert info.date_range is not None
    assert info.date_range.begin == datetime(1970, 1, 1, tzinfo=UTC)
    assert info.date_range.end == datetime(1970, 1, 1, tzinfo=UTC)


def test_rest_style_info_parses() -> None:
    """REST style: names, RFC 3339 with nanoseconds and offsets, int64 strings, plain url."""
    doc = {
        "info": {
            "report_id": "01KBMPQ3CEZ4BBCVGBW5JS8S8Y",
            "status": "SUCCESS",
            "date_range": {
                "date_begin": "2024-01-01T00:00:00Z",
                "date_end": "2024-03-31T23:59:59.123456789+03:00",
            },
            "report_form": "REPORT_FORM_LONG",
            "account_id": "9223372036854775807",
            "url": "https://example.test/r.pdf",
        }
    }
    info = protocol.parse_report_info(doc)
    assert info.ready
    assert info.report_form is ReportForm.LONG
    assert info.account_id == "9223372036854775807"
    assert info.url == "https://example.test/r.pdf"
    assert info.date_range is not None
    assert info.date_range.end == datetime(2024, 3, 31, 20, 59, 59, 123456, tzinfo=UTC)


def test_grpc_style_info_parses() -> None:
    """gRPC style: status 3, report_form 1, seconds as a string, account as a number."""
    doc = {
        "info": {
            "report_id": "r1",
            "status": 3,
            "date_range": {"date_begin": {"seconds": "1704067200", "nanos": 5000}},
            "report_form": 1,
            "account_id": 1234567,
            "url": {"value": "https://example.test/r.xml"},
        }
    }
    info = protocol.parse_report_info(doc)
    assert info.status is ReportCreationStatus.SUCCESS
    assert info.report_form is ReportForm.SHORT
    assert info.account_id == "1234567"
    assert info.date_range is not None
    assert info.date_range.begin == datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=UTC)
    assert info.date_range.end == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, ReportCreationStatus.NOT_FOUND),
        (1, ReportCreationStatus.PENDING),
        (2, ReportCreationStatus.IN_PROGRESS),
        (3, ReportCreationStatus.SUCCESS),
        (4, ReportCreationStatus.ERROR),
        ("IN_PROGRESS", ReportCreationStatus.IN_PROGRESS),
        ("REPORT_CREATION_STATUS_PENDING", ReportCreationStatus.PENDING),
        ("error", ReportCreationStatus.ERROR),
        ("4", ReportCreationStatus.ERROR),
    ],
)
def test_status_names_and_numbers(value: object, expected: ReportCreationStatus) -> None:
    """Statuses are accepted as names (with or without prefix) and as numbers."""
    assert ReportCreationStatus.parse(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, ReportForm.UNKNOWN),
        (1, ReportForm.SHORT),
        (2, ReportForm.LONG),
        ("REPORT_FORM_SHORT", ReportForm.SHORT),
        ("long", ReportForm.LONG),
        (ReportForm.LONG, ReportForm.LONG),
    ],
)
def test_form_names_and_numbers(value: object, expected: ReportForm) -> None:
    """Report forms are accepted as names, short names and numbers."""
    assert ReportForm.parse(value) is expected


@pytest.mark.parametrize("value", [5, -1, True, "DONE", None, 2.0])
def test_unknown_enum_values_are_refused(value: object) -> None:
    """Anything else is an InvalidArgumentError (a MalformedResponseError in answers)."""
    with pytest.raises(InvalidArgumentError):
        ReportCreationStatus.parse(value)
    with pytest.raises(MalformedResponseError):
        protocol.parse_report_info({"info": {"status": value if value is not None else []}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=UTC)),
        ("2024-02-29t12:00:00.5z", datetime(2024, 2, 29, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-02-29T15:00:00+03:00", datetime(2024, 2, 29, 12, tzinfo=UTC)),
        ({"seconds": 1709208000}, datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (
            {"seconds": "1709208000", "nanos": 999_999_999},
            datetime(2024, 2, 29, 12, 0, 0, 999999, tzinfo=UTC),
        ),
        ({}, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps(value: object, expected: datetime) -> None:
    """Timestamps parse from RFC 3339 and from {seconds, nanos} into aware UTC."""
    assert protocol.parse_timestamp(value, "t") == expected


@pytest.mark.parametrize(
    "value",
    ["2024-02-29T12:00:00", "2024-02-30T00:00:00Z", "yesterday", 1709208000, {"nanos": -1}],
)
def test_bad_timestamps(value: object) -> None:
    """No zone, impossible dates, free text, bare numbers and bad nanos are refused."""
    with pytest.raises(MalformedResponseError):
        protocol.parse_timestamp(value, "t")


def test_success_without_url_is_a_protocol_error() -> None:
    """SUCCESS without a url cannot be downloaded: MalformedResponseError."""
    with pytest.raises(MalformedResponseError, match="without a download url"):
        protocol.parse_report_info({"info": {"report_id": "r", "status": "SUCCESS"}})
    with pytest.raises(MalformedResponseError):
        protocol.parse_report_info({"info": {"status": 3, "url": {"value": ""}}})


def test_missing_status_means_not_found() -> None:
    """Proto3 JSON leaves out the 0 default: no status is NOT_FOUND."""
    info = protocol.parse_report_info({"info": {}}, "asked-id")
    assert info.status is ReportCreationStatus.NOT_FOUND
    assert info.report_id == "asked-id"


D = date(2024, 1, 1)


@pytest.mark.parametrize(
    ("account", "start", "end", "form", "ok"),
    [
        ("1234567", D, date(2024, 3, 31), ReportForm.LONG, True),
        (1234567, D, D, "short", True),
        ("1", date(2024, 7, 1), date(2024, 9, 30), ReportForm.SHORT, True),  # 92 days
        ("1", D, D + timedelta(days=91), ReportForm.LONG, True),  # 92 days inclusive
        ("1", D, D + timedelta(days=92), ReportForm.LONG, False),  # 93 days
        ("1", D, D - timedelta(days=1), ReportForm.LONG, False),  # end before start
        ("1", D, date(2024, 3, 31), ReportForm.UNKNOWN, False),
        ("1", D, date(2024, 3, 31), 0, False),
        ("1", D, date(2024, 3, 31), "MEDIUM", False),
        ("", D, D, ReportForm.LONG, False),
        ("abc", D, D, ReportForm.LONG, False),
        ("99999999999999999999", D, D, ReportForm.LONG, False),
        ("1", datetime(2024, 1, 1), datetime(2024, 1, 2), ReportForm.LONG, False),  # naive
        (
            "1",
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2024, 4, 2, tzinfo=UTC),
            ReportForm.LONG,
            True,
        ),
        (
            "1",
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2024, 4, 2, 0, 0, 1, tzinfo=UTC),
            ReportForm.LONG,
            False,
        ),
        ("1", "2024-01-01", "2024-01-02", ReportForm.LONG, False),
    ],
)
def test_validation_before_any_call(
    account: object, start: object, end: object, form: object, ok: bool
) -> None:
    """Form SHORT/LONG, range at most 92 days, end not before start, int64 account."""
    if ok:
        request = protocol.build_create_report(account, start, end, form)
        assert request.method == "POST"
        assert request.path == "/v1/report"
        assert not request.idempotent
    else:
        with pytest.raises(InvalidArgumentError):
            protocol.build_create_report(account, start, end, form)


def test_create_body_is_rest_json() -> None:
    """The create body uses RFC 3339, the form's name, and the account as a string."""
    request = protocol.build_create_report(1234567, D, date(2024, 3, 31), ReportForm.SHORT)
    assert request.body == {
        "date_range": {"date_begin": "2024-01-01T00:00:00Z", "date_end": "2024-03-31T23:59:59Z"},
        "report_form": "REPORT_FORM_SHORT",
        "account_id": "1234567",
    }


def test_account_report_request_validates_and_keys() -> None:
    """AccountReportRequest checks itself and has a stable journal key and label."""
    request = AccountReportRequest(account_id=42, start=D, end=date(2024, 3, 31), form="short")
    assert request.job_key == "42|2024-01-01|2024-03-31|SHORT"
    assert request.label == "42"
    with pytest.raises(InvalidArgumentError):
        AccountReportRequest("42", D, D + timedelta(days=100))


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (429, b"", RateLimitedError, "RATE_LIMITED"),
        (503, b"<html/>", ServerError, "SERVER_ERROR"),
        (
            401,
            b'{"code": 16, "message": "token is expired"}',
            AuthenticationError,
            "AUTHENTICATION",
        ),
        (403, b'{"code": 7, "message": "no"}', AccessDeniedError, "PERMISSION_DENIED"),
        (400, b'{"code": 3, "message": "bad range"}', InvalidRequestError, "INVALID_ARGUMENT"),
        (404, b'{"code": "NOT_FOUND", "message": ""}', ApiError, "NOT_FOUND"),
        (404, b"<html>nope</html>", HttpStatusError, "HTTP_STATUS"),
        (200, b"<html>login</html>", MalformedResponseError, "MALFORMED_RESPONSE"),
        (200, b"[1, 2]", MalformedResponseError, "MALFORMED_RESPONSE"),
    ],
)
def test_answers_become_errors(status: int, body: bytes, error: type[Exception], code: str) -> None:
    """Each error answer maps to one class of the package's tree, with a stable code."""
    with pytest.raises(error) as caught:
        protocol.check_response(status, {"Retry-After": "2"}, body, endpoint="report.info")
    assert getattr(caught.value, "code", None) == code


def test_error_text_from_the_server_is_redacted() -> None:
    """A server echoing the secret in its message never puts it into our error."""
    body = b'{"code": 3, "message": "bad secret s3cr3t-VALUE"}'
    with pytest.raises(ApiError) as caught:
        protocol.check_response(400, {}, body, endpoint="sessions.create", secrets=["s3cr3t-VALUE"])
    assert "s3cr3t-VALUE" not in str(caught.value)
    assert "s3cr3t-VALUE" not in repr(caught.value)


def test_auth_request_repr_hides_the_secret() -> None:
    """The session request keeps the secret out of its repr."""
    assert "s3cr3t" not in repr(protocol.build_auth("s3cr3t"))
