"""The sandbox accepts the exact request shapes of culturefeed-php, publiq's own PHP client."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlencode

import aiohttp
import pytest
from oauthlib.oauth1 import SIGNATURE_TYPE_AUTH_HEADER, Client

from uitpas_async import UitpasClient
from uitpas_async.xml_api.sandbox import Sandbox, SandboxConfig

#: The periods endpoint below the base URL.
PERIODS = "/uitpas/report/financialoverview/organiser/periods"


def _signed(sandbox: Sandbox, method: str, url: str, body: str | None = None) -> dict[str, str]:
    """Return oauthlib's OAuth parameters for a request, signed with the sandbox's credentials."""
    credentials = sandbox.credentials
    client = Client(
        credentials.consumer_key,
        client_secret=credentials.consumer_secret,
        resource_owner_key=credentials.token,
        resource_owner_secret=credentials.token_secret,
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    _, signed, _ = client.sign(url, http_method=method, body=body, headers=headers)
    header = signed["Authorization"][len("OAuth ") :]
    pairs = re.findall(r'(oauth_[a-z_]+)="([^"]*)"', header)
    return {key: unquote(value) for key, value in pairs}


def _php_header(params: dict[str, str]) -> str:
    """Format as culturefeed-php does: comma-separated without spaces, no realm."""
    return "OAuth " + ",".join(f'{k}="{quote(v, safe="~")}"' for k, v in params.items())


async def _get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        return answer.status, await answer.text()


async def test_get_with_oauth_in_query_and_header_is_accepted() -> None:
    """periods with every oauth_* parameter in the query and the header verifies."""
    async with Sandbox(SandboxConfig(balies=1)) as sandbox:
        key = sandbox.balies[0].key
        url = f"{sandbox.base_url}{PERIODS}?balieConsumerKey={key}"
        params = _signed(sandbox, "GET", url)
        status, text = await _get(
            url + "&" + urlencode(sorted(params.items())),
            {"Authorization": _php_header(params), "Accept": "application/xml"},
        )
    assert status == 200, text
    assert "<periods" in text or "period" in text


async def test_query_copy_that_differs_is_refused() -> None:
    """A query copy whose value differs from the header's is refused as parameter_rejected."""
    async with Sandbox(SandboxConfig(balies=1)) as sandbox:
        key = sandbox.balies[0].key
        url = f"{sandbox.base_url}{PERIODS}?balieConsumerKey={key}"
        params = _signed(sandbox, "GET", url)
        copies = dict(params, oauth_nonce="another-nonce-0000")
        status, text = await _get(
            url + "&" + urlencode(sorted(copies.items())),
            {"Authorization": _php_header(params)},
        )
    assert status == 401
    assert "oauth_problem=parameter_rejected" in text


async def test_unsigned_request_names_the_absent_parameter_problem() -> None:
    """A request without OAuth parameters is refused as parameter_absent."""
    async with Sandbox(SandboxConfig(balies=1)) as sandbox:
        url = f"{sandbox.base_url}{PERIODS}?balieConsumerKey=K"
        status, text = await _get(url, {})
    assert status == 401
    assert "oauth_problem=parameter_absent" in text


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-01T00:00:00+01:00", "2024-03-31T23:59:59+02:00"),
        ("2024-01-01", "2024-03-31"),
        ("2023-12-31T23:00Z", "2024-03-31T12:00:00.5Z"),
        ("2024-01-01T00:00:00.123+01:00", "2024-03-31T00:00+01:00"),
    ],
)
async def test_create_takes_w3c_date_times(start: str, end: str) -> None:
    """A create with W3C date-times is accepted; the answer names organiser/ID/status."""
    async with Sandbox(SandboxConfig(balies=1, generation_median=0.01)) as sandbox:
        key = sandbox.balies[0].key
        url = f"{sandbox.base_url}/uitpas/report/financialoverview/organiser"
        body = urlencode({"startDate": start, "endDate": end, "balieConsumerKey": key})
        params = _signed(sandbox, "POST", url, body)
        headers = {
            "Authorization": _php_header(params),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            status, text = answer.status, await answer.text()
        report_ids = list(sandbox.reports)
    assert status == 200, text
    [match] = re.findall(r"organiser/([^/]+)/status", text)
    assert match in report_ids


async def test_client_sends_accept_xml_on_get_calls() -> None:
    """Our client sends Accept: application/xml on periods, as culturefeed-php does."""
    seen: list[str] = []

    async def trace(
        session: object, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        seen.append(params.headers.get("Accept", ""))

    tracing = aiohttp.TraceConfig()
    tracing.on_request_start.append(trace)
    async with (
        Sandbox(SandboxConfig(balies=1)) as sandbox,
        aiohttp.ClientSession(trace_configs=[tracing]) as session,
        UitpasClient(sandbox.base_url, sandbox.credentials, session=session) as client,
    ):
        await client.get_financial_report_periods(balie_consumer_key=sandbox.balies[0].key)
    assert seen == ["application/xml"]
