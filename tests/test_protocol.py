"""The pure protocol layer: requests built, answers parsed or turned into typed errors."""

from __future__ import annotations

import string
import tempfile
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uitpas_async import errors
from uitpas_async.engine import filenames, periods, retry_after
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
    UitpasError,
)
from uitpas_async.xml_api import errors as xml_errors
from uitpas_async.xml_api import protocol
from uitpas_async.xml_api.models import AgeRange, CardSystem, Period, PriceReason

BASE_URL = "https://test.uitid.be/uitid/rest"
REPORTS = "/uitpas/report/financialoverview/organiser"
BALIE = "57588868-EA2A-3A56-0AC173415A6D1BE7"
XML = {"Content-Type": "application/xml;charset=UTF-8"}

# -- the seeds' examples, copied verbatim (001 without its stray "+") ---------------

#: 001, create a financial report.
SEED_CREATE = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<response>
    <code>ACTION_SUCCEEDED</code>
    <message>Export in progress.</message>
    <resource>/uitpas/report/financialoverview/organiser/19/status?consumerKey=57588868-EA2A-3A56-0AC173415A6D1BE7</resource>
</response>"""

#: 000, status while the report is still being generated (the table's in-progress row).
SEED_STATUS_IN_PROGRESS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<response>
    <code>ACTION_SUCCEEDED</code>
    <message>Export in progress.</message>
    <resource>/uitpas/report/financialoverview/organiser/19/status?consumerKey=57588868-EA2A-3A56-0AC173415A6D1BE7</resource>
</response>"""

#: 000, status once the report is ready.
SEED_STATUS_COMPLETED = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<response>
    <code>ACTION_SUCCEEDED</code>
    <message>Export completed.</message>
    <resource>/uitpas/report/financialoverview/organiser/19/download?consumerKey=57588868-EA2A-3A56-0AC173415A6D1BE7</resource>
</response>"""

#: 002, reporting periods of a balie.
SEED_PERIODS = b"""<?xml version="1.0" encoding="UTF-8"?>
<response>
   <code>ACTION_SUCCEEDED</code>
   <periods>
      <period>
         <endDate>2020-06-30T23:59:59.999+02:00</endDate>
         <startDate>2020-04-01T00:00:00+02:00</startDate>
      </period>
      <period>
         <endDate>2020-03-31T23:59:59.999+02:00</endDate>
         <startDate>2020-01-01T00:00:00+01:00</startDate>
      </period>
      <period>
         <endDate>2019-12-31T23:59:59.999+01:00</endDate>
         <startDate>2019-10-01T00:00:00+02:00</startDate>
      </period>
      <period>
         <endDate>2019-09-30T23:59:59.999+02:00</endDate>
         <startDate>2019-07-01T00:00:00+02:00</startDate>
      </period>
      <period>
         <endDate>2019-06-30T23:59:59.999+02:00</endDate>
         <startDate>2019-04-01T00:00:00+02:00</startDate>
      </period>
      <period>
         <endDate>2019-03-31T23:59:59.999+02:00</endDate>
         <startDate>2019-01-01T00:00:00+01:00</startDate>
      </period>
      <period>
         <endDate>2018-12-31T23:59:59.999+01:00</endDate>
         <startDate>2018-10-01T00:00:00+02:00</startDate>
      </period>
      <period>
         <endDate>2018-09-30T23:59:59.999+02:00</endDate>
         <startDate>2018-07-01T00:00:00+02:00</startDate>
      </period>
   </periods>
</response>"""

#: 004, price of a UiTPAS card.
SEED_PRICE = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<response>
    <uitpasPrice>
        <id>148</id>
        <reason>FIRST_CARD</reason>
        <cardType>CARD</cardType>
        <ageRange>
            <ageTo>17</ageTo>
        </ageRange>
        <kansenstatuut>false</kansenstatuut>
        <price>2.00</price>
        <cardSystem>
            <id>1</id>
            <name>UiTPAS Regio Aalst</name>
        </cardSystem>
    </uitpasPrice>
</response>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<response><code>ACTION_SUCCEEDED</code><message>&lol3;</message></response>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><code>ACTION_SUCCEEDED</code><message>&xxe;</message></response>"""


def checked(body: bytes, force_list: tuple[str, ...] = ()) -> dict[str, object]:
    """Run a 200 XML answer through check_response, as the client does."""
    return protocol.check_response(200, XML, body, endpoint="test", force_list=force_list)


def error_xml(code: str, message: str = "Beschrijving van de fout", permission: str = "") -> bytes:
    """Return the API's XML error envelope."""
    extra = f"<requiredPermission>{permission}</requiredPermission>" if permission else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f"<response><code>{code}</code><message>{message}</message>{extra}</response>"
    ).encode()


# -- the seeds' examples and the real fixtures parse ---------------------------------


