"""The sandbox's authorize page driven in a real headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from uitpas_async import UitpasClient
from uitpas_async.xml_api.credential_store import CredentialStore, StoredLogin, resolve_credentials
from uitpas_async.xml_api.login import login
from uitpas_async.xml_api.models import Consumer
from uitpas_async.xml_api.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxConfig

#: Where Debian's chromium package puts the browser; Playwright's own download is not used.
CHROMIUM = Path("/usr/bin/chromium")
#: Without the background-networking switches Chromium dials out and a closed network refuses it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

async_api: Any = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install '.[test]')"
)
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and shutil.which(str(CHROMIUM))),
    reason=f"{CHROMIUM} is absent (apt-get install chromium)",
)


async def test_login_through_the_authorize_page_in_chromium(tmp_path: Path) -> None:
    """Chromium clicks Allow; the saved access token then creates and downloads a report."""
    consumer = Consumer(SANDBOX_CREDENTIALS.consumer_key, SANDBOX_CREDENTIALS.consumer_secret)
    pages: list[str] = []
    async with (
        Sandbox(SandboxConfig(balies=2, generation_median=0.01)) as sandbox,
        async_api.async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:

            async def drive(url: str) -> bool:
                page = await browser.new_page()
                await page.goto(url)
                pages.append(await page.inner_text("h1"))
                await page.click("#allow")
                await page.wait_for_selector("text=Login complete")
                pages.append(await page.inner_text("h1"))
                return True

            access = await login(sandbox.base_url, consumer, open_browser=drive, timeout=60)
        finally:
            await browser.close()

        store = CredentialStore(tmp_path / "config")
        store.save(
            StoredLogin(
                sandbox.base_url,
                consumer.credentials(access.token, access.secret),
                access.user_id,
                datetime.now(timezone.utc),
            )
        )
        resolved = resolve_credentials(sandbox.base_url, environ={}, store=store)
        assert resolved.source == "stored"
        async with UitpasClient(sandbox.base_url, resolved.credentials) as client:
            report = await client.fetch_financial_report(
                date(2024, 1, 1),
                date(2024, 3, 31),
                tmp_path / "reports",
                balie_consumer_key=sandbox.balies[0].key,
            )
    assert pages == ["Authorize application", "Login complete"]
    assert report.size > 0
    assert access.user_id == sandbox.config.user_id
