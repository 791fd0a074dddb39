"""UiTPAS API 4.0's pure layer: requests, answers, problems and decisions, with no I/O."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from v4_schema import errors, response_examples, response_pointer, schema_pointer

from uitpas_async.engine.backend import JobRequest
from uitpas_async.engine.errors import (
    AccessDeniedError,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    HttpStatusError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    ProtocolError,
    RateLimitedError,
    ReportGenerationError,
    ReportNotReadyError,
    ServerError,
    UnknownReportError,
)
from uitpas_async.v4 import protocol
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
    FinancialReport,
    Organizer,
    OrganizerReportRequest,
    ReportPeriod,
    ReportStatus,
)

SECRET = "client-SECRET-7c3e1b"
TOKEN = "bearer-TOKEN-94ad0f"
PROBLEM_JSON = {"Content-Type": "application/problem+json"}
JSON = {"Content-Type": "application/json"}
REPORTS = "/organizers/{organizerId}/financial-reports"
ORG = "c097fa2e-d9be-42e6-b41a-ec3d4d4cbad1"


def _problem(problem_type: str, status: int, detail: str | None = None) -> bytes:
    doc: dict[str, Any] = {"type": problem_type, "title": "Some title", "status": status}
    if detail is not None:
        doc["detail"] = detail
    return json.dumps(doc).encode()


def _check(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return protocol.check_response(
        status,
        headers if headers is not None else PROBLEM_JSON,
        body,
        endpoint="reports.status",
        secrets=(SECRET, TOKEN),
    )


# -- requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "method", "path", "endpoint", "idempotent"),
    [
        (protocol.build_permissions(), "GET", "/permissions", "permissions", True),
        (
            protocol.build_periods(ORG),
            "GET",
            f"/organizers/{ORG}/financial-reports/periods",
            "reports.periods",
            True,
        ),
        (
            protocol.build_create_report(ORG, date(2024, 1, 1), date(2024, 3, 31)),
            "POST",
            f"/organizers/{ORG}/financial-reports",
            "reports.create",
            False,
        ),
        (
            protocol.build_list_reports(ORG),
            "GET",
            f"/organizers/{ORG}/financial-reports",
            "reports.list",
            True,
        ),
        (
            protocol.build_get_report(ORG, 232432),
            "GET",
            f"/organizers/{ORG}/financial-reports/232432",
            "reports.status",
            True,
        ),
        (
            protocol.build_download_link(ORG, "17"),
            "GET",
            f"/organizers/{ORG}/financial-reports/17/download-link",
            "reports.download_link",
            True,
        ),
        (
            protocol.build_download(ORG, 17),
            "GET",
            f"/organizers/{ORG}/financial-reports/17.zip",
            "reports.download",
            True,
        ),
    ],
)
def test_builders_give_the_documented_method_and_path(
    request_: protocol.ApiRequest, method: str, path: str, endpoint: str, idempotent: bool
) -> None:
    """Each of the seven operations has the OpenAPI document's method and path."""
    assert (request_.method, request_.path, request_.endpoint) == (method, path, endpoint)
    assert request_.idempotent is idempotent
    assert request_.authenticated
    assert not request_.to_token_server


def test_create_body_is_a_report_period_of_the_schema() -> None:
    """The POST body is a ``ReportPeriod``: both dates, ISO, inclusive."""
    request = protocol.build_create_report(ORG, date(2024, 1, 1), date(2024, 3, 31))
    body = json.loads(request.body() or b"")
    assert body == {"startDate": "2024-01-01", "endDate": "2024-03-31"}
    assert request.headers()["Content-Type"] == "application/json"
    assert errors(body, schema_pointer("ReportPeriod")) == []


def test_create_refuses_a_bad_period_before_sending() -> None:
    """End before start, or datetimes instead of dates, never become a request."""
    with pytest.raises(InvalidArgumentError):
        protocol.build_create_report(ORG, date(2024, 3, 31), date(2024, 1, 1))
    with pytest.raises(InvalidArgumentError):
        protocol.build_create_report(ORG, datetime(2024, 1, 1), date(2024, 3, 31))