def test_seed_create_answer_parses_into_a_job() -> None:
    """The create example (001) gives report 19 and keeps the consumerKey= balie key."""
    job = protocol.parse_create_report(checked(SEED_CREATE), None)
    assert job.report_id == "19"
    assert job.balie_consumer_key == BALIE


def test_seed_create_answer_prefers_the_callers_balie_key() -> None:
    """The balie key the caller passed wins over the one echoed in the resource."""
    job = protocol.parse_create_report(checked(SEED_CREATE), "my-balie")
    assert job.balie_consumer_key == "my-balie"


@pytest.mark.parametrize(
    ("body", "completed", "message"),
    [
        (SEED_STATUS_IN_PROGRESS, False, "Export in progress."),
        (SEED_STATUS_COMPLETED, True, "Export completed."),
    ],
    ids=["in-progress", "completed"],
)
def test_seed_status_answers_parse(body: bytes, completed: bool, message: str) -> None:
    """Both status examples (000) parse; only the completed one has a download URL."""
    status = protocol.parse_report_status(checked(body), "19", base_url=BASE_URL)
    assert status.report_id == "19"
    assert status.completed is completed
    assert status.message == message
    assert (status.download_url is not None) is completed


def test_seed_completed_status_download_url_keeps_the_prefix_path() -> None:
    """The download URL is the prefix plus the resource, not urljoin's host-rooted URL."""
    status = protocol.parse_report_status(checked(SEED_STATUS_COMPLETED), "19", base_url=BASE_URL)
    assert status.download_url == (
        f"https://test.uitid.be/uitid/rest{REPORTS}/19/download?consumerKey={BALIE}"
    )


def test_seed_periods_parse_newest_first_with_aware_datetimes() -> None:
    """The periods example (002) gives 8 aware periods, newest first, milliseconds kept."""
    periods = protocol.parse_periods(checked(SEED_PERIODS, protocol.PERIODS_FORCE_LIST))
    assert len(periods) == 8
    assert [p.start for p in periods] == sorted((p.start for p in periods), reverse=True)
    assert all(p.start.tzinfo is not None and p.end.tzinfo is not None for p in periods)
    plus_one, plus_two = timedelta(hours=1), timedelta(hours=2)
    assert {p.start.utcoffset() for p in periods} | {p.end.utcoffset() for p in periods} == {
        plus_one,
        plus_two,
    }
    assert periods[0] == Period(
        start=datetime(2020, 4, 1, tzinfo=timezone(plus_two)),
        end=datetime(2020, 6, 30, 23, 59, 59, 999000, tzinfo=timezone(plus_two)),
    )
    assert periods[-1].start == datetime(2018, 7, 1, tzinfo=timezone(plus_two))


def test_seed_price_parses_with_an_exact_decimal() -> None:
    """The price example (004) parses; "2.00" stays Decimal("2.00"), not a float."""
    price = protocol.parse_price(checked(SEED_PRICE, protocol.PRICE_FORCE_LIST))
    assert price.id == "148"
    assert price.reason is PriceReason.FIRST_CARD
    assert price.card_type == "CARD"
    assert price.age_range == AgeRange(age_from=None, age_to=17)
    assert price.kansenstatuut is False
    assert isinstance(price.price, Decimal)
    assert str(price.price) == "2.00"
    assert price.card_system == CardSystem(id="1", name="UiTPAS Regio Aalst")


def test_fixture_periods_parse(fixture_file: Callable[[str], Path]) -> None:
    """The real periods.xml gives three aware periods, newest first, with milliseconds."""
    body = fixture_file("periods.xml").read_bytes()
    periods = protocol.parse_periods(checked(body, protocol.PERIODS_FORCE_LIST))
    assert len(periods) == 3
    summer = timezone(timedelta(hours=2))
    assert periods[0].end == datetime(2020, 6, 30, 23, 59, 59, 999000, tzinfo=summer)
    assert periods[0].end.utcoffset() == timedelta(hours=2)
    assert periods[1].start.utcoffset() == timedelta(hours=1)
    assert periods[0].start > periods[1].start > periods[2].start


def test_fixture_price_parses(fixture_file: Callable[[str], Path]) -> None:
    """The real price.xml parses: only ageTo in the age range, price exact."""
    body = fixture_file("price.xml").read_bytes()
    price = protocol.parse_price(checked(body, protocol.PRICE_FORCE_LIST))
    assert price.price == Decimal("2.00")
    assert str(price.price) == "2.00"
    assert price.age_range == AgeRange(None, 17)
    assert price.use_when_age_unknown is None
    assert price.voucher_type is None


