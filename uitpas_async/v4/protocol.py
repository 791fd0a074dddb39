"""UiTPAS API 4.0 without I/O: build requests, turn answers into models or typed errors.

The API (publiq's OpenAPI document "UiTPAS API 4.0", tag "Financial reports",
and ``GET /permissions``) speaks JSON; its errors are RFC 7807
``application/problem+json`` keyed by a ``type`` URI. Tokens come from the
OAuth2 client-credentials flow of publiq's Keycloak realm, whose own errors are
RFC 6749 ``{"error", "error_description"}``. Every body read here is bounded in
size, and any text taken from a body has the caller's secrets removed before it
can reach a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

import attrs

from uitpas_async.engine.errors import (
    AuthenticationError,
    ConfigurationError,
    HttpStatusError,
    InvalidArgumentError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
)
from uitpas_async.engine.filenames import safe_filename
from uitpas_async.engine.periods import validate_period
from uitpas_async.engine.retry_after import parse_retry_after, raise_for_overload
from uitpas_async.v4.errors import (
    TokenRequestError,
    UnknownReportStatusError,
    V4ReportFailedError,
    problem_error,
)
from uitpas_async.v4.models import (
    REPORTS_PERMISSION,
    AccessToken,
    ClientCredentials,
    DownloadLink,
    FinancialReport,
    Organizer,
    Problem,
    ReportPeriod,
    ReportStatus,
)

__all__ = [
    "ADOPTION_CLOCK_SKEW",
    "DEFAULT_EXPIRES_IN",
    "DEFAULT_MAX_JSON_BYTES",
    "ENVIRONMENTS",
    "MAX_PERMISSIONS_BYTES",
    "MAX_PROBLEM_TEXT",
    "TOKEN_PATH",
    "ApiRequest",
    "Endpoints",
    "build_create_report",
    "build_download",
    "build_download_link",
    "build_get_report",
    "build_list_reports",
    "build_periods",
    "build_permissions",
    "build_token_request",
    "check_report",
    "check_response",
    "check_token_response",
    "download_fallback_filename",
    "endpoints_for",
    "find_adoptable",
    "latest_period",
    "organizer_segment",
    "parse_download_link",
    "parse_json",
    "parse_periods",
    "parse_permissions",
    "parse_problem",
    "parse_report",
    "parse_reports",
    "redact",
    "report_id_segment",
    "token_endpoint",
]

#: The token endpoint under publiq's authorization server.
TOKEN_PATH = "/realms/uitid/protocol/openid-connect/token"  # noqa: S105 (a path)
PERMISSIONS_PATH = "/permissions"
ORGANIZERS_PATH = "/organizers"
REPORTS_SEGMENT = "financial-reports"
#: Largest JSON answer read for one report, its periods or the download link.
DEFAULT_MAX_JSON_BYTES = 1024 * 1024
#: ``/permissions`` and the report list grow with the organizers and reports.
MAX_PERMISSIONS_BYTES = 32 * 1024 * 1024
MAX_LIST_BYTES = 8 * 1024 * 1024
#: Longest problem ``title``/``detail`` or report ``message`` kept, in characters.
MAX_PROBLEM_TEXT = 500
#: Longest access token accepted (opaque, but not unbounded).
MAX_TOKEN_CHARS = 16 * 1024
#: Token lifetime assumed when the answer leaves out ``expires_in`` (RFC 6749 allows it).
DEFAULT_EXPIRES_IN = 300.0
#: A report created this long before our first create attempt may still be ours (clock skew).
ADOPTION_CLOCK_SKEW = timedelta(minutes=5)
JSON_TYPE = "application/json"
PROBLEM_TYPE = "application/problem+json"
#: The download answers ``application/x-zip-compressed``; problems come as problem+json.
ZIP_ACCEPT = "application/x-zip-compressed, application/zip, application/octet-stream;q=0.9, "
ZIP_ACCEPT += PROBLEM_TYPE + ";q=0.5"

Params = tuple[tuple[str, str], ...]


@attrs.frozen
class Endpoints:
    """Where the API and its token endpoint are."""

    base_url: str
    #: The full token endpoint URL.
    token_url: str


#: publiq's two environments: test and production (credentials differ per environment).
ENVIRONMENTS: dict[str, Endpoints] = {
    "test": Endpoints("https://api-test.uitpas.be", "https://account-test.uitid.be" + TOKEN_PATH),
    "prod": Endpoints("https://api.uitpas.be", "https://account.uitid.be" + TOKEN_PATH),
}


def _check_url(url: str, name: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigurationError(f"{name} must be an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(f"{name} must not hold a query, fragment or user info")
    return url.strip().rstrip("/")


def token_endpoint(url: str) -> str:
    """Return the token endpoint of an authorization server URL or of the endpoint itself."""
    checked = _check_url(url, "token_url")
    if urlsplit(checked).path in ("", "/"):
        return checked + TOKEN_PATH
    return checked


def endpoints_for(
    env: str | None = "test", *, base_url: str | None = None, token_url: str | None = None
) -> Endpoints:
    """Return the endpoints of ``env``, with ``base_url``/``token_url`` taking precedence.

    Raises:
        ConfigurationError: unknown environment, or a URL that is not http(s).
    """
    defaults = ENVIRONMENTS.get(env or "test")
    if defaults is None:
        raise ConfigurationError(f"unknown environment {env!r}; use one of {sorted(ENVIRONMENTS)}")
    return Endpoints(
        _check_url(base_url, "base_url") if base_url else defaults.base_url,
        token_endpoint(token_url) if token_url else defaults.token_url,
    )


@attrs.frozen
class ApiRequest:
    """One call before sending: method, path, query, body and how to treat it."""

    method: Literal["GET", "POST"]
    #: The path under the API base URL ("" for the token endpoint, whose URL is complete).
    path: str
    #: A short name for logs, errors and pacing, such as ``reports.create``.
    endpoint: str
    query: Params = ()
    #: JSON body (the report period).
    json_body: Mapping[str, Any] | None = None
    #: Form body; hidden from repr because the token call carries the client secret.
    form: Params | None = attrs.field(default=None, repr=False)
    #: Whether sending it twice is harmless (creating a report is not).
    idempotent: bool = True
    #: Whether it goes to the token server instead of the API.
    to_token_server: bool = False
    #: Whether it needs ``Authorization: Bearer``.
    authenticated: bool = True
    accept: str = JSON_TYPE
    #: Largest answer body read.
    max_bytes: int = DEFAULT_MAX_JSON_BYTES

    def body(self) -> bytes | None:
        """Return the encoded body, or None."""
        if self.form is not None:
            return urlencode(self.form).encode()
        if self.json_body is not None:
            return json.dumps(self.json_body, separators=(",", ":")).encode()
        return None

    def headers(self) -> dict[str, str]:
        """Return the content headers (``Authorization`` is the client's business)."""
        headers = {"Accept": self.accept}
        if self.form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif self.json_body is not None:
            headers["Content-Type"] = JSON_TYPE
        return headers


# -- building requests -------------------------------------------------------------


def organizer_segment(organizer_id: object) -> str:
    """Return an organizer id as one safe path segment.

    Raises:
        InvalidArgumentError: not a non-empty string, or a dot segment.
    """
    if not isinstance(organizer_id, str) or not organizer_id.strip():
        raise InvalidArgumentError("organizer_id must be a non-empty string")
    if organizer_id.strip() in (".", "..") or any(ord(char) < 0x20 for char in organizer_id):
        raise InvalidArgumentError(f"not an organizer id: {organizer_id[:80]!r}")
    return quote(organizer_id.strip(), safe="")


def report_id_segment(report_id: object) -> str:
    """Return a report id (an integer, or its decimal string) as a path segment.

    Raises:
        InvalidArgumentError: not a non-negative integer.
    """
    text = str(report_id).strip() if isinstance(report_id, (int, str)) else ""
    if isinstance(report_id, bool) or not re.fullmatch(r"[0-9]{1,19}", text):
        raise InvalidArgumentError(f"report_id must be an integer id, not {report_id!r}"[:120])
    return str(int(text))


def _reports_path(organizer_id: object) -> str:
    return f"{ORGANIZERS_PATH}/{organizer_segment(organizer_id)}/{REPORTS_SEGMENT}"


def build_token_request(credentials: ClientCredentials) -> ApiRequest:
    """``POST {token_url}``: the client-credentials grant, as a form."""
    form = (
        ("grant_type", "client_credentials"),
        ("client_id", credentials.client_id),
        ("client_secret", credentials.client_secret),
    )
    return ApiRequest(
        "POST",
        "",
        "token",
        form=form,
        # Asking twice only gives a second token.
        idempotent=True,
        to_token_server=True,
        authenticated=False,
    )


def build_permissions() -> ApiRequest:
    """``GET /permissions``: the organizers the token may act for."""
    return ApiRequest("GET", PERMISSIONS_PATH, "permissions", max_bytes=MAX_PERMISSIONS_BYTES)


def build_periods(organizer_id: object) -> ApiRequest:
    """``GET /organizers/{id}/financial-reports/periods``: suggested periods."""
    return ApiRequest("GET", _reports_path(organizer_id) + "/periods", "reports.periods")


def build_create_report(organizer_id: object, start: object, end: object) -> ApiRequest:
    """``POST /organizers/{id}/financial-reports`` with the period (checked first)."""
    first, last = validate_period(start, end)
    body = {"startDate": first.isoformat(), "endDate": last.isoformat()}
    return ApiRequest(
        "POST", _reports_path(organizer_id), "reports.create", json_body=body, idempotent=False
    )


def build_list_reports(organizer_id: object) -> ApiRequest:
    """``GET /organizers/{id}/financial-reports``: earlier exports."""
    return ApiRequest("GET", _reports_path(organizer_id), "reports.list", max_bytes=MAX_LIST_BYTES)


def build_get_report(organizer_id: object, report_id: object) -> ApiRequest:
    """``GET /organizers/{id}/financial-reports/{reportId}``: the status."""
    path = f"{_reports_path(organizer_id)}/{report_id_segment(report_id)}"
    return ApiRequest("GET", path, "reports.status")


def build_download_link(organizer_id: object, report_id: object) -> ApiRequest:
    """``GET .../{reportId}/download-link``: a short-lived unauthenticated link."""
    path = f"{_reports_path(organizer_id)}/{report_id_segment(report_id)}/download-link"
    return ApiRequest("GET", path, "reports.download_link")


def build_download(organizer_id: object, report_id: object) -> ApiRequest:
    """``GET .../{reportId}.zip``: the authenticated download (streamed by the client)."""
    path = f"{_reports_path(organizer_id)}/{report_id_segment(report_id)}.zip"
    return ApiRequest("GET", path, "reports.download", accept=ZIP_ACCEPT)


# -- reading answers ---------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


def _describe(headers: Mapping[str, str], body: bytes) -> str:
    if not body:
        return "an empty body"
    kind = _media_type(headers) or "no content type"
    if body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        kind = "an HTML page"
    return f"{kind} ({len(body)} bytes)"


def parse_json(body: bytes, *, where: str, status: int, max_bytes: int) -> Any:
    """Decode a bounded JSON body.

    Raises:
        MalformedResponseError: too large, or not JSON.
    """
    if len(body) > max_bytes:
        raise MalformedResponseError(
            f"{where}: answer of {len(body)} bytes is over the {max_bytes}-byte cap", status=status
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # Not chained: the decoder's message quotes the body.
        raise MalformedResponseError(f"{where}: expected JSON", status=status) from None


def _clean(value: object, secrets: Sequence[str]) -> str | None:
    """Return a bounded, secret-free, single-line text from a body field, or None."""
    if not isinstance(value, str):
        return None
    text = redact(value, secrets)
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()
    if len(text) > MAX_PROBLEM_TEXT:
        text = text[: MAX_PROBLEM_TEXT - 1] + "…"
    return text or None


def parse_problem(
    headers: Mapping[str, str], body: bytes, *, status: int, secrets: Sequence[str] = ()
) -> Problem | None:
    """Return the RFC 7807 problem of an error answer, or None when it is not one.

    A body counts as a problem when it is ``application/problem+json``, or JSON
    with a string ``type``; a problem without ``type`` is ``about:blank`` (RFC 7807).
    """
    is_problem_type = _media_type(headers) == PROBLEM_TYPE
    if not body or len(body) > DEFAULT_MAX_JSON_BYTES:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    problem_type = _clean(doc.get("type"), secrets)
    if problem_type is None and not is_problem_type:
        return None
    body_status = doc.get("status")
    end_user = doc.get("endUserMessage")
    end_user_nl = end_user.get("nl") if isinstance(end_user, dict) else None
    return Problem(
        type=problem_type or "about:blank",
        title=_clean(doc.get("title"), secrets) or f"HTTP {status}",
        status=body_status if type(body_status) is int else None,
        detail=_clean(doc.get("detail"), secrets),
        end_user_message=_clean(end_user_nl, secrets),
    )


def check_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    endpoint: str,
    secrets: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    required_permission: str | None = REPORTS_PERMISSION,
    now: datetime | None = None,
) -> Any:
    """Return the decoded JSON of a successful answer, or raise the matching error.

    This is the one place where the API's answers become exceptions.
    ``required_permission`` is named on a 403 (the report calls need
    ``ORGANIZERS_REPORTS``).

    Raises:
        V4RateLimitedError: 429 with a problem body (RateLimitedError without).
        ServerError: HTTP 5xx.
        V4AuthenticationError: 401 with a problem body (AuthenticationError without).
        V4ApiError: another error status with a problem body (subclass per ``type``).
        AuthenticationError: 403 without a problem body.
        HttpStatusError: any other error status without one.
        MalformedResponseError: a success whose body is not bounded JSON.
    """
    where = f"{endpoint}: HTTP {status}"
    retry_after = parse_retry_after(headers.get("Retry-After"), now)
    if status >= 500:
        raise ServerError(
            f"{where} with {_describe(headers, body)}", status=status, retry_after=retry_after
        )
    if status >= 400:
        problem = parse_problem(headers, body, status=status, secrets=secrets)
        if problem is not None:
            raise problem_error(
                problem,
                status=status,
                endpoint=endpoint,
                retry_after=retry_after,
                required_permission=required_permission if status == 403 else None,
            )
        if status == 429:
            raise RateLimitedError(f"{where}: rate limited", retry_after=retry_after)
        if status in (401, 403):
            raise AuthenticationError(
                f"{where}: access refused ({_describe(headers, body)})", status=status
            )
        raise HttpStatusError(f"{where} with {_describe(headers, body)}", status=status)
    if status == 204 or not 200 <= status < 300:
        raise HttpStatusError(f"{where}: not an answer this API gives", status=status)
    return parse_json(body, where=where, status=status, max_bytes=max_bytes)


def check_token_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Sequence[str] = (),
    now: datetime | None = None,
) -> AccessToken:
    """Return the access token of a token-endpoint answer, or raise.

    The token is opaque: only ``access_token``, ``expires_in`` and ``token_type``
    are read (publiq: never parse it as a JWT).

    Raises:
        RateLimitedError: 429 (the token endpoint is rate-limited).
        ServerError: 5xx.
        TokenRequestError: 400/401 and others: the credentials or the grant were refused.
        MalformedResponseError: a success without a bearer token.
    """
    where = f"token: HTTP {status}"
    raise_for_overload(
        status, headers, where=where, describe=lambda: _describe(headers, body), now=now
    )
    if status >= 300:
        error = description = None
        try:
            doc = json.loads(body) if 0 < len(body) <= DEFAULT_MAX_JSON_BYTES else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            doc = None
        if isinstance(doc, dict):
            error = _clean(doc.get("error"), secrets)
            description = _clean(doc.get("error_description"), secrets)
        reason = ": ".join(part for part in (error, description) if part) or _describe(
            headers, body
        )
        raise TokenRequestError(
            f"{where}: the client credentials were refused ({reason})", status=status, error=error
        )
    doc = parse_json(body, where=where, status=status, max_bytes=DEFAULT_MAX_JSON_BYTES)
    if not isinstance(doc, dict):
        raise MalformedResponseError(f"{where}: expected a JSON object", status=status)
    token = doc.get("access_token")
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_CHARS:
        raise MalformedResponseError(f"{where}: the answer holds no usable access_token")
    token_type = doc.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise MalformedResponseError(f"{where}: token_type is not Bearer")
    expires_in = doc.get("expires_in", DEFAULT_EXPIRES_IN)
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
        raise MalformedResponseError(f"{where}: expires_in is not a number")
    if not 0 < expires_in < float("inf"):
        raise MalformedResponseError(f"{where}: expires_in is not a positive number")
    return AccessToken(token.strip(), float(expires_in))