def test_token_request_is_the_client_credentials_form_and_hides_the_secret() -> None:
    """The token call posts the documented form; its repr never shows the secret."""
    request = protocol.build_token_request(ClientCredentials("my-client-id", SECRET))
    assert request.to_token_server
    assert not request.authenticated
    assert request.headers()["Content-Type"] == "application/x-www-form-urlencoded"
    body = (request.body() or b"").decode()
    assert body == f"grant_type=client_credentials&client_id=my-client-id&client_secret={SECRET}"
    assert SECRET not in repr(request)


@pytest.mark.parametrize(
    ("organizer", "segment"),
    [("abc", "abc"), ("a/b", "a%2Fb"), ("a b?c#d", "a%20b%3Fc%23d"), ("ü", "%C3%BC")],
)
def test_organizer_ids_are_one_escaped_segment(organizer: str, segment: str) -> None:
    """An organizer id cannot add path segments, a query or a fragment."""
    assert protocol.organizer_segment(organizer) == segment


@pytest.mark.parametrize("organizer", ["", "  ", ".", "..", "a\nb", 12])
def test_bad_organizer_ids_are_refused(organizer: object) -> None:
    """Empty, dot segments, control characters and non-strings are refused."""
    with pytest.raises(InvalidArgumentError):
        protocol.organizer_segment(organizer)


@pytest.mark.parametrize("report_id", ["", "abc", "-1", "1.5", True, None, "1" * 20, "../1"])
def test_bad_report_ids_are_refused(report_id: object) -> None:
    """A report id is a non-negative integer (or its decimal string)."""
    with pytest.raises(InvalidArgumentError):
        protocol.report_id_segment(report_id)


def test_environments_and_overrides() -> None:
    """``env`` picks publiq's hosts; ``base_url``/``token_url`` win; a bare host gets the path."""
    test = protocol.endpoints_for("test")
    assert test.base_url == "https://api-test.uitpas.be"
    assert (
        test.token_url == "https://account-test.uitid.be/realms/uitid/protocol/openid-connect/token"
    )
    prod = protocol.endpoints_for("prod")
    assert prod.base_url == "https://api.uitpas.be"
    assert prod.token_url.startswith("https://account.uitid.be/realms/uitid/")
    custom = protocol.endpoints_for(
        "prod", base_url="http://127.0.0.1:8080/", token_url="http://127.0.0.1:9090"
    )
    assert custom.base_url == "http://127.0.0.1:8080"
    assert custom.token_url == "http://127.0.0.1:9090" + protocol.TOKEN_PATH
    full = protocol.endpoints_for(token_url="https://idp.example/realms/x/token")
    assert full.token_url == "https://idp.example/realms/x/token"


@pytest.mark.parametrize(
    "kwargs",
    [{"env": "staging"}, {"base_url": "ftp://x"}, {"token_url": "https://u:p@idp"}],
)
def test_bad_endpoints_are_configuration_errors(kwargs: dict[str, str]) -> None:
    """An unknown environment or a URL that is not plain http(s) is refused."""
    env = kwargs.pop("env", "test")
    with pytest.raises(ConfigurationError):
        protocol.endpoints_for(env, **kwargs)


# -- problems ---------------------------------------------------------------------

PROBLEM_CASES = [
    ("uitpas/organizer-not-found", 404, OrganizerNotFoundError, ApiError),
    ("uitpas/report-not-found", 404, V4ReportNotFoundError, UnknownReportError),
    ("uitpas/report-invalid-status", 400, V4ReportInvalidStatusError, ReportNotReadyError),
    ("auth/forbidden", 403, V4AccessDeniedError, AccessDeniedError),
    ("body/missing", 400, V4InvalidRequestError, InvalidRequestError),
    ("body/invalid-syntax", 400, V4InvalidRequestError, InvalidRequestError),
    ("body/invalid-data", 400, V4InvalidRequestError, InvalidRequestError),
    ("header/invalid", 400, V4InvalidRequestError, InvalidRequestError),
    ("url/not-found", 404, V4ApiError, ApiError),
    ("uitpas/rate-limited", 429, V4RateLimitedError, RateLimitedError),
    ("auth/unauthorized", 401, V4AuthenticationError, AuthenticationError),
]


