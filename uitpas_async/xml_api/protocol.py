"""The UiTPAS XML API as pure functions: build requests, turn answers into models or errors.

Nothing here does I/O or awaits. A request is a :class:`Request` value; an answer
is ``(status, headers, body)``. :func:`check_response` is the one place where an
answer becomes an exception, and the ``parse_*`` functions turn a checked XML
document into frozen models. Foreign parser errors are translated here, at the
boundary where the XML is read.

Spec oddities handled here, with where they come from:

* ``<resource>`` paths are relative to the prefix, which itself has a path
  (``https://test.uitid.be/uitid/rest``), so ``urljoin`` is wrong
  (reference, "Environments").
* "Completed" is decided from the resource path (``/status`` vs ``/download``),
  the message text only cross-checks it (reference, "Financial reports").
* The balie key comes back as ``consumerKey=`` or ``balieConsumerKey=``.
"""

from __future__ import annotations

import functools
import re
import xml.parsers.expat
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import unquote_plus, urlsplit

import attrs
import xmltodict

from uitpas_async.engine.errors import (
    AuthenticationError,
    HttpStatusError,
    InvalidArgumentError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
)
from uitpas_async.engine.periods import validate_period
from uitpas_async.engine.retry_after import parse_retry_after
from uitpas_async.xml_api.errors import api_error_class
from uitpas_async.xml_api.models import (
    AgeRange,
    CardSystem,
    Period,
    PriceReason,
    ReportJob,
    ReportStatus,
    UitpasPrice,
    VoucherType,
)
from uitpas_async.xml_api.signing import percent_encode

__all__ = [
    "Request",
    "Resource",
    "build_create_report",
    "build_download_report",
    "build_periods",
    "build_price",
    "build_report_status",
    "check_response",
    "join_prefix",
    "parse_create_report",
    "parse_periods",
    "parse_price",
    "parse_report_status",
    "parse_resource",
    "parse_xml",
]

#: The code of every successful XML answer.
SUCCESS_CODE = "ACTION_SUCCEEDED"
#: Where financial reports live, relative to the prefix.
REPORT_PATH = "/uitpas/report/financialoverview/organiser"
PRICE_PATH = "/uitpas/price"
#: The query names the server uses for the balie key in ``<resource>`` URLs.
RESOURCE_KEY_PARAMS = ("balieConsumerKey", "consumerKey")
#: XML bodies above this size are refused before parsing.
DEFAULT_MAX_XML_BYTES = 1024 * 1024
#: Longest ``<resource>`` URL read; a real one is about 150 characters.
MAX_RESOURCE_CHARS = 2048
#: Status requests kept built, for the reports being polled (least recently used go).
STATUS_REQUEST_CACHE_SIZE = 1024

_RESOURCE_RE = re.compile(
    REPORT_PATH + r"/(?P<report_id>[A-Za-z0-9_.-]+)/(?P<action>status|download)"
)

_REPORT_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")

Params = tuple[tuple[str, str], ...]


@attrs.frozen
class Request:
    """One API call, before signing: method, path under the prefix, query and form."""

    method: Literal["GET", "POST"]
    path: str
    #: A short name for logs and errors, such as ``report.create``.
    endpoint: str
    query: Params = ()
    form: Params | None = None
    #: Whether sending it twice is harmless (creating a report is not).
    idempotent: bool = True
    #: Elements of the answer that may repeat, read as lists (xmltodict's ``force_list``).
    force_list: tuple[str, ...] = ()

    # Cached on the request: a status request is built once and sent at every poll.

    @functools.cached_property
    def target(self) -> str:
        """Return the path with its encoded query, as appended to the prefix."""
        return f"{self.path}?{encode_query(self.query)}" if self.query else self.path

    @functools.cached_property
    def signed_params(self) -> Params:
        """Return the parameters that enter the OAuth signature: query and form body."""
        return (*self.query, *(self.form or ()))


@attrs.frozen
class Resource:
    """A ``<resource>`` reference to a report's status or download URL."""

    report_id: str
    action: Literal["status", "download"]
    balie_consumer_key: str | None
    #: The path relative to the prefix, with its query (never signed).
    relative_url: str


# -- building requests -------------------------------------------------------


def _balie(key: str | None) -> Params:
    if key is None:
        return ()
    if not key or not key.strip():
        raise InvalidArgumentError("balie_consumer_key must not be empty")
    return (("balieConsumerKey", key),)


