"""Finam's report REST API without I/O: build requests, turn answers into models or errors.

Finam's REST gateway (grpc-gateway) writes enums as names, int64 as strings and
timestamps as RFC 3339; the same messages over gRPC (and the seed's example)
use numbers, plain integers and ``{seconds, nanos}``, and wrap ``url`` in a
``StringValue`` (``{"value": ...}``). Every parser here accepts both. Proto3
JSON leaves out fields at their default, so a missing ``status`` means
``NOT_FOUND`` (0) and a missing ``report_form`` means ``REPORT_FORM_UNKNOWN``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

import attrs

from uitpas_async.engine.errors import (
    AccessDeniedError,
    ApiError,
    AuthenticationError,
    HttpStatusError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
)
from uitpas_async.engine.retry_after import raise_for_overload
from uitpas_async.finam.models import (
    INT64_RANGE,
    MAX_RANGE,
    REPORT_TIMEZONE,
    AccountReportInfo,
    AccountReportJob,
    DateRange,
    ReportCreationStatus,
    ReportForm,
    TokenDetails,
    validate_account_id,
    validate_form,
    validate_range,
)

__all__ = [
    "MAX_RANGE",
    "REPORT_TIMEZONE",
    "ApiRequest",
    "build_auth",
    "build_create_report",
    "build_report_info",
    "build_token_details",
    "check_response",
    "date_range_of",
    "format_timestamp",
    "parse_auth",
    "parse_create_report",
    "parse_int64",
    "parse_report_info",
    "parse_timestamp",
    "parse_token_details",
    "redact",
    "validate_account_id",
    "validate_form",
    "validate_range",
]

#: Largest JSON answer read; report metadata is tiny.
DEFAULT_MAX_JSON_BYTES = 1024 * 1024
SESSIONS_PATH = "/v1/sessions"
SESSION_DETAILS_PATH = "/v1/sessions/details"
REPORT_PATH = "/v1/report"
#: gRPC status numbers, as grpc-gateway puts them in an error body's ``code``.
GRPC_CODES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
_RFC3339 = re.compile(
    r"^(?P<main>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})$"
)


@attrs.frozen
class ApiRequest:
    """One REST call before sending: method, path, JSON body and how to treat it."""

    method: Literal["GET", "POST"]
    path: str
    #: Short name for logs, errors, and the per-method rate limit.
    endpoint: str
    #: JSON body; hidden from repr because session calls carry the secret or the JWT.
    body: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    #: Whether sending it twice is harmless (creating a report is not).
    idempotent: bool = True
    #: Whether it needs ``Authorization: <JWT>`` (the session calls do not).
    authenticated: bool = True
    #: What the body carries that no error may show (the JWT a details call asks about).
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)

    def encoded_body(self) -> bytes | None:
        """Return the body as UTF-8 JSON, or None."""
        return None if self.body is None else json.dumps(self.body).encode()


# -- validation and building ---------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """Return an aware datetime as RFC 3339 in UTC, ``Z``-suffixed."""
    utc = value.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def build_auth(secret: str) -> ApiRequest:
    """``POST /v1/sessions``: trade the API secret for a JWT."""
    return ApiRequest(
        "POST", SESSIONS_PATH, "sessions.create", {"secret": secret}, authenticated=False
    )


def build_token_details(token: str) -> ApiRequest:
    """``POST /v1/sessions/details``: ask when a JWT expires."""
    return ApiRequest(
        "POST",
        SESSION_DETAILS_PATH,
        "sessions.details",
        {"token": token},
        authenticated=False,
        secrets=(token,),
    )


def build_create_report(
    account_id: object, start: object, end: object, form: object = ReportForm.LONG
) -> ApiRequest:
    """``POST /v1/report``: start generating an account report (checked first)."""
    account = validate_account_id(account_id)
    date_range = validate_range(start, end)
    report_form = validate_form(form)
    body = {
        "date_range": {
            "date_begin": format_timestamp(date_range.begin),
            "date_end": format_timestamp(date_range.end),
        },
        "report_form": report_form.value,
        "account_id": account,
    }
    return ApiRequest("POST", REPORT_PATH, "report.create", body, idempotent=False)


def report_id_segment(report_id: str) -> str:
    """Return a report id as one safe path segment.

    Raises:
        InvalidArgumentError: empty.
    """
    if not isinstance(report_id, str) or not report_id.strip():
        raise InvalidArgumentError("report_id must be a non-empty string")
    return quote(report_id.strip(), safe="")


def build_report_info(report_id: str) -> ApiRequest:
    """``GET /v1/report/{report_id}/info``."""
    return ApiRequest("GET", f"{REPORT_PATH}/{report_id_segment(report_id)}/info", "report.info")


# -- answers -------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _describe(headers: Mapping[str, str], body: bytes) -> str:
    if not body:
        return "an empty body"
    kind = headers.get("Content-Type", "unknown type").split(";")[0].strip() or "unknown type"
    return f"a {len(body)}-byte {kind} body"


def _error_body(body: bytes) -> tuple[str, str] | None:
    """Return grpc-gateway's ``(code name, message)`` from an error body, if it is one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or "code" not in doc:
        return None
    code = doc.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < len(GRPC_CODES):
        name = GRPC_CODES[code]
    elif isinstance(code, str) and code.strip():
        name = code.strip().upper()
    else:
        return None
    message = doc.get("message")
    return name, message if isinstance(message, str) else ""