@pytest.mark.parametrize(("slug", "status", "cls", "trunk"), PROBLEM_CASES)
def test_each_problem_type_has_its_class(
    slug: str, status: int, cls: type[Exception], trunk: type[Exception]
) -> None:
    """A problem's ``type`` URI picks its class, which sits under the engine's trunk class."""
    problem_type = "https://api.publiq.be/probs/" + slug
    with pytest.raises(cls) as caught:
        _check(status, _problem(problem_type, status, "more words"))
    error = caught.value
    assert type(error) is cls
    assert isinstance(error, trunk)
    assert error.type == problem_type  # type: ignore[attr-defined]
    assert error.title == "Some title"  # type: ignore[attr-defined]
    assert error.detail == "more words"  # type: ignore[attr-defined]
    assert error.status == status  # type: ignore[attr-defined]
    assert errors(json.loads(_problem(problem_type, status)), schema_pointer("Error")) == []


def test_an_unknown_problem_type_is_still_a_typed_api_error() -> None:
    """A type this code has never seen raises V4ApiError with type, title, status and detail."""
    problem_type = "https://api.publiq.be/probs/uitpas/brand-new-thing"
    with pytest.raises(V4ApiError) as caught:
        _check(409, _problem(problem_type, 409, "it happened"))
    error = caught.value
    assert type(error) is V4ApiError
    assert (error.type, error.title, error.status, error.detail) == (
        problem_type,
        "Some title",
        409,
        "it happened",
    )
    assert error.code == "uitpas/brand-new-thing"
    assert "Some title: it happened" in str(error)


def test_a_403_of_another_type_is_an_access_denied_naming_the_permission() -> None:
    """A refusal is a refusal: 403 problems are AccessDeniedError and name ORGANIZERS_REPORTS."""
    with pytest.raises(V4AccessDeniedError) as caught:
        _check(403, _problem("https://example.org/other", 403))
    assert caught.value.required_permission == "ORGANIZERS_REPORTS"


def test_problem_json_without_type_is_about_blank() -> None:
    """RFC 7807: a problem without ``type`` is ``about:blank``; the title defaults to the status."""
    with pytest.raises(V4ApiError) as caught:
        _check(404, b"{}")
    assert caught.value.type == "about:blank"
    assert caught.value.title == "HTTP 404"


def test_rate_limited_problem_carries_retry_after() -> None:
    """A 429 problem is a V4RateLimitedError holding the server's Retry-After."""
    headers = {**PROBLEM_JSON, "Retry-After": "7"}
    body = _problem("https://api.publiq.be/probs/uitpas/rate-limited", 429)
    with pytest.raises(V4RateLimitedError) as caught:
        _check(429, body, headers)
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "headers", "body", "cls"),
    [
        (429, {"Retry-After": "3"}, b"", RateLimitedError),
        (500, PROBLEM_JSON, _problem("x", 500), ServerError),
        (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>", ServerError),
        (401, {}, b"", AuthenticationError),
        (403, {"Content-Type": "text/html"}, b"<html>no</html>", AuthenticationError),
        (404, {"Content-Type": "text/html"}, b"<html>not here</html>", HttpStatusError),
        (200, JSON, b"not json", MalformedResponseError),
        (200, JSON, b"[" * 100_000, MalformedResponseError),
        (204, {}, b"", HttpStatusError),
    ],
)
def test_answers_without_a_problem_body(
    status: int, headers: dict[str, str], body: bytes, cls: type[Exception]
) -> None:
    """Errors outside the problem format fall into the trunk's HTTP and protocol classes."""
    with pytest.raises(cls) as caught:
        _check(status, body, headers)
    assert not isinstance(caught.value, V4ApiError)


def test_success_bodies_are_bounded() -> None:
    """An answer over the size cap is refused without decoding it."""
    with pytest.raises(MalformedResponseError, match="cap"):
        protocol.check_response(200, JSON, b"[" + b"1," * 600 + b"1]", endpoint="x", max_bytes=1000)


