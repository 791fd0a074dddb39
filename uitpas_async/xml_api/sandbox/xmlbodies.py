"""XML bodies the sandbox answers with, built as plain strings (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from xml.sax.saxutils import escape

from uitpas_async.xml_api.sandbox.periods import format_period_end, format_period_start

__all__ = [
    "ACTION_SUCCEEDED",
    "MALFORMED_XML",
    "MESSAGE_COMPLETED",
    "MESSAGE_IN_PROGRESS",
    "error_body",
    "periods_body",
    "resource_body",
    "xml_element",
]

ACTION_SUCCEEDED = "ACTION_SUCCEEDED"
#: The exact messages of the real server (the PHP client compares them literally).
MESSAGE_IN_PROGRESS = "Export in progress."
MESSAGE_COMPLETED = "Export completed."
#: Declaration the real server puts on report and price answers.
_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
#: A body that starts like a real answer and then breaks off mid-element.
MALFORMED_XML = (
    _DECLARATION + "<response>\n    <code>ACTION_SUCCEEDED</code>\n    <message>Export in pro"
)


def xml_element(name: str, value: str | Iterable[str], indent: int = 1) -> str:
    """Return one indented element with escaped text, or with already built children."""
    pad = "    " * indent
    if isinstance(value, str):
        return f"{pad}<{name}>{escape(value)}</{name}>\n"
    return f"{pad}<{name}>\n{''.join(value)}{pad}</{name}>\n"


def _response(children: Iterable[str]) -> str:
    return _DECLARATION + "<response>\n" + "".join(children) + "</response>\n"


def resource_body(message: str, resource: str) -> str:
    """Return a success envelope with a message and a resource path."""
    return _response(
        [
            xml_element("code", ACTION_SUCCEEDED),
            xml_element("message", message),
            xml_element("resource", resource),
        ]
    )


def error_body(code: str, message: str, required_permission: str | None = None) -> str:
    """Return an error envelope (HTTP 400 in the real API)."""
    children = [xml_element("code", code), xml_element("message", message)]
    if required_permission is not None:
        children.append(xml_element("requiredPermission", required_permission))
    return _response(children)


def periods_body(periods: Sequence[tuple[date, date]]) -> str:
    """Return the periods answer, newest first, endDate before startDate like the fixture."""
    items = [
        xml_element(
            "period",
            [
                xml_element("endDate", format_period_end(end), 3),
                xml_element("startDate", format_period_start(start), 3),
            ],
            2,
        )
        for start, end in periods
    ]
    return _response([xml_element("code", ACTION_SUCCEEDED), xml_element("periods", items)])
