"""Baselines: what a competent user would write instead of uitpas_async, for comparison only.

Each baseline fetches one financial report per balie (create, poll the status
until its ``<resource>`` points at ``/download``, download the zip) and signs
every request with OAuth 1.0a through oauthlib, because the sandbox verifies
every signature. Each honours ``429`` + ``Retry-After``, as a careful user would.

* :class:`SyncSequentialBaseline`: ``requests`` + ``requests-oauthlib``, one balie
  after another, polling every second (the way the PHP client is used).
* :class:`AsyncFixedBaseline`: aiohttp, an ``asyncio.Semaphore`` around each
  request, polling every second.
* :class:`AsyncExponentialBaseline`: aiohttp + tenacity, the first poll after
  0.5 s and each wait twice the previous one (capped at 60 s).
* :class:`PubliqFourAppBaseline` and :class:`PubliqXmlAppBaseline`: what publiq's
  own balie web apps do, a status poll every 1 s (the 4.0 app) or every 2 s (the
  XML-era app), no backoff, no deadline. The first behaves as ``async-fixed``.

All intervals are multiplied by the benchmark's time scale.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import tenacity
from oauthlib import oauth1

__all__ = [
    "BASELINES",
    "AsyncExponentialBaseline",
    "AsyncFixedBaseline",
    "PubliqFourAppBaseline",
    "PubliqXmlAppBaseline",
    "SyncSequentialBaseline",
    "requests_available",
]

REPORT_PATH = "/uitpas/report/financialoverview/organiser"
FORM_TYPE = "application/x-www-form-urlencoded"
#: Seconds (before scaling) between polls of the fixed-interval baselines.
FIXED_POLL_INTERVAL = 1.0
#: Seconds (before scaling) before the first poll of the exponential baseline.
EXPONENTIAL_FIRST_WAIT = 0.5
#: Longest wait (before scaling) between two polls of the exponential baseline.
EXPONENTIAL_MAX_WAIT = 60.0
#: Seconds between polls of publiq's own balie web apps (UiTPAS 4.0, and XML era).
PUBLIQ_FOUR_APP_INTERVAL = 1.0
PUBLIQ_XML_APP_INTERVAL = 2.0
#: Wait (before scaling) after a 429 that carries no usable Retry-After.
DEFAULT_RETRY_AFTER = 1.0


def requests_available() -> bool:
    """Return whether ``requests`` and ``requests-oauthlib`` can be imported."""
    try:
        import requests  # noqa: F401
        import requests_oauthlib  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


def _resource(body: bytes) -> str:
    """Return the ``<resource>`` text of a UiTPAS XML answer."""
    element = ET.fromstring(body).find("resource")  # noqa: S314 (our own sandbox's answer)
    if element is None or not element.text:
        raise RuntimeError("answer without <resource>")
    return element.text.strip()


def _retry_after(value: str | None, time_scale: float) -> float:
    try:
        return max(0.0, float(value)) if value else DEFAULT_RETRY_AFTER * time_scale
    except ValueError:
        return DEFAULT_RETRY_AFTER * time_scale


def _oauth_client(credentials: dict[str, str]) -> oauth1.Client:
    return oauth1.Client(
        credentials["consumer_key"],
        client_secret=credentials["consumer_secret"],
        resource_owner_key=credentials["token"],
        resource_owner_secret=credentials["token_secret"],
        signature_method=oauth1.SIGNATURE_HMAC_SHA1,
        signature_type=oauth1.SIGNATURE_TYPE_AUTH_HEADER,
    )


class SyncSequentialBaseline:
    """``requests`` + ``requests-oauthlib``: one balie after another, polling every second."""

    name = "sync-sequential"

    def __init__(
        self, base_url: str, credentials: dict[str, str], *, time_scale: float, **_: Any
    ) -> None:
        self.base_url = base_url
        self.credentials = credentials
        self.time_scale = time_scale

    def _send(self, session: Any, method: str, url: str, data: dict[str, str] | None) -> Any:
        while True:
            response = session.request(method, url, data=data, timeout=60)
            if response.status_code != 429:
                response.raise_for_status()
                return response
            time.sleep(_retry_after(response.headers.get("Retry-After"), self.time_scale))

    def fetch_one(self, session: Any, balie: str, start: date, end: date, out_dir: Path) -> Path:
        """Create, poll every second, download; return the file."""
        form = {"balieConsumerKey": balie, "startDate": str(start), "endDate": str(end)}
        created = self._send(session, "POST", self.base_url + REPORT_PATH, form)
        resource = _resource(created.content)
        while "/download" not in resource:
            time.sleep(FIXED_POLL_INTERVAL * self.time_scale)
            resource = _resource(self._send(session, "GET", self.base_url + resource, None).content)
        answer = self._send(session, "GET", self.base_url + resource, None)
        path = out_dir / f"{balie}.zip"
        path.write_bytes(answer.content)
        return path

    def run(self, balies: Sequence[str], start: date, end: date, out_dir: Path) -> int:
        """Fetch every balie's report in turn; return how many were downloaded."""
        import requests
        from requests_oauthlib import OAuth1

        creds = self.credentials
        auth = OAuth1(
            creds["consumer_key"],
            client_secret=creds["consumer_secret"],
            resource_owner_key=creds["token"],
            resource_owner_secret=creds["token_secret"],
            signature_type="auth_header",
        )
        done = 0
        with requests.Session() as session:
            session.auth = auth
            for balie in balies:
                self.fetch_one(session, balie, start, end, out_dir)
                done += 1
        return done