def test_no_secret_reaches_a_message_or_repr() -> None:
    """A problem body that echoes the secret or the token has both removed everywhere."""
    body = json.dumps(
        {
            "type": "https://api.publiq.be/probs/body/invalid-data",
            "title": f"bad {TOKEN}",
            "status": 400,
            "detail": f"secret was {SECRET}",
        }
    ).encode()
    with pytest.raises(V4InvalidRequestError) as caught:
        _check(400, body)
    error = caught.value
    for text in (str(error), repr(error), error.title, error.detail or "", repr(error.problem)):
        assert SECRET not in text
        assert TOKEN not in text


def test_problem_text_is_bounded_and_single_line() -> None:
    """A huge or multi-line ``detail`` is cut and flattened before it reaches a message."""
    body = _problem("https://x/y", 400, "line1\nline2" + "x" * 5000)
    with pytest.raises(V4ApiError) as caught:
        _check(400, body)
    detail = caught.value.detail or ""
    assert len(detail) <= protocol.MAX_PROBLEM_TEXT
    assert "\n" not in detail


# -- tokens -----------------------------------------------------------------------


def test_token_answer_is_read_without_parsing_the_token() -> None:
    """``access_token`` is opaque (not a JWT); ``expires_in`` is its lifetime."""
    body = json.dumps({"access_token": "not.a.jwt", "expires_in": 86400, "token_type": "Bearer"})
    token = protocol.check_token_response(200, JSON, body.encode())
    assert token == AccessToken("not.a.jwt", 86400.0)
    assert "not.a.jwt" not in repr(token)


def test_token_answer_without_expires_in_gets_the_default() -> None:
    """RFC 6749 makes ``expires_in`` optional; a short default lifetime is assumed."""
    body = json.dumps({"access_token": "t", "token_type": "bearer"}).encode()
    assert protocol.check_token_response(200, JSON, body).expires_in == protocol.DEFAULT_EXPIRES_IN


@pytest.mark.parametrize(
    "doc",
    [
        {"expires_in": 60, "token_type": "Bearer"},
        {"access_token": "", "expires_in": 60},
        {"access_token": "t", "expires_in": 60, "token_type": "MAC"},
        {"access_token": "t", "expires_in": -5},
        {"access_token": "t", "expires_in": "soon"},
        ["access_token"],
    ],
)
def test_unusable_token_answers_are_malformed(doc: object) -> None:
    """No token, a non-bearer token or a nonsensical lifetime is a protocol fault."""
    with pytest.raises(MalformedResponseError):
        protocol.check_token_response(200, JSON, json.dumps(doc).encode())


def test_refused_credentials_are_a_token_request_error_without_the_secret() -> None:
    """Keycloak's ``invalid_client`` becomes TokenRequestError; an echoed secret is removed."""
    body = json.dumps(
        {"error": "invalid_client", "error_description": f"Invalid client {SECRET}"}
    ).encode()
    with pytest.raises(TokenRequestError) as caught:
        protocol.check_token_response(401, JSON, body, secrets=(SECRET,))
    assert caught.value.error == "invalid_client"
    assert isinstance(caught.value, AuthenticationError)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("status", "cls"), [(429, RateLimitedError), (503, ServerError)])
def test_token_endpoint_limits_and_outages(status: int, cls: type[Exception]) -> None:
    """The rate-limited or failing token endpoint gives the retryable trunk classes."""
    with pytest.raises(cls):
        protocol.check_token_response(status, {"Retry-After": "1"}, b"")


# -- reports ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [(REPORTS, "post"), (REPORTS + "/{reportId}", "get")],
)
def test_the_documents_report_examples_parse(path: str, method: str) -> None:
    """Every ``Report`` example of the OpenAPI document parses into a FinancialReport."""
    examples = response_examples(path, method, "200", "application/json")
    assert examples
    for example in examples:
        report = protocol.parse_report(example)
        assert report.id == example["id"]
        assert report.status is ReportStatus(example["status"])
        assert report.creation_date.tzinfo is not None