def check_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    endpoint: str,
    secrets: Iterable[str] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return the JSON object of a successful answer, or raise the matching error.

    This is the one place where Finam's answers become exceptions; any text taken
    from the body has ``secrets`` removed first.

    Raises:
        RateLimitedError: HTTP 429.
        ServerError: HTTP 5xx.
        AuthenticationError: HTTP 401 (missing, invalid or expired JWT).
        AccessDeniedError: HTTP 403 with ``PERMISSION_DENIED``.
        ApiError: another error status with a gRPC error body (``code`` is its name).
        HttpStatusError: another error status without one.
        MalformedResponseError: a success whose body is not a JSON object.
    """
    secrets = tuple(secrets)
    where = f"{endpoint}: HTTP {status}"
    raise_for_overload(
        status, headers, where=where, describe=lambda: _describe(headers, body), now=now
    )
    if status >= 400:
        error = _error_body(body)
        if status == 401:
            reason = f" ({redact(error[1], secrets)})" if error and error[1] else ""
            raise AuthenticationError(f"{where}: token refused{reason}", status=status)
        if error is None:
            raise HttpStatusError(f"{where} with {_describe(headers, body)}", status=status)
        code, message = error
        error_class: type[ApiError] = ApiError
        if code == "PERMISSION_DENIED":
            error_class = AccessDeniedError
        elif code in ("INVALID_ARGUMENT", "OUT_OF_RANGE", "FAILED_PRECONDITION"):
            error_class = InvalidRequestError
        raise error_class(code, redact(message, secrets), status=status, endpoint=endpoint)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(
            f"{where}: expected JSON, got {_describe(headers, body)}", status=status
        ) from exc
    if not isinstance(doc, dict):
        raise MalformedResponseError(f"{where}: expected a JSON object", status=status)
    return doc


def parse_int64(value: object, where: str) -> str:
    """Return an int64 given as a JSON number or string, as its decimal string.

    Raises:
        MalformedResponseError: neither, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MalformedResponseError(f"{where}: expected an int64, got {type(value).__name__}")
    text = str(value).strip()
    if not re.fullmatch(r"-?\d+", text) or not INT64_RANGE[0] <= int(text) <= INT64_RANGE[1]:
        raise MalformedResponseError(f"{where}: not an int64: {text[:40]!r}")
    return str(int(text))