# -- models ------------------------------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})$"
)


def _date(value: object, where: str) -> date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise MalformedResponseError(f"{where}: expected a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise MalformedResponseError(f"{where}: not a valid date: {value!r}") from None


def _datetime(value: object, where: str) -> datetime:
    """Return an RFC 3339 date-time as an aware datetime (Python 3.10 cannot read all forms)."""
    match = _DATE_TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise MalformedResponseError(f"{where}: expected an RFC 3339 date-time with an offset")
    zone = match["zone"].upper()
    if zone == "Z":
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    text = f"{match['date']}T{match['time']}.{fraction}{zone}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise MalformedResponseError(f"{where}: not a valid date-time") from None


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedResponseError(f"{where}: expected a JSON object")
    return value


def _array(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedResponseError(f"{where}: expected a JSON array")
    return value


def _period(value: object, where: str) -> ReportPeriod:
    doc = _object(value, where)
    start = _date(doc.get("startDate"), f"{where}.startDate")
    end = _date(doc.get("endDate"), f"{where}.endDate")
    if end < start:
        raise MalformedResponseError(f"{where}: endDate is before startDate")
    return ReportPeriod(start, end)


def parse_periods(doc: object) -> tuple[ReportPeriod, ...]:
    """Return the suggested periods of a ``GET .../periods`` answer."""
    items = _array(doc, "reports.periods")
    return tuple(_period(item, f"reports.periods[{index}]") for index, item in enumerate(items))


def parse_report(doc: object, where: str = "report") -> FinancialReport:
    """Return a ``Report``.

    Raises:
        MalformedResponseError: a required field is missing or of the wrong type.
        UnknownReportStatusError: a status this code does not know.
    """
    report = _object(doc, where)
    report_id = report.get("id")
    if isinstance(report_id, str) and re.fullmatch(r"[0-9]{1,19}", report_id.strip()):
        report_id = int(report_id)
    if type(report_id) is not int or report_id < 0:
        raise MalformedResponseError(f"{where}.id: expected an integer")
    status = report.get("status")
    if not isinstance(status, str):
        raise MalformedResponseError(f"{where}.status: expected a string")
    try:
        parsed_status = ReportStatus(status.strip().upper())
    except ValueError:
        raise UnknownReportStatusError(
            f"{where}: report {report_id} has a status this version does not know: "
            f"{_clean(status, ())!r}"
        ) from None
    period = report.get("period")
    return FinancialReport(
        id=report_id,
        status=parsed_status,
        creation_date=_datetime(report.get("creationDate"), f"{where}.creationDate"),
        period=_period(period, f"{where}.period") if period is not None else None,
        message=_clean(report.get("message"), ()),
    )


def parse_reports(doc: object) -> tuple[FinancialReport, ...]:
    """Return the earlier exports of a ``GET .../financial-reports`` answer."""
    items = _array(doc, "reports.list")
    return tuple(parse_report(item, f"reports.list[{index}]") for index, item in enumerate(items))


def _permissions(entry: Mapping[str, Any], where: str) -> frozenset[str]:
    names: set[str] = set()
    for name in entry.get("permissions") or ():  # deprecated, but still sent
        if isinstance(name, str):
            names.add(name)
    for index, detail in enumerate(entry.get("permissionDetails") or ()):
        ident = _object(detail, f"{where}.permissionDetails[{index}]").get("id")
        if isinstance(ident, str):
            names.add(ident)
    return frozenset(names)


def _organizer(entry: Mapping[str, Any], where: str) -> Organizer:
    organizer = _object(entry.get("organizer"), f"{where}.organizer")
    ident = organizer.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise MalformedResponseError(f"{where}.organizer.id: expected a non-empty string")
    return Organizer(ident.strip(), _clean(organizer.get("name"), ()), _permissions(entry, where))


def parse_permissions(doc: object) -> tuple[Organizer, ...]:
    """Return every organizer of a ``GET /permissions`` answer, linked organizers included.

    An organizer listed twice (itself, and linked to another) gets the union of
    its permissions; the order is that of first appearance.
    """
    found: dict[str, Organizer] = {}

    def add(organizer: Organizer) -> None:
        known = found.get(organizer.id)
        if known is None:
            found[organizer.id] = organizer
        else:
            merged = known.permissions | organizer.permissions
            found[organizer.id] = attrs.evolve(
                known, name=known.name or organizer.name, permissions=merged
            )

    for index, item in enumerate(_array(doc, "permissions")):
        where = f"permissions[{index}]"
        entry = _object(item, where)
        add(_organizer(entry, where))
        for linked_index, linked in enumerate(entry.get("linkedOrganizers") or ()):
            linked_where = f"{where}.linkedOrganizers[{linked_index}]"
            add(_organizer(_object(linked, linked_where), linked_where))
    return tuple(found.values())


def parse_download_link(doc: object) -> DownloadLink:
    """Return the short-lived link of a ``download-link`` answer (never put in a message)."""
    link = _object(doc, "reports.download_link").get("downloadLink")
    if not isinstance(link, str) or len(link) > MAX_TOKEN_CHARS:
        raise MalformedResponseError("reports.download_link: the answer holds no downloadLink")
    parts = urlsplit(link.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise MalformedResponseError("reports.download_link: downloadLink is not an http(s) URL")
    return DownloadLink(link.strip())


# -- decisions ---------------------------------------------------------------------


def check_report(report: FinancialReport, *, endpoint: str = "reports.status") -> bool:
    """Return whether the report is available; a FAILED report raises (it is final).

    Raises:
        V4ReportFailedError: the export failed, with the server's message.
    """
    if report.failed:
        raise V4ReportFailedError(
            report.id, report.message or "the report export failed", endpoint=endpoint
        )
    return report.available


def latest_period(periods: Iterable[ReportPeriod], today: date) -> ReportPeriod | None:
    """Return the most recent suggested period that has ended before ``today``, if any."""
    ended = [period for period in periods if period.end < today]
    return max(ended, key=lambda period: (period.end, period.start), default=None)


def find_adoptable(
    reports: Iterable[FinancialReport],
    period: ReportPeriod,
    since: datetime | None,
    *,
    skew: timedelta = ADOPTION_CLOCK_SKEW,
) -> FinancialReport | None:
    """Return the report a lost create started: same period, created since ``since``.

    The earliest such report wins, so every later attempt adopts the same one;
    ``since`` is our clock, so the server's is allowed ``skew``. Without
    ``since`` (nothing known of the first attempt) nothing is adopted.
    """
    if since is None:
        return None
    floor = since - skew
    matches = [
        report for report in reports if report.period == period and report.creation_date >= floor
    ]
    return min(matches, key=lambda report: (report.creation_date, report.id), default=None)


def download_fallback_filename(organizer_id: str, report_id: object) -> str:
    """Return the filename used when the server proposes none."""
    return safe_filename(f"financialOverview_{organizer_id}_report-{report_id}.zip", "report.zip")