def test_the_documents_report_list_example_parses_with_periods_and_message() -> None:
    """The list example has an AVAILABLE and a FAILED report, with periods and a message."""
    (example,) = response_examples(REPORTS, "get", "200", "application/json")
    available, failed = protocol.parse_reports(example)
    assert available.available
    assert available.period == ReportPeriod(date(2019, 8, 24), date(2019, 8, 24))
    assert failed.failed
    assert failed.message is not None
    assert failed.message.startswith("Geen financieel overzicht beschikbaar")
    assert failed.creation_date == datetime(2022, 6, 7, 10, 2, 33, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-06-10T12:26:30+02:00", datetime(2022, 6, 10, 10, 26, 30, tzinfo=timezone.utc)),
        ("2022-06-10T10:26:30Z", datetime(2022, 6, 10, 10, 26, 30, tzinfo=timezone.utc)),
        ("2022-06-10T10:26:30.123456789Z", datetime(2022, 6, 10, 10, 26, 30, 123456, timezone.utc)),
        ("2022-06-10T12:26:30+0200", datetime(2022, 6, 10, 10, 26, 30, tzinfo=timezone.utc)),
    ],
)
def test_creation_dates_are_aware(text: str, expected: datetime) -> None:
    """RFC 3339 forms (offset, Z, nanoseconds, no colon) give the same aware instant."""
    report = protocol.parse_report({"id": 1, "status": "STARTED", "creationDate": text})
    assert report.creation_date == expected


@pytest.mark.parametrize(
    "doc",
    [
        {"status": "STARTED", "creationDate": "2022-06-10T12:26:30Z"},
        {"id": "x", "status": "STARTED", "creationDate": "2022-06-10T12:26:30Z"},
        {"id": True, "status": "STARTED", "creationDate": "2022-06-10T12:26:30Z"},
        {"id": 1, "creationDate": "2022-06-10T12:26:30Z"},
        {"id": 1, "status": "STARTED"},
        {"id": 1, "status": "STARTED", "creationDate": "2022-06-10T12:26:30"},
        {"id": 1, "status": "STARTED", "creationDate": "2022-13-10T12:26:30Z"},
        {
            "id": 1,
            "status": "STARTED",
            "creationDate": "2022-06-10T12:26:30Z",
            "period": {"startDate": "2022-02-01", "endDate": "2022-01-01"},
        },
        [],
    ],
)
def test_malformed_reports_are_protocol_errors(doc: object) -> None:
    """A missing id, status or creationDate, a naive time or a reversed period is refused."""
    with pytest.raises(MalformedResponseError):
        protocol.parse_report(doc)


def test_an_unknown_status_is_a_protocol_error_not_a_crash() -> None:
    """A status this code does not know is UnknownReportStatusError (not retried as malformed)."""
    doc = {"id": 9, "status": "ARCHIVED", "creationDate": "2022-06-10T12:26:30Z"}
    with pytest.raises(UnknownReportStatusError) as caught:
        protocol.parse_report(doc)
    assert isinstance(caught.value, ProtocolError)
    assert not isinstance(caught.value, MalformedResponseError)
    assert "ARCHIVED" in str(caught.value)


def test_failed_is_final_with_its_message() -> None:
    """check_report raises V4ReportFailedError with the server's message for FAILED."""
    failed = FinancialReport(
        5,
        ReportStatus.FAILED,
        datetime(2022, 1, 1, tzinfo=timezone.utc),
        message="Geen financieel overzicht beschikbaar voor periode 2000/01/01 - 2000/06/07",
    )
    with pytest.raises(V4ReportFailedError) as caught:
        protocol.check_report(failed)
    assert isinstance(caught.value, ReportGenerationError)
    assert caught.value.report_id == 5
    assert "Geen financieel overzicht" in str(caught.value)
    started = attrs_evolve(failed, status=ReportStatus.STARTED, message=None)
    assert protocol.check_report(started) is False
    assert protocol.check_report(attrs_evolve(started, status=ReportStatus.AVAILABLE)) is True


def attrs_evolve(report: FinancialReport, **changes: Any) -> FinancialReport:
    """Return ``report`` with ``changes``."""
    import attrs

    return attrs.evolve(report, **changes)


# -- permissions, periods, links ----------------------------------------------------