def parse_timestamp(value: object, where: str) -> datetime:
    """Return an aware UTC datetime from RFC 3339 text or ``{seconds, nanos}``.

    Raises:
        MalformedResponseError: neither form, or out of range.
    """
    if isinstance(value, str):
        match = _RFC3339.match(value.strip())
        if match is None:
            raise MalformedResponseError(f"{where}: not an RFC 3339 timestamp: {value[:40]!r}")
        zone = match["zone"].upper().replace("Z", "+00:00")
        # Python keeps microseconds: nanoseconds are cut, not rounded (never later).
        fraction = (match["fraction"] or "")[:6].ljust(6, "0")
        try:
            parsed = datetime.fromisoformat(
                f"{match['main'].replace(' ', 'T').replace('t', 'T')}.{fraction}{zone}"
            )
        except ValueError as exc:
            raise MalformedResponseError(f"{where}: invalid timestamp {value[:40]!r}") from exc
        return parsed.astimezone(timezone.utc)
    if isinstance(value, dict):
        seconds = int(parse_int64(value.get("seconds", 0), f"{where}.seconds"))
        nanos = value.get("nanos", 0)
        if isinstance(nanos, str) and nanos.strip().isdigit():
            nanos = int(nanos)
        if isinstance(nanos, bool) or not isinstance(nanos, int) or not 0 <= nanos <= 999_999_999:
            raise MalformedResponseError(f"{where}.nanos: not in 0..999999999")
        try:
            epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
            return epoch + timedelta(seconds=seconds, microseconds=nanos // 1000)
        except OverflowError as exc:
            raise MalformedResponseError(f"{where}: timestamp out of range") from exc
    raise MalformedResponseError(f"{where}: expected a timestamp, got {type(value).__name__}")


def _object(parent: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any] | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedResponseError(f"{where}.{name}: expected an object")
    return value


def _string(parent: Mapping[str, Any], name: str, where: str) -> str | None:
    value = parent.get(name)
    if value is None:
        return None
    if isinstance(value, dict):  # google.protobuf.StringValue over gRPC
        value = value.get("value")
        if value is None:
            return None
    if not isinstance(value, str):
        raise MalformedResponseError(f"{where}.{name}: expected a string")
    return value.strip() or None


def _enum(kind: type[ReportForm] | type[ReportCreationStatus], value: object, where: str) -> Any:
    try:
        return kind.parse(value)
    except InvalidArgumentError as exc:
        raise MalformedResponseError(f"{where}: unknown {kind.__name__} {value!r}") from exc


def _date_range(value: Mapping[str, Any] | None, where: str) -> DateRange | None:
    if value is None:
        return None
    epoch: dict[str, int] = {}
    begin = parse_timestamp(value.get("date_begin", epoch), f"{where}.date_begin")
    end = parse_timestamp(value.get("date_end", epoch), f"{where}.date_end")
    return DateRange(begin, end)


def parse_auth(doc: Mapping[str, Any]) -> str:
    """Return the JWT of a ``POST /v1/sessions`` answer.

    Raises:
        MalformedResponseError: no token.
    """
    token = doc.get("token")
    if not isinstance(token, str) or not token.strip():
        raise MalformedResponseError("sessions.create: the answer holds no token")
    return token.strip()


def parse_token_details(doc: Mapping[str, Any]) -> TokenDetails:
    """Return a ``POST /v1/sessions/details`` answer (``expires_at`` may be absent)."""
    where = "sessions.details"
    expires = doc.get("expires_at")
    created = doc.get("created_at")
    accounts = doc.get("account_ids") or []
    if not isinstance(accounts, list):
        raise MalformedResponseError(f"{where}.account_ids: expected a list")
    return TokenDetails(
        expires_at=parse_timestamp(expires, f"{where}.expires_at") if expires else None,
        created_at=parse_timestamp(created, f"{where}.created_at") if created else None,
        account_ids=tuple(parse_int64(a, f"{where}.account_ids") for a in accounts),
    )


def parse_create_report(doc: Mapping[str, Any], request: ApiRequest) -> AccountReportJob:
    """Return the job a ``POST /v1/report`` answer started.

    Raises:
        MalformedResponseError: no ``report_id``.
    """
    report_id = _string(doc, "report_id", "report.create")
    if report_id is None:
        raise MalformedResponseError("report.create: the answer holds no report_id")
    assert request.body is not None
    return AccountReportJob(
        report_id=report_id,
        account_id=str(request.body["account_id"]),
        date_range=date_range_of(request),
        report_form=ReportForm(request.body["report_form"]),
    )


def date_range_of(request: ApiRequest) -> DateRange:
    """Return the range a create request asks for."""
    assert request.body is not None
    span = request.body["date_range"]
    return DateRange(
        parse_timestamp(span["date_begin"], "date_begin"),
        parse_timestamp(span["date_end"], "date_end"),
    )


def parse_report_info(doc: Mapping[str, Any], report_id: str | None = None) -> AccountReportInfo:
    """Return the ``info`` of a ``GET /v1/report/{id}/info`` answer.

    ``SUCCESS`` without a ``url`` is refused: nothing could be downloaded.

    Raises:
        MalformedResponseError: no ``info``, a bad field, or SUCCESS without url.
    """
    where = "report.info"
    info = _object(doc, "info", where)
    if info is None:
        raise MalformedResponseError(f"{where}: the answer holds no info")
    where += ".info"
    status = _enum(ReportCreationStatus, info.get("status", 0), f"{where}.status")
    url = _string(info, "url", where)
    if status is ReportCreationStatus.SUCCESS and url is None:
        raise MalformedResponseError(f"{where}: status SUCCESS without a download url")
    account = info.get("account_id")
    return AccountReportInfo(
        report_id=_string(info, "report_id", where) or report_id or "",
        status=status,
        url=url,
        date_range=_date_range(_object(info, "date_range", where), f"{where}.date_range"),
        report_form=_enum(ReportForm, info.get("report_form", 0), f"{where}.report_form"),
        account_id=parse_int64(account, f"{where}.account_id") if account is not None else None,
    )