def test_fixture_prices_parse_with_optional_fields_absent(
    fixture_file: Callable[[str], Path],
) -> None:
    """The real prices.xml parses; absent optional fields come back as None."""
    body = fixture_file("prices.xml").read_bytes()
    prices = protocol.parse_prices(checked(body, protocol.PRICE_FORCE_LIST))
    assert [p.id for p in prices] == ["3", "4"]
    first, second = prices
    assert str(first.price) == "20.5"
    assert first.price == Decimal("20.5")
    assert str(second.price) == "5.0"
    assert first.kansenstatuut is False
    assert second.kansenstatuut is True
    for price in prices:
        assert price.reason is PriceReason.LOSS_THEFT
        assert price.card_type is None
        assert price.age_range == AgeRange(None, None)
        assert price.use_when_age_unknown is None
        assert price.voucher_type is None
        assert price.card_system == CardSystem(id="5", name="Test")


def test_price_with_an_unknown_reason_keeps_the_string() -> None:
    """A reason this version does not know (DEFECT, from older docs) is kept as a string."""
    body = SEED_PRICE.replace(b"FIRST_CARD", b"DEFECT")
    price = protocol.parse_price(checked(body, protocol.PRICE_FORCE_LIST))
    assert price.reason == "DEFECT"
    assert not isinstance(price.reason, PriceReason)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("FIRST_CARD", PriceReason.FIRST_CARD), ("DEFECT", "DEFECT"), ("", "")],
)
def test_price_reason_parse(raw: str, expected: object) -> None:
    """PriceReason.parse gives the member when known and the raw string otherwise."""
    assert PriceReason.parse(raw) == expected
    assert type(PriceReason.parse(raw)) is type(expected)


# -- check_response: the one place where answers become exceptions ----------------

API_CODES = [
    *xml_errors._API_ERROR_CLASSES.items(),
    ("PARSE_INVALID_DATE", InvalidRequestError),
    ("PARSE_INVALID_UITPASNUMBER", InvalidRequestError),
]


@pytest.mark.parametrize(("code", "error_class"), API_CODES, ids=[c for c, _ in API_CODES])
def test_api_error_codes_raise_their_class(code: str, error_class: type[ApiError]) -> None:
    """A 400 XML envelope raises the ApiError subclass of its code, with its data."""
    with pytest.raises(error_class) as caught:
        protocol.check_response(400, XML, error_xml(code, "kapot"), endpoint="report.status")
    assert type(caught.value) is error_class
    assert caught.value.code == code
    assert caught.value.message == "kapot"
    assert caught.value.status == 400
    assert caught.value.required_permission is None


def test_unknown_api_error_code_raises_plain_api_error() -> None:
    """A code without a class of its own raises ApiError carrying code, message and status."""
    with pytest.raises(ApiError) as caught:
        protocol.check_response(400, XML, error_xml("BRAND_NEW_CODE", "nieuw"), endpoint="price")
    error = caught.value
    assert type(error) is ApiError
    assert (error.code, error.message, error.status) == ("BRAND_NEW_CODE", "nieuw", 400)
    assert error.required_permission is None


def test_access_denied_carries_the_required_permission() -> None:
    """ACCESS_DENIED names the permission the employee lacks."""
    body = error_xml("ACCESS_DENIED", "Geen toegang", permission="PRICE_READ")
    with pytest.raises(AccessDeniedError) as caught:
        protocol.check_response(400, XML, body, endpoint="price")
    assert caught.value.required_permission == "PRICE_READ"
    assert "PRICE_READ" in str(caught.value)


NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (None, None),
    ],
    ids=["delta-seconds", "http-date", "absent"],
)
def test_429_raises_rate_limited_with_retry_after(header: str | None, expected: float) -> None:
    """HTTP 429 raises RateLimitedError with Retry-After read in either form."""
    headers = {"Content-Type": "text/plain"} | ({"Retry-After": header} if header else {})
    with pytest.raises(RateLimitedError) as caught:
        protocol.check_response(429, headers, b"slow down", endpoint="report.status", now=NOW)
    assert caught.value.status == 429
    assert caught.value.retry_after == expected


HTML_PAGE = b"<!DOCTYPE html><html><head><title>Error</title></head><body>Oops</body></html>"