def test_the_documents_permissions_examples_parse() -> None:
    """Both /permissions examples parse; linked organizers count as organizers too."""
    many, one = response_examples("/permissions", "get", "200", "application/json")
    organizers = protocol.parse_permissions(many)
    assert [o.id for o in organizers] == [
        "c097fa2e-d9be-42e6-b41a-ec3d4d4cbad1",
        "347e6177-4add-4fa8-a7fe-6e60127bfb12",
        "fd7e6177-4add-4fa8-a7fe-6e60127bfb35",
    ]
    assert organizers[0].name == "CC De Werf"
    assert organizers[0].permissions == {"TARIFFS_READ", "TICKETSALES_SEARCH"}
    assert organizers[1].permissions == {"CHECKINS_WRITE"}
    assert not any(o.can_report for o in organizers)
    assert len(protocol.parse_permissions(one)) == 1


def test_permissions_merge_and_reporting_permission() -> None:
    """An organizer seen twice gets the union of its permissions; ORGANIZERS_REPORTS is found."""
    doc = [
        {
            "organizer": {"id": "A", "name": "Alpha"},
            "permissionDetails": [{"id": "ORGANIZERS_REPORTS", "label": {"nl": "Rapporten"}}],
            "linkedOrganizers": [
                {"organizer": {"id": "B"}, "permissionDetails": [{"id": "TARIFFS_READ"}]}
            ],
        },
        {"organizer": {"id": "B", "name": "Beta"}, "permissions": ["ORGANIZERS_REPORTS"]},
    ]
    assert errors(doc, response_pointer("/permissions", "get", "200", "application/json")) == []
    organizers = protocol.parse_permissions(doc)
    assert organizers == (
        Organizer("A", "Alpha", frozenset({"ORGANIZERS_REPORTS"})),
        Organizer("B", "Beta", frozenset({"TARIFFS_READ", "ORGANIZERS_REPORTS"})),
    )
    assert all(o.can_report for o in organizers)


@pytest.mark.parametrize(
    "doc", [{}, [{"permissions": []}], [{"organizer": {"id": ""}}], [{"organizer": "A"}]]
)
def test_malformed_permissions_are_refused(doc: object) -> None:
    """Not a list, or an entry without an organizer id, is a protocol fault."""
    with pytest.raises(MalformedResponseError):
        protocol.parse_permissions(doc)


def test_periods_example_and_latest_period() -> None:
    """Suggested periods parse; "latest" is the most recent one that has ended."""
    (example,) = response_examples(REPORTS + "/periods", "get", "200", "application/json")
    assert protocol.parse_periods(example) == (ReportPeriod(date(2019, 8, 24), date(2019, 8, 24)),)
    periods = [
        ReportPeriod(date(2024, 1, 1), date(2024, 3, 31)),
        ReportPeriod(date(2024, 7, 1), date(2024, 9, 30)),
        ReportPeriod(date(2024, 4, 1), date(2024, 6, 30)),
    ]
    assert protocol.latest_period(periods, date(2024, 10, 1)) == periods[1]
    assert protocol.latest_period(periods, date(2024, 9, 30)) == periods[2]
    assert protocol.latest_period(periods, date(2024, 1, 1)) is None


def test_download_link_is_read_and_hidden() -> None:
    """The document's download-link example parses; the link never shows in a repr."""
    path = REPORTS + "/{reportId}/download-link"
    (example,) = response_examples(path, "get", "200", "application/json")
    link = protocol.parse_download_link(example)
    assert link.url == example["downloadLink"]
    assert "hash=" not in repr(link)
    assert "hash=" not in str(link)


@pytest.mark.parametrize("doc", [{}, {"downloadLink": 5}, {"downloadLink": "javascript:x"}, []])
def test_bad_download_links_are_refused_without_quoting_them(doc: object) -> None:
    """A missing or non-http link is a protocol fault whose message does not quote it."""
    with pytest.raises(MalformedResponseError) as caught:
        protocol.parse_download_link(doc)
    assert "javascript" not in str(caught.value)


# -- adoption ---------------------------------------------------------------------

Q1 = ReportPeriod(date(2024, 1, 1), date(2024, 3, 31))
Q2 = ReportPeriod(date(2024, 4, 1), date(2024, 6, 30))
T0 = datetime(2024, 7, 1, 12, 0, tzinfo=timezone.utc)


