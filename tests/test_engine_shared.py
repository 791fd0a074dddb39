"""The engine helpers every provider shares: request checks, credentials, refusals."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from uitpas_async.engine.backend import expect_request
from uitpas_async.engine.config import credentials_from_env
from uitpas_async.engine.errors import (
    ConfigurationError,
    DownloadError,
    InvalidArgumentError,
    RateLimitedError,
    ServerError,
    UnknownReportError,
)
from uitpas_async.engine.periods import period_job_key, validate_period_request
from uitpas_async.engine.retry_after import raise_for_overload
from uitpas_async.engine.storage import Refusal, store_or_refuse
from uitpas_async.finam import AccountReportRequest
from uitpas_async.xml_api.backend import ReportRequest

Q1 = (date(2024, 1, 1), date(2024, 3, 31))


def test_expect_request_returns_its_own_and_refuses_another_providers() -> None:
    """A backend's own request passes; another provider's is refused by type and provider."""
    own = ReportRequest("KEY", *Q1)
    assert expect_request(own, ReportRequest, "UiTPAS") is own
    other = AccountReportRequest("123", *Q1)
    with pytest.raises(InvalidArgumentError, match="the UiTPAS backend takes ReportRequest, not"):
        expect_request(other, ReportRequest, "UiTPAS")


@pytest.mark.parametrize(
    ("start", "end", "period", "message"),
    [
        (Q1[0], Q1[1], "latest", "not both"),
        (None, None, "previous", "unknown period"),
        (Q1[0], None, None, "needs start and end"),
        (Q1[1], Q1[0], None, "before start"),
    ],
)
def test_validate_period_request_refuses_each_bad_form(
    start: date | None, end: date | None, period: str | None, message: str
) -> None:
    """Both forms, an unknown period, a missing end or dates out of order are refused."""
    with pytest.raises(InvalidArgumentError, match=message):
        validate_period_request(start, end, period)


def test_period_job_key_names_dates_or_latest() -> None:
    """The key is OWNER|START|END for dates and OWNER|latest for the latest period."""
    validate_period_request(None, None, "latest")
    assert period_job_key("org", None, None, "latest") == "org|latest"
    assert period_job_key("org", *Q1, None) == "org|2024-01-01|2024-03-31"


def test_credentials_from_env_names_the_missing_and_keeps_blank_unless_stripped() -> None:
    """Missing names are listed without values; ``strip`` treats blank space as missing."""
    with pytest.raises(ConfigurationError, match=r"set A and C \(or use --sandbox\)"):
        credentials_from_env(("A", "B", "C"), {"B": "secret-b"})
    assert credentials_from_env(("A",), {"A": " x "}) == (" x ",)
    assert credentials_from_env(("A",), {"A": " x "}, strip=True) == ("x",)
    with pytest.raises(ConfigurationError, match="set A "):
        credentials_from_env(("A",), {"A": "  "}, strip=True)


class _Answer:
    def __init__(self, status: int, body: bytes = b"", content_type: str = "") -> None:
        self.status = status
        self.headers = {"Content-Type": content_type}
        self.body = body

    async def read(self, limit: int) -> bytes:
        return self.body[: limit + 1]


def _refusing(status: int, headers: Any, body: bytes) -> None:
    if body == b"gone":
        raise UnknownReportError("GONE", "the report is gone", status=status)


async def test_store_or_refuse_stores_a_200_and_checks_a_refusal() -> None:
    """A 200 goes to ``store``; a refusal raises the provider's error, or DownloadError."""
    stored: list[object] = []

    async def store(response: Any) -> Any:
        stored.append(response)
        return "stored"

    refusal = Refusal(_refusing, 100)
    ok = _Answer(200)
    assert await store_or_refuse(ok, store, endpoint="dl", refusal=refusal) == "stored"  # type: ignore[arg-type]
    assert stored == [ok]
    with pytest.raises(UnknownReportError):
        await store_or_refuse(_Answer(404, b"gone"), store, endpoint="dl", refusal=refusal)  # type: ignore[arg-type]
    with pytest.raises(DownloadError, match="dl: HTTP 404 instead of the report"):
        await store_or_refuse(_Answer(404, b"?"), store, endpoint="dl", refusal=refusal)  # type: ignore[arg-type]
    xml = Refusal(_refusing, 100, lambda r: "xml" in r.headers["Content-Type"], ": XML")
    with pytest.raises(DownloadError, match="dl: HTTP 200: XML"):
        await store_or_refuse(_Answer(200, b"<x/>", "text/xml"), store, endpoint="dl", refusal=xml)  # type: ignore[arg-type]
    assert stored == [ok]


def test_raise_for_overload_raises_only_for_429_and_5xx_with_retry_after() -> None:
    """429 and 5xx raise the trunk's errors with Retry-After; other statuses pass."""
    headers = {"Retry-After": "7"}
    with pytest.raises(RateLimitedError) as limited:
        raise_for_overload(429, headers, where="x: HTTP 429", describe=lambda: "body")
    assert limited.value.retry_after == 7.0
    with pytest.raises(ServerError, match="x: HTTP 503 with body") as server:
        raise_for_overload(503, headers, where="x: HTTP 503", describe=lambda: "body")
    assert server.value.retry_after == 7.0
    for status in (200, 404):
        raise_for_overload(status, headers, where="x", describe=lambda: pytest.fail("called"))