@pytest.mark.parametrize(
    ("status", "headers", "body", "error_class"),
    [
        (502, {}, b"", ServerError),
        (503, {"Content-Type": "text/html"}, HTML_PAGE, ServerError),
        (500, {"Content-Type": "text/html"}, HTML_PAGE, ServerError),
        (
            401,
            {"Content-Type": "text/plain"},
            b"oauth_problem=signature_invalid",
            AuthenticationError,
        ),
        (403, {"Content-Type": "text/plain"}, b"oauth_problem=token_rejected", AuthenticationError),
        (404, {"Content-Type": "text/html"}, HTML_PAGE, HttpStatusError),
        (400, XML, b"<response><code>ACTION_SUCCEEDED</code></response>", HttpStatusError),
        (200, {"Content-Type": "text/html"}, HTML_PAGE, MalformedResponseError),
        (200, XML, HTML_PAGE, MalformedResponseError),
        (200, {"Content-Type": "text/plain"}, b"not xml at all", MalformedResponseError),
        (200, XML, b"\x00\xff\xfe garbage", MalformedResponseError),
        (200, XML, b"", MalformedResponseError),
        (200, XML, SEED_PRICE[:-30], MalformedResponseError),
        (200, XML, BILLION_LAUGHS, MalformedResponseError),
        (200, XML, EXTERNAL_ENTITY, MalformedResponseError),
        (200, XML, b"<uitpasPrice><id>1</id></uitpasPrice>", MalformedResponseError),
        (200, XML, b"<response/>", MalformedResponseError),
    ],
    ids=[
        "502-empty",
        "503-html",
        "500-html",
        "401-plain-text",
        "403-plain-text",
        "404-html",
        "400-xml-without-error-code",
        "200-html",
        "200-html-labelled-xml",
        "200-plain-text",
        "200-garbage",
        "200-empty",
        "200-truncated-xml",
        "200-billion-laughs",
        "200-external-entity",
        "200-wrong-root",
        "200-empty-response",
    ],
)
def test_non_api_answers_raise_typed_errors(
    status: int, headers: dict[str, str], body: bytes, error_class: type[UitpasError]
) -> None:
    """Answers outside the API's XML envelope raise the matching protocol error, with status."""
    with pytest.raises(error_class) as caught:
        protocol.check_response(status, headers, body, endpoint="report.status")
    assert type(caught.value) is error_class
    assert isinstance(caught.value, UitpasError)
    assert caught.value.status == status


def test_oversized_xml_is_refused_before_parsing() -> None:
    """An XML body past the cap raises MalformedResponseError."""
    body = SEED_CREATE.replace(b"</response>", b"<!--" + b"x" * 2048 + b"--></response>")
    with pytest.raises(MalformedResponseError, match="exceeds"):
        protocol.check_response(200, XML, body, endpoint="report.create", max_xml_bytes=1024)


def test_server_error_keeps_retry_after() -> None:
    """A 503 with Retry-After carries the delay for the retry logic."""
    headers = {"Retry-After": "12"}
    with pytest.raises(ServerError) as caught:
        protocol.check_response(503, headers, b"", endpoint="report.status")
    assert caught.value.retry_after == 12.0


def test_every_error_class_is_a_uitpas_error() -> None:
    """Every exception the errors module exports descends from UitpasError."""
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, UitpasError), name