def _report_id_segment(report_id: str) -> str:
    if not report_id or not _REPORT_ID_RE.fullmatch(report_id) or report_id in {".", ".."}:
        raise InvalidArgumentError(f"not a report id: {report_id!r}")
    return report_id


def build_create_report(start: date, end: date, balie_consumer_key: str | None) -> Request:
    """Build the call that starts generating a financial report."""
    start, end = validate_period(start, end)
    form = (
        *_balie(balie_consumer_key),
        ("startDate", start.isoformat()),
        ("endDate", end.isoformat()),
    )
    return Request("POST", REPORT_PATH, "report.create", form=form, idempotent=False)


@functools.lru_cache(maxsize=STATUS_REQUEST_CACHE_SIZE)
def build_report_status(report_id: str, balie_consumer_key: str | None) -> Request:
    """Build the call that asks whether a report is ready (the same one at every poll)."""
    path = f"{REPORT_PATH}/{_report_id_segment(report_id)}/status"
    return Request("GET", path, "report.status", query=_balie(balie_consumer_key))


def build_download_report(report_id: str, balie_consumer_key: str | None) -> Request:
    """Build the call that downloads a completed report."""
    path = f"{REPORT_PATH}/{_report_id_segment(report_id)}/download"
    return Request("GET", path, "report.download", query=_balie(balie_consumer_key))


def build_periods(balie_consumer_key: str) -> Request:
    """Build the call that lists a balie's past reporting periods."""
    if not balie_consumer_key:
        raise InvalidArgumentError("balie_consumer_key is required for periods")
    return Request(
        "GET",
        f"{REPORT_PATH}/periods",
        "report.periods",
        query=_balie(balie_consumer_key),
        force_list=PERIODS_FORCE_LIST,
    )


def build_price(
    uitpas_number: str,
    reason: PriceReason | str,
    *,
    date_of_birth: date | None = None,
    postal_code: str | None = None,
    voucher_number: str | None = None,
    balie_consumer_key: str | None = None,
) -> Request:
    """Build the call that asks the price of a UiTPAS card."""
    if not uitpas_number or not uitpas_number.strip():
        raise InvalidArgumentError("uitpas_number must not be empty")
    reason_value = reason.value if isinstance(reason, PriceReason) else str(reason)
    if not reason_value:
        raise InvalidArgumentError("reason must not be empty")
    query: list[tuple[str, str]] = [*_balie(balie_consumer_key)]
    query += [("uitpasNumber", uitpas_number), ("reason", reason_value)]
    if date_of_birth is not None:
        if isinstance(date_of_birth, datetime) or not isinstance(date_of_birth, date):
            raise InvalidArgumentError("date_of_birth must be a datetime.date")
        query.append(("dateOfBirth", date_of_birth.isoformat()))
    if postal_code:
        query.append(("postalCode", postal_code))
    if voucher_number:
        query.append(("voucherNumber", voucher_number))
    return Request("GET", PRICE_PATH, "price", query=tuple(query), force_list=PRICE_FORCE_LIST)


def join_prefix(base_url: str, relative: str) -> str:
    """Append a path (with optional query) to the prefix, keeping the prefix's own path."""
    return base_url.rstrip("/") + "/" + relative.lstrip("/")


def encode_query(query: Params) -> str:
    """Return the query string for a request, percent-encoded per RFC 3986."""
    # What urlencode(query, quote_via=quote, safe="~") gives, with the encoding of the
    # names and balie keys that recur on every request cached.
    return "&".join([percent_encode(name) + "=" + percent_encode(value) for name, value in query])


# -- reading answers -----------------------------------------------------------


def _refuse_declarations(*_: object) -> None:
    raise MalformedResponseError("XML with a DTD or entity declarations is refused")


class _RefusingExpat:
    """An ``expat`` stand-in whose parsers refuse DTDs and entity declarations."""

    ExpatError = xml.parsers.expat.ExpatError

    @staticmethod
    def ParserCreate(
        encoding: str | None = None, namespace_separator: str | None = None
    ) -> xml.parsers.expat.XMLParserType:
        parser = xml.parsers.expat.ParserCreate(encoding, namespace_separator)
        parser.StartDoctypeDeclHandler = _refuse_declarations
        parser.EntityDeclHandler = _refuse_declarations
        parser.UnparsedEntityDeclHandler = _refuse_declarations
        parser.ExternalEntityRefHandler = _refuse_declarations  # type: ignore[assignment]
        return parser