class _AsyncBaseline:
    """Shared aiohttp plumbing: sign with oauthlib, bound requests with a semaphore."""

    name = "async"

    def __init__(
        self,
        base_url: str,
        credentials: dict[str, str],
        *,
        time_scale: float,
        concurrency: int,
    ) -> None:
        self.base_url = base_url
        self.time_scale = time_scale
        self._oauth = _oauth_client(credentials)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency

    async def _send(
        self, session: aiohttp.ClientSession, method: str, url: str, form: dict[str, str] | None
    ) -> bytes:
        body = urlencode(form) if form is not None else None
        headers = {"Content-Type": FORM_TYPE} if form is not None else {}
        while True:
            # Signed per attempt: the sandbox refuses a replayed nonce.
            _, signed, _ = self._oauth.sign(url, method, body, headers)
            async with (
                self._semaphore,
                session.request(method, url, data=body, headers=signed) as response,
            ):
                payload = await response.read()
                if response.status != 429:
                    response.raise_for_status()
                    return payload
                wait = _retry_after(response.headers.get("Retry-After"), self.time_scale)
            await asyncio.sleep(wait)

    async def _wait_ready(self, session: aiohttp.ClientSession, resource: str) -> str:
        raise NotImplementedError

    async def fetch_one(
        self, session: aiohttp.ClientSession, balie: str, start: date, end: date, out_dir: Path
    ) -> Path:
        """Create, poll until ready, download; return the file."""
        form = {"balieConsumerKey": balie, "startDate": str(start), "endDate": str(end)}
        resource = _resource(await self._send(session, "POST", self.base_url + REPORT_PATH, form))
        resource = await self._wait_ready(session, resource)
        payload = await self._send(session, "GET", self.base_url + resource, None)
        path = out_dir / f"{balie}.zip"
        await asyncio.to_thread(path.write_bytes, payload)
        return path

    async def run(self, balies: Sequence[str], start: date, end: date, out_dir: Path) -> int:
        """Fetch every balie's report concurrently; return how many were downloaded."""
        connector = aiohttp.TCPConnector(limit=self._concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            paths = await asyncio.gather(
                *(self.fetch_one(session, balie, start, end, out_dir) for balie in balies)
            )
        return len(paths)


class AsyncFixedBaseline(_AsyncBaseline):
    """aiohttp with a semaphore, polling every second."""

    name = "async-fixed"
    #: Seconds (before scaling) between two polls of one report.
    interval = FIXED_POLL_INTERVAL

    async def _wait_ready(self, session: aiohttp.ClientSession, resource: str) -> str:
        # No backoff and no deadline: poll until the report is ready.
        while "/download" not in resource:
            await asyncio.sleep(self.interval * self.time_scale)
            resource = _resource(await self._send(session, "GET", self.base_url + resource, None))
        return resource


class PubliqFourAppBaseline(AsyncFixedBaseline):
    """publiq's UiTPAS 4.0 balie app: a status poll every second, no backoff, no deadline."""

    name = "publiq-4.0-app"
    interval = PUBLIQ_FOUR_APP_INTERVAL


class PubliqXmlAppBaseline(AsyncFixedBaseline):
    """publiq's XML-era balie app: a status poll every 2 seconds, no backoff, no deadline."""

    name = "publiq-xml-app"
    interval = PUBLIQ_XML_APP_INTERVAL


class AsyncExponentialBaseline(_AsyncBaseline):
    """aiohttp with tenacity: first poll after 0.5 s, then waits doubling (1, 2, 4 s ...)."""

    name = "async-exponential"

    async def _wait_ready(self, session: aiohttp.ClientSession, resource: str) -> str:
        status_url = self.base_url + resource

        async def poll() -> str:
            return _resource(await self._send(session, "GET", status_url, None))

        await asyncio.sleep(EXPONENTIAL_FIRST_WAIT * self.time_scale)
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_result(lambda found: "/download" not in found),
            wait=tenacity.wait_exponential(
                multiplier=2 * EXPONENTIAL_FIRST_WAIT * self.time_scale,
                max=EXPONENTIAL_MAX_WAIT * self.time_scale,
            ),
        )
        found: str = await retrying(poll)
        return found


#: Every baseline by name.
BASELINES: dict[str, type[SyncSequentialBaseline] | type[_AsyncBaseline]] = {
    SyncSequentialBaseline.name: SyncSequentialBaseline,
    AsyncFixedBaseline.name: AsyncFixedBaseline,
    AsyncExponentialBaseline.name: AsyncExponentialBaseline,
    PubliqFourAppBaseline.name: PubliqFourAppBaseline,
    PubliqXmlAppBaseline.name: PubliqXmlAppBaseline,
}