# -- Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("  120 ", 120.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Wed, 21 Oct 2015 07:30:00 GMT", 120.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
    ids=[
        "seconds",
        "padded-seconds",
        "decimal-seconds",
        "zero",
        "negative",
        "http-date-ahead",
        "http-date-literal",
        "http-date-past",
        "garbage",
        "nan",
        "infinity",
        "empty",
        "blank",
        "absent",
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is read as delta-seconds or an HTTP-date relative to a fixed now."""
    assert retry_after.parse_retry_after(value, now=NOW) == expected


# -- resources -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "report_id", "action", "balie"),
    [
        (f"{REPORTS}/19/status?consumerKey=K1", "19", "status", "K1"),
        (f"{REPORTS}/19/status?balieConsumerKey=K2", "19", "status", "K2"),
        (f"{REPORTS}/abc-DEF_1.2/download", "abc-DEF_1.2", "download", None),
        (
            f"https://test.uitid.be/uitid/rest{REPORTS}/19/download?consumerKey=K3",
            "19",
            "download",
            "K3",
        ),
        (f"https://test.uitid.be/uitid/rest{REPORTS}/20/status", "20", "status", None),
        (f"  {REPORTS}/21/status  ", "21", "status", None),
    ],
    ids=["consumerKey", "balieConsumerKey", "no-query", "absolute", "absolute-no-query", "padded"],
)
def test_parse_resource(resource: str, report_id: str, action: str, balie: str | None) -> None:
    """Relative and absolute (prefix-path) resources give report id, action and balie key."""
    parsed = protocol.parse_resource(resource, "/uitid/rest")
    assert (parsed.report_id, parsed.action, parsed.balie_consumer_key) == (
        report_id,
        action,
        balie,
    )
    assert parsed.relative_url.startswith(f"{REPORTS}/{report_id}/{action}")


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "/uitpas/price",
        f"{REPORTS}/19",
        f"{REPORTS}/19/delete",
        f"{REPORTS}/19/status/extra",
        f"{REPORTS}/a%2Fb/status",
        f"/other{REPORTS}/19/status",
        f"https://test.uitid.be{REPORTS}/../../19/status",
        f"https://test.uitid.be/elsewhere{REPORTS}/19/status",
    ],
    ids=[
        "empty",
        "price-path",
        "no-action",
        "unknown-action",
        "trailing-segment",
        "encoded-slash",
        "foreign-prefix",
        "dot-segments",
        "absolute-other-prefix",
    ],
)
def test_parse_resource_refuses_unexpected_paths(resource: str) -> None:
    """A resource that is not a report status or download path is a protocol error."""
    with pytest.raises(MalformedResponseError):
        protocol.parse_resource(resource, "/uitid/rest")


@pytest.mark.parametrize("report_id", ["..", "."])
def test_parse_resource_refuses_dot_segment_report_ids(report_id: str) -> None:
    """A dot segment is not a report id: the resource is refused like any unexpected path."""
    with pytest.raises(MalformedResponseError):
        protocol.parse_resource(f"{REPORTS}/{report_id}/status")


def test_parse_resource_refuses_a_huge_resource_before_splitting_it() -> None:
    """A megabyte ``<resource>`` is refused by its length, so no URL cache keeps it alive."""
    huge = f"{REPORTS}/1/status?balieConsumerKey=" + "k" * 1_000_000
    with pytest.raises(MalformedResponseError, match="character cap"):
        protocol.parse_resource(huge, "/uitid/rest")
    # A real one, with its query, still reads.
    assert protocol.parse_resource(f"{REPORTS}/1/status?balieConsumerKey=k").report_id == "1"


def status_answer(resource: str, message: str) -> dict[str, object]:
    """Return a checked status answer with a given resource and message."""
    return {"code": "ACTION_SUCCEEDED", "message": message, "resource": resource}


def test_status_completion_is_decided_by_the_resource_path() -> None:
    """A download resource means completed even when the message is unusual."""
    answer = status_answer(f"{REPORTS}/19/download", "Klaar!")
    status = protocol.parse_report_status(answer, "19", base_url=BASE_URL)
    assert status.completed is True
    in_progress = status_answer(f"{REPORTS}/19/status", "Bezig")
    assert protocol.parse_report_status(in_progress, "19", base_url=BASE_URL).completed is False


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (f"{REPORTS}/19/download", "Export in progress."),
        (f"{REPORTS}/19/status", "Export completed."),
    ],
    ids=["download-but-in-progress", "status-but-completed"],
)
def test_status_message_contradicting_the_path_is_refused(resource: str, message: str) -> None:
    """A message that contradicts the resource path is a protocol error, not a guess."""
    with pytest.raises(MalformedResponseError, match="contradicts"):
        protocol.parse_report_status(status_answer(resource, message), "19", base_url=BASE_URL)


def test_status_for_another_report_is_refused() -> None:
    """A resource naming a different report id is a protocol error."""
    answer = status_answer(f"{REPORTS}/20/download", "Export completed.")
    with pytest.raises(MalformedResponseError, match="20"):
        protocol.parse_report_status(answer, "19", base_url=BASE_URL)


def test_status_without_a_resource_is_refused() -> None:
    """A status answer without a <resource> is a protocol error."""
    with pytest.raises(MalformedResponseError, match="resource"):
        protocol.parse_report_status(
            {"code": "ACTION_SUCCEEDED", "message": "Export completed."}, "19", base_url=BASE_URL
        )


@pytest.mark.parametrize(
    ("resource", "caller_key", "expected"),
    [
        (
            f"{REPORTS}/19/download?consumerKey=K1",
            None,
            f"{BASE_URL}{REPORTS}/19/download?consumerKey=K1",
        ),
        (
            f"{REPORTS}/19/download?balieConsumerKey=K1",
            "K1",
            f"{BASE_URL}{REPORTS}/19/download?balieConsumerKey=K1",
        ),
        (f"{REPORTS}/19/download", None, f"{BASE_URL}{REPORTS}/19/download"),
        (
            f"{REPORTS}/19/download",
            "K 2+",
            f"{BASE_URL}{REPORTS}/19/download?balieConsumerKey=K%202%2B",
        ),
        (
            f"{BASE_URL}{REPORTS}/19/download?consumerKey=K1",
            None,
            f"{BASE_URL}{REPORTS}/19/download?consumerKey=K1",
        ),
    ],
    ids=["echoed-key", "echoed-balie-key", "no-key", "caller-key-added", "absolute-resource"],
)
def test_download_url_keeps_the_prefix_path(
    resource: str, caller_key: str | None, expected: str
) -> None:
    """The download URL is prefix + resource (the urljoin trap), with the balie key present."""
    answer = status_answer(resource, "Export completed.")
    status = protocol.parse_report_status(
        answer, "19", base_url=BASE_URL, balie_consumer_key=caller_key
    )
    assert status.download_url == expected
    assert status.download_url.startswith("https://test.uitid.be/uitid/rest/uitpas/report/")


@pytest.mark.parametrize("query", ["lang=nl", "consumerKey="], ids=["other-parameter", "empty-key"])
def test_download_url_adds_the_key_to_an_existing_query(query: str) -> None:
    """When the resource already has a query, the caller's key is joined with '&'."""
    answer = status_answer(f"{REPORTS}/19/download?{query}", "Export completed.")
    status = protocol.parse_report_status(answer, "19", base_url=BASE_URL, balie_consumer_key="K1")
    assert status.download_url == f"{BASE_URL}{REPORTS}/19/download?{query}&balieConsumerKey=K1"


# -- building requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2014, 8, 1), date(2014, 8, 31)),
        (date(2014, 8, 1), datetime(2014, 8, 31, tzinfo=timezone.utc)),
        ("2014-08-01", date(2014, 8, 31)),
        (date(2014, 8, 1), "2014-08-31"),
        (None, date(2014, 8, 31)),
        (20140801, 20140831),
        (date(2014, 8, 31), date(2014, 8, 1)),
    ],
    ids=[
        "datetime-start",
        "datetime-end",
        "string-start",
        "string-end",
        "none",
        "ints",
        "reversed",
    ],
)
def test_validate_period_refuses_bad_input(start: object, end: object) -> None:
    """Only two dates in order are a period; anything else is an InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError) as caught:
        periods.validate_period(start, end)
    assert isinstance(caught.value, ValueError)


def test_validate_period_accepts_a_single_day() -> None:
    """A period may start and end on the same day."""
    day = date(2014, 8, 1)
    assert periods.validate_period(day, day) == (day, day)


def test_create_request_puts_dates_in_the_form_and_is_not_idempotent() -> None:
    """Creating a report is a POST with dates in the form body, not in the query."""
    request = protocol.build_create_report(date(2014, 8, 1), date(2014, 8, 31), BALIE)
    assert request.method == "POST"
    assert request.path == REPORTS
    assert request.query == ()
    assert request.form is not None
    assert dict(request.form) == {
        "balieConsumerKey": BALIE,
        "startDate": "2014-08-01",
        "endDate": "2014-08-31",
    }
    assert request.idempotent is False


def test_create_request_without_balie_key_omits_it() -> None:
    """Without a balie key the form holds only the dates."""
    request = protocol.build_create_report(date(2014, 8, 1), date(2014, 8, 31), None)
    assert request.form is not None
    assert dict(request.form) == {"startDate": "2014-08-01", "endDate": "2014-08-31"}


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: protocol.build_report_status("19", BALIE), f"{REPORTS}/19/status"),
        (lambda: protocol.build_download_report("19", BALIE), f"{REPORTS}/19/download"),
        (lambda: protocol.build_periods(BALIE), f"{REPORTS}/periods"),
    ],
    ids=["status", "download", "periods"],
)
def test_get_requests_put_the_balie_key_in_the_query(
    build: Callable[[], protocol.Request], path: str
) -> None:
    """Status, download and periods are idempotent GETs with balieConsumerKey in the query."""
    request = build()
    assert request.method == "GET"
    assert request.path == path
    assert request.query == (("balieConsumerKey", BALIE),)
    assert request.form is None
    assert request.idempotent is True


def test_a_polled_report_reuses_one_status_request_and_the_cache_is_bounded() -> None:
    """Polling one report builds its request once; the cache keeps at most its bound."""
    first = protocol.build_report_status("19", BALIE)
    assert protocol.build_report_status("19", BALIE) is first
    assert protocol.build_report_status("19", None) is not first
    for number in range(protocol.STATUS_REQUEST_CACHE_SIZE + 10):
        protocol.build_report_status(str(number), BALIE)
    info = protocol.build_report_status.cache_info()
    assert info.currsize == info.maxsize == protocol.STATUS_REQUEST_CACHE_SIZE


@pytest.mark.parametrize(
    ("query", "form"),
    [
        ((), None),
        ((("balieConsumerKey", "K 1/+é~"),), None),
        ((("a", "1"), ("b", "x&y=z")), (("startDate", "2014-08-01"),)),
    ],
)
def test_a_requests_target_and_signed_params_are_its_path_query_and_form(
    query: protocol.Params, form: protocol.Params | None
) -> None:
    """``target`` is the path with the encoded query; ``signed_params`` the query, then the form."""
    request = protocol.Request("GET", "/a/b", "x", query=query, form=form)
    expected = "/a/b" + ("?" + urlencode(query, quote_via=quote, safe="~") if query else "")
    assert request.target == expected
    assert request.signed_params == (*query, *(form or ()))


@pytest.mark.parametrize(
    "report_id", ["", "a/b", "..", ".", "../19", "19/../20", "19?x=1", "19 20", "19%2F20"]
)
@pytest.mark.parametrize(
    "build", [protocol.build_report_status, protocol.build_download_report], ids=["status", "dl"]
)
def test_bad_report_ids_are_refused(
    build: Callable[[str, str | None], protocol.Request], report_id: str
) -> None:
    """A report id that is not one plain path segment is refused before any request."""
    with pytest.raises(InvalidArgumentError):
        build(report_id, None)


@pytest.mark.parametrize("key", ["", "   "])
def test_empty_balie_keys_are_refused(key: str) -> None:
    """An empty or blank balie key is refused rather than sent."""
    with pytest.raises(InvalidArgumentError):
        protocol.build_report_status("19", key)
    with pytest.raises(InvalidArgumentError):
        protocol.build_periods(key)


def test_build_price_with_a_known_reason() -> None:
    """A price request carries the number, the enum's value and the optional fields."""
    request = protocol.build_price(
        "0934000185108",
        PriceReason.FIRST_CARD,
        date_of_birth=date(2010, 1, 1),
        postal_code="9300",
        balie_consumer_key="8bd020fb-a55a-4d15-b71c-1a1632cb7f00",
    )
    assert request.method == "GET"
    assert request.path == "/uitpas/price"
    assert dict(request.query) == {
        "balieConsumerKey": "8bd020fb-a55a-4d15-b71c-1a1632cb7f00",
        "uitpasNumber": "0934000185108",
        "reason": "FIRST_CARD",
        "dateOfBirth": "2010-01-01",
        "postalCode": "9300",
    }