def parse_xml(
    body: bytes,
    *,
    force_list: Iterable[str] = (),
    max_bytes: int = DEFAULT_MAX_XML_BYTES,
    status: int | None = None,
) -> dict[str, Any]:
    """Parse an XML body into a dict, refusing DTDs, entities and oversized bodies.

    Raises:
        MalformedResponseError: empty, too large, unsafe or not well-formed XML.
    """
    if len(body) > max_bytes:
        raise MalformedResponseError(
            f"XML body of {len(body)} bytes exceeds the {max_bytes}-byte cap", status=status
        )
    if not body.strip():
        raise MalformedResponseError("empty body where XML was expected", status=status)
    try:
        doc = xmltodict.parse(
            body, expat=_RefusingExpat, force_list=tuple(force_list), disable_entities=True
        )
    except MalformedResponseError as exc:
        exc.status = status
        raise
    except (xml.parsers.expat.ExpatError, ValueError) as exc:
        raise MalformedResponseError(f"body is not well-formed XML: {exc}", status=status) from exc
    if not isinstance(doc, dict):
        raise MalformedResponseError("XML document has no root element", status=status)
    return doc


def _looks_like_xml(headers: Mapping[str, str], body: bytes) -> bool:
    head = body.lstrip()[:64].lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return False
    # The body first: an answer that starts like XML needs no header looked up.
    return head.startswith((b"<?xml", b"<response")) or (
        "xml" in headers.get("Content-Type", "").lower()
    )


def _describe_body(headers: Mapping[str, str], body: bytes) -> str:
    if not body:
        return "an empty body"
    kind = headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    head = body.lstrip()[:15].lower()
    if head.startswith((b"<!doctype html", b"<html")):
        kind = "an HTML page"
    return f"{kind} ({len(body)} bytes)"


def check_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    endpoint: str,
    force_list: Iterable[str] = (),
    max_xml_bytes: int = DEFAULT_MAX_XML_BYTES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return the ``<response>`` of a successful answer, or raise the matching error.

    This is the one place where answers become exceptions.

    Raises:
        RateLimitedError: HTTP 429.
        ServerError: HTTP 5xx.
        ApiError: the XML envelope carries an error code (subclass per code).
        AuthenticationError: 401/403 without the XML envelope.
        HttpStatusError: any other error status without the XML envelope.
        MalformedResponseError: a success status whose body is not the expected XML.
    """
    where = f"{endpoint}: HTTP {status}"
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"), now)
        raise RateLimitedError(f"{where}: rate limited", retry_after=retry_after)
    if status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After"), now)
        detail = _describe_body(headers, body)
        raise ServerError(f"{where} with {detail}", status=status, retry_after=retry_after)
    if not _looks_like_xml(headers, body):
        detail = _describe_body(headers, body)
        if status in (401, 403):
            raise AuthenticationError(f"{where}: authentication refused ({detail})", status=status)
        if status >= 400:
            raise HttpStatusError(f"{where} with {detail}", status=status)
        raise MalformedResponseError(f"{where}: expected XML, got {detail}", status=status)
    doc = parse_xml(body, force_list=force_list, max_bytes=max_xml_bytes, status=status)
    response = doc.get("response")
    if not isinstance(response, dict):
        root = next(iter(doc), "?")
        raise MalformedResponseError(f"{where}: expected <response>, got <{root}>", status=status)
    code = _text(response.get("code"))
    if code and code != SUCCESS_CODE:
        message = _text(response.get("message")) or ""
        permission = _text(response.get("requiredPermission"))
        error_class = api_error_class(code)
        raise error_class(
            code, message, status=status, required_permission=permission, endpoint=endpoint
        )
    if status >= 400:
        raise HttpStatusError(f"{where} without an error code", status=status)
    return response


def _text(value: object) -> str | None:
    """Return an element's text: xmltodict gives str, None, or a dict with '#text'."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict) and isinstance(value.get("#text"), str):
        return str(value["#text"]).strip()
    raise MalformedResponseError(f"expected text, got an element {sorted(value)!r}"[:200])  # type: ignore[call-overload]


