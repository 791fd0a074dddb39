"""What a sandbox handler answers, free of aiohttp: the ``Answer`` value and JSON helpers."""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "JSON_TYPE",
    "TEXT_TYPE",
    "Answer",
    "bearer_token",
    "json_answer",
    "json_object",
    "reason_answer",
]

#: What aiohttp's ``json_response`` writes; kept so the bytes on the wire stay the same.
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
_BEARER = "bearer "


@attrs.frozen
class Answer:
    """An HTTP answer before it is sent: status, body, content type and extra headers."""

    status: int
    body: bytes
    #: The Content-Type header; None sends none (an empty 502, say).
    content_type: str | None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """Say whether this is a success answer."""
        return self.status == 200

    def header_map(self) -> dict[str, str]:
        """Return every header to send, Content-Type first."""
        first = {} if self.content_type is None else {"Content-Type": self.content_type}
        return {**first, **dict(self.headers)}


def json_answer(data: Any, status: int = 200) -> Answer:
    """Return ``data`` as a JSON answer."""
    return Answer(status, json.dumps(data).encode("utf-8"), JSON_TYPE)


def reason_answer(status: int) -> Answer:
    """Return a plain-text answer that says the status's reason phrase ("Too Many Requests")."""
    return Answer(status, (http.HTTPStatus(status).phrase + "\n").encode("ascii"), TEXT_TYPE)


def bearer_token(headers: Mapping[str, str]) -> str:
    """Return the token of an ``Authorization: Bearer`` header, a bare header as is, or ""."""
    header = headers.get("Authorization", "").strip()
    return header[len(_BEARER) :].strip() if header.lower().startswith(_BEARER) else header


def json_object(raw: bytes) -> dict[str, Any] | str:
    """Return a request body as a JSON object (an empty body is ``{}``), or what is wrong."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    return body