def test_build_price_passes_an_unknown_reason_through() -> None:
    """A reason string this version does not know is sent as is; the server decides."""
    request = protocol.build_price("0934000185108", "DEFECT")
    assert ("reason", "DEFECT") in request.query
    assert "voucherNumber" not in dict(request.query)


@pytest.mark.parametrize(
    ("number", "reason", "birth"),
    [
        ("", PriceReason.FIRST_CARD, None),
        ("   ", PriceReason.FIRST_CARD, None),
        ("0934000185108", "", None),
        ("0934000185108", PriceReason.FIRST_CARD, datetime(2010, 1, 1)),
        ("0934000185108", PriceReason.FIRST_CARD, "2010-01-01"),
    ],
    ids=["empty-number", "blank-number", "empty-reason", "datetime-birth", "string-birth"],
)
def test_build_price_refuses_bad_input(number: str, reason: str, birth: object) -> None:
    """Bad price arguments are refused before any request."""
    with pytest.raises(InvalidArgumentError):
        protocol.build_price(number, reason, date_of_birth=birth)  # type: ignore[arg-type]


# -- Content-Disposition and filenames ----------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "attachment; filename=financialOverview_CC De Werf _20151007_1404.zip",
            "financialOverview_CC De Werf _20151007_1404.zip",
        ),
        ("attachment; filename=plain.zip; size=123", "plain.zip"),
        ('attachment; filename="report.zip"', "report.zip"),
        ('attachment; filename="my \\"best\\" report.zip"', 'my "best" report.zip'),
        ("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20Q1.zip", "résumé Q1.zip"),
        (
            "attachment; filename=\"fallback.zip\"; filename*=UTF-8''%C3%A9t%C3%A9.zip",
            "été.zip",
        ),
        (
            "attachment; filename*=UTF-8''%C3%A9t%C3%A9.zip; filename=\"fallback.zip\"",
            "été.zip",
        ),
        ("ATTACHMENT; FILENAME=upper.zip", "upper.zip"),
        ("attachment", None),
        ("attachment; filename=", None),
        ("", None),
        (None, None),
    ],
    ids=[
        "real-unquoted-with-spaces",
        "unquoted-then-parameter",
        "quoted",
        "quoted-escaped-quotes",
        "rfc6266-star",
        "star-preferred-after",
        "star-preferred-before",
        "upper-case",
        "no-filename",
        "empty-filename",
        "empty-header",
        "missing-header",
    ],
)
def test_content_disposition_filename(header: str | None, expected: str | None) -> None:
    """The filename is read from each Content-Disposition form, filename* first."""
    assert filenames.content_disposition_filename(header) == expected