def _repeated(value: object) -> list[Any]:
    """Return an element that may repeat as a list, whatever xmltodict's force_list was."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _required_text(parent: Mapping[str, Any], name: str, where: str) -> str:
    value = _text(parent.get(name))
    if not value:
        raise MalformedResponseError(f"{where}: missing <{name}>")
    return value


def _parse_query(query: str) -> dict[str, str]:
    """Return a query's names and values as ``dict(urllib.parse.parse_qsl(query))`` does.

    Blank values are dropped and the last of a repeated name wins. (parse_qsl's
    general machinery was a third of reading a status answer.)
    """
    values: dict[str, str] = {}
    for piece in query.split("&"):
        name, equals, value = piece.partition("=")
        if equals and value:
            values[unquote_plus(name)] = unquote_plus(value)
    return values


def parse_resource(resource: str, prefix_path: str = "") -> Resource:
    """Parse a ``<resource>`` URL (relative to the prefix, or absolute) into its parts.

    Raises:
        MalformedResponseError: the path is not a report status or download path, or
            the text is longer than any resource URL (``MAX_RESOURCE_CHARS``).
    """
    text = resource.strip()
    if len(text) > MAX_RESOURCE_CHARS:
        # Before urlsplit, whose cache would keep a server's megabyte strings alive.
        raise MalformedResponseError(
            f"resource of {len(text)} characters exceeds the {MAX_RESOURCE_CHARS}-character cap"
        )
    parts = urlsplit(text)
    path = parts.path
    prefix = prefix_path.rstrip("/")
    if (parts.scheme or parts.netloc) and prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    match = _RESOURCE_RE.fullmatch(path)
    if match is None or match["report_id"] in (".", ".."):
        raise MalformedResponseError(f"unexpected resource path {path!r}"[:200])
    query = _parse_query(parts.query)
    balie = None
    for name in RESOURCE_KEY_PARAMS:
        if query.get(name):
            balie = query[name]
            break
    action: Literal["status", "download"] = (
        "download" if match["action"] == "download" else "status"
    )
    relative = path + (f"?{parts.query}" if parts.query else "")
    return Resource(match["report_id"], action, balie, relative)


def _resource(response: Mapping[str, Any], where: str, prefix_path: str) -> Resource:
    return parse_resource(_required_text(response, "resource", where), prefix_path)


def parse_create_report(
    response: Mapping[str, Any], balie_consumer_key: str | None, prefix_path: str = ""
) -> ReportJob:
    """Turn a checked create answer into a :class:`ReportJob`.

    Raises:
        MalformedResponseError: the resource is not a status URL.
    """
    resource = _resource(response, "report.create", prefix_path)
    if resource.action != "status":
        raise MalformedResponseError("report.create: resource is not a status URL")
    return ReportJob(resource.report_id, balie_consumer_key or resource.balie_consumer_key)


def parse_report_status(
    response: Mapping[str, Any],
    report_id: str,
    *,
    base_url: str,
    balie_consumer_key: str | None = None,
) -> ReportStatus:
    """Turn a checked status answer into a :class:`ReportStatus`.

    Completion is read from the resource path; a message that contradicts it,
    or a resource for another report, is a protocol error rather than a guess.

    Raises:
        MalformedResponseError: missing, foreign or contradictory resource.
    """
    where = "report.status"
    prefix_path = urlsplit(base_url).path
    resource = _resource(response, where, prefix_path)
    message = _text(response.get("message")) or ""
    if resource.report_id != report_id:
        raise MalformedResponseError(
            f"{where}: resource names report {resource.report_id!r}, asked for {report_id!r}"
        )
    completed = resource.action == "download"
    lowered = message.lower()
    if (completed and "progress" in lowered) or (not completed and "complete" in lowered):
        raise MalformedResponseError(
            f"{where}: message {message!r} contradicts resource action {resource.action!r}"
        )
    download_url = None
    if completed:
        relative = resource.relative_url
        key = balie_consumer_key or resource.balie_consumer_key
        if key and resource.balie_consumer_key is None:
            separator = "&" if "?" in relative else "?"
            relative += separator + encode_query((("balieConsumerKey", key),))
        download_url = join_prefix(base_url, relative)
    return ReportStatus(report_id, completed, message, download_url)


def _parse_timestamp(value: str, where: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedResponseError(f"{where}: not a W3C timestamp: {value!r}"[:200]) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise MalformedResponseError(f"{where}: timestamp without a UTC offset: {value!r}")
    return parsed


def parse_periods(response: Mapping[str, Any]) -> list[Period]:
    """Turn a checked periods answer into periods, newest first.

    Raises:
        MalformedResponseError: a period lacks a date, or a date is naive or invalid.
    """
    where = "report.periods"
    container = response.get("periods")
    if container is None or container == "":
        return []
    if not isinstance(container, dict):
        raise MalformedResponseError(f"{where}: <periods> is not a list of <period>")
    periods = []
    for item in _repeated(container.get("period")):
        if not isinstance(item, dict):
            raise MalformedResponseError(f"{where}: empty <period>")
        start = _parse_timestamp(_required_text(item, "startDate", where), where)
        end = _parse_timestamp(_required_text(item, "endDate", where), where)
        if end < start:
            raise MalformedResponseError(f"{where}: period ends before it starts")
        periods.append(Period(start, end))
    periods.sort(key=lambda period: period.start, reverse=True)
    return periods


#: Elements that may repeat, for xmltodict's ``force_list``.
PERIODS_FORCE_LIST = ("period",)
PRICE_FORCE_LIST = ("uitpasPrice",)


def _optional_int(parent: Mapping[str, Any], name: str, where: str) -> int | None:
    value = _text(parent.get(name))
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise MalformedResponseError(f"{where}: <{name}> is not an integer") from exc


def _boolean(value: str | None, name: str, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise MalformedResponseError(f"{where}: <{name}> is not a boolean: {value!r}"[:200])


def _element(parent: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any] | None:
    value = parent.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise MalformedResponseError(f"{where}: <{name}> has no child elements")
    return value


def parse_price_element(item: Mapping[str, Any]) -> UitpasPrice:
    """Turn one ``<uitpasPrice>`` element into a :class:`UitpasPrice`."""
    where = "price"
    raw_price = _required_text(item, "price", where)
    try:
        price = Decimal(raw_price)
    except InvalidOperation as exc:
        raise MalformedResponseError(f"{where}: <price> is not a decimal: {raw_price!r}") from exc
    if not price.is_finite():
        raise MalformedResponseError(f"{where}: <price> is not finite")
    age = _element(item, "ageRange", where) or {}
    system = _element(item, "cardSystem", where)
    voucher = _element(item, "voucherType", where)
    kansenstatuut = _boolean(_text(item.get("kansenstatuut")), "kansenstatuut", where)
    return UitpasPrice(
        id=_required_text(item, "id", where),
        reason=PriceReason.parse(_required_text(item, "reason", where)),
        price=price,
        kansenstatuut=bool(kansenstatuut),
        card_system=CardSystem(
            id=_required_text(system, "id", where), name=_text(system.get("name")) or ""
        )
        if system is not None
        else None,
        age_range=AgeRange(
            _optional_int(age, "ageFrom", where), _optional_int(age, "ageTo", where)
        ),
        card_type=_text(item.get("cardType")) or None,
        use_when_age_unknown=_boolean(
            _text(item.get("useWhenAgeUnknown")), "useWhenAgeUnknown", where
        ),
        voucher_type=VoucherType(
            name=_required_text(voucher, "name", where), prefix=_text(voucher.get("prefix"))
        )
        if voucher is not None
        else None,
    )


def parse_price(response: Mapping[str, Any]) -> UitpasPrice:
    """Turn a checked price answer into a :class:`UitpasPrice`.

    Raises:
        MalformedResponseError: no ``<uitpasPrice>``, or a field of the wrong type.
    """
    items = _repeated(response.get("uitpasPrice"))
    if not items:
        raise MalformedResponseError("price: missing <uitpasPrice>")
    return parse_price_element(items[0])


def parse_prices(response: Mapping[str, Any]) -> list[UitpasPrice]:
    """Turn a ``<uitpasPrices>`` list into prices."""
    container = _element(response, "uitpasPrices", "prices") or {}
    return [parse_price_element(item) for item in _repeated(container.get("uitpasPrice"))]


# -- report files ----------------------------------------------------------------


def report_fallback_filename(report_id: str) -> str:
    """Return the filename used when the server proposes none."""
    return f"financialOverview_report-{report_id}.zip"