def _report(report_id: int, period: ReportPeriod | None, minutes: float) -> FinancialReport:
    return FinancialReport(
        report_id, ReportStatus.STARTED, T0 + timedelta(minutes=minutes), period=period
    )


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        ([], None),
        ([_report(1, Q1, 1)], 1),
        ([_report(1, Q2, 1)], None),  # another period
        ([_report(1, None, 1)], None),  # period unknown
        ([_report(1, Q1, -60)], None),  # before the first attempt: an earlier run's
        ([_report(1, Q1, -3)], 1),  # within the clock skew
        ([_report(2, Q1, 9), _report(1, Q1, 2), _report(3, Q2, 1)], 1),  # earliest wins
    ],
)
def test_find_adoptable(reports: list[FinancialReport], expected: int | None) -> None:
    """The report a lost create started has the same period and was created since then."""
    found = protocol.find_adoptable(reports, Q1, T0)
    assert (found.id if found else None) == expected


def test_nothing_is_adopted_without_a_first_attempt_time() -> None:
    """Without knowing when the first create left, no old report is taken for ours."""
    assert protocol.find_adoptable([_report(1, Q1, 1)], Q1, None) is None


# -- models -----------------------------------------------------------------------


def test_credentials_mask_the_secret_and_read_the_environment() -> None:
    """from_env reads UITPAS_CLIENT_ID/SECRET; repr and str mask both."""
    creds = ClientCredentials.from_env(
        {"UITPAS_CLIENT_ID": "client-id-123456", "UITPAS_CLIENT_SECRET": SECRET}
    )
    assert creds == ClientCredentials("client-id-123456", SECRET)
    for text in (repr(creds), str(creds)):
        assert SECRET not in text
        assert "client-id-123456" not in text


@pytest.mark.parametrize(
    "environ",
    [{}, {"UITPAS_CLIENT_ID": "x"}, {"UITPAS_CLIENT_ID": "x", "UITPAS_CLIENT_SECRET": " "}],
)
def test_missing_credentials_are_a_configuration_error(environ: dict[str, str]) -> None:
    """A missing or blank variable names what to set."""
    with pytest.raises(ConfigurationError, match="UITPAS_CLIENT_SECRET"):
        ClientCredentials.from_env(environ)


def test_organizer_request_is_a_job_request() -> None:
    """OrganizerReportRequest keys jobs by organizer and period, and labels them safely."""
    latest = OrganizerReportRequest(organizer_id="../evil", period="latest")
    assert isinstance(latest, JobRequest)
    assert latest.job_key == "../evil|latest"
    assert "/" not in latest.label
    assert latest.label not in ("", ".", "..")
    dated = OrganizerReportRequest("org-1", date(2024, 1, 1), date(2024, 3, 31))
    assert dated.job_key == "org-1|2024-01-01|2024-03-31"
    assert latest.with_period(Q1).job_key == "../evil|2024-01-01|2024-03-31"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"organizer_id": ""},
        {"organizer_id": " a"},
        {"organizer_id": "a"},
        {"organizer_id": "a", "period": "latest", "start": date(2024, 1, 1)},
        {"organizer_id": "a", "period": "previous"},
        {"organizer_id": "a", "start": date(2024, 2, 1), "end": date(2024, 1, 1)},
    ],
)
def test_bad_organizer_requests_are_refused(kwargs: dict[str, Any]) -> None:
    """No organizer, no period, both kinds of period, or a reversed period is refused."""
    with pytest.raises(InvalidArgumentError):
        OrganizerReportRequest(**kwargs)


def test_the_vendored_schema_refuses_what_the_api_would_not_send() -> None:
    """The validator really checks: a Report without creationDate or with a bad status fails."""
    report = schema_pointer("Report")
    assert (
        errors({"id": 1, "status": "STARTED", "creationDate": "2022-06-10T12:26:30Z"}, report) == []
    )
    assert errors({"id": 1, "status": "STARTED"}, report)
    assert errors({"id": 1, "status": "DONE", "creationDate": "2022-06-10T12:26:30Z"}, report)
    assert errors({"id": 1, "status": "STARTED", "creationDate": "yesterday"}, report)
    assert errors(
        {"startDate": "2019-7-1", "endDate": "2019-09-30"}, schema_pointer("ReportPeriod")
    )