FALLBACK = "fallback.zip"


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        ("financialOverview_CC De Werf _20151007_1404.zip", None),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("/etc/passwd", "passwd"),
        ("C:\\Windows\\system32\\evil.zip", "evil.zip"),
        ("a\x00b\x01c\x7f.zip", "a_b_c_.zip"),
        ('re<po>rt:"x"|?*.zip', "re_po_rt__x____.zip"),
        ("tab\tand\nnewline.zip", "tab_and_newline.zip"),
        (".", FALLBACK),
        ("..", FALLBACK),
        ("....", FALLBACK),
        ("../..", FALLBACK),
        ("", FALLBACK),
        (None, FALLBACK),
        ("   ", FALLBACK),
        ("___", FALLBACK),
        (".hidden.zip", "hidden.zip"),
        ("CON", "_CON"),
        ("con", "_con"),
        ("nul.zip", "_nul.zip"),
        ("COM1.zip", "_COM1.zip"),
        ("lpt9", "_lpt9"),
        ("console.zip", None),
        ("Ünïcödé Räpport.zip", None),
        ("e\u0301te\u0301.zip", "\u00e9t\u00e9.zip"),
    ],
    ids=[
        "real-name-kept",
        "posix-traversal",
        "windows-traversal",
        "absolute-posix",
        "absolute-windows",
        "nul-and-controls",
        "reserved-characters",
        "whitespace-controls",
        "dot",
        "dot-dot",
        "only-dots",
        "only-parents",
        "empty",
        "none",
        "blank",
        "only-replacements",
        "leading-dot",
        "device-con",
        "device-lowercase",
        "device-with-suffix",
        "device-com1",
        "device-lpt9",
        "not-a-device",
        "non-ascii-kept",
        "nfc-normalised",
    ],
)
def test_safe_filename(proposed: str | None, expected: str | None) -> None:
    """Hostile or odd names become safe names; harmless ones are kept (None: unchanged)."""
    assert filenames.safe_filename(proposed, FALLBACK) == (expected or proposed)


@pytest.mark.parametrize(
    "proposed",
    ["x" * 400 + ".zip", "é" * 300 + ".zip", "日本語" * 100 + ".zip", "a.b" * 150 + ".zip"],
    ids=["ascii", "two-byte", "three-byte", "many-dots"],
)
def test_safe_filename_cuts_long_names_keeping_the_suffix(proposed: str) -> None:
    """A long name is cut to at most 200 UTF-8 bytes, still ending in .zip and valid UTF-8."""
    name = filenames.safe_filename(proposed, FALLBACK)
    assert len(name.encode()) <= filenames.MAX_FILENAME_BYTES
    assert name.endswith(".zip")
    assert len(name) > len(".zip")
    assert proposed.startswith(name[:-4])


@given(st.text())
def test_safe_filename_never_leaves_its_directory(proposed: str) -> None:
    """For any text, the result is one plain, non-empty name directly inside the directory."""
    name = filenames.safe_filename(proposed, FALLBACK)
    assert name
    assert not {"/", "\\", "\x00"} & set(name)
    assert name not in {".", ".."}
    assert len(name.encode()) <= 255
    directory = Path(tempfile.gettempdir())
    assert Path(directory, name).resolve().parent == directory.resolve()


PLAIN_WORDS = st.lists(
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=12),
    min_size=1,
    max_size=6,
)


@given(PLAIN_WORDS)
def test_safe_filename_keeps_plain_names(words: list[str]) -> None:
    """A plain name of letters, digits, dashes, underscores and single spaces is kept."""
    proposed = f"report {' '.join(words)}.zip"
    assert filenames.safe_filename(proposed, FALLBACK) == proposed


@pytest.mark.parametrize(
    ("body", "parse", "expected"),
    [
        (
            b"<response><code>ACTION_SUCCEEDED</code><periods><period>"
            b"<startDate>2020-04-01T00:00:00+02:00</startDate>"
            b"<endDate>2020-06-30T23:59:59.999+02:00</endDate></period></periods></response>",
            protocol.parse_periods,
            1,
        ),
        (
            b"<response><uitpasPrice><id>1</id><reason>FIRST_CARD</reason>"
            b"<kansenstatuut>false</kansenstatuut><price>2.00</price></uitpasPrice></response>",
            lambda response: [protocol.parse_price(response)],
            1,
        ),
    ],
)
def test_single_elements_parse_without_force_list(
    body: bytes, parse: Callable[[dict[str, Any]], list[Any]], expected: int
) -> None:
    """A lone repeated element parses even when the caller forgot xmltodict's force_list."""
    response = protocol.check_response(200, {}, body, endpoint="test")
    assert len(parse(response)) == expected


_QUERY_TEXT = st.text(alphabet=st.sampled_from("ab=&+%20~é;?"), max_size=30)


@given(_QUERY_TEXT)
def test_resource_queries_read_as_parse_qsl_reads_them(query: str) -> None:
    """The resource query reader gives dict(parse_qsl(query)) for any query."""
    from urllib.parse import parse_qsl

    assert protocol._parse_query(query) == dict(parse_qsl(query))


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=4))
def test_queries_encode_as_urlencode_encodes_them(query: list[tuple[str, str]]) -> None:
    """encode_query gives urlencode's RFC 3986 encoding for any names and values."""

    expected = urlencode(query, quote_via=quote, safe="~")
    assert protocol.encode_query(tuple(query)) == expected
