"""Single reports over real HTTP: a token started in one client, finished in another; memory."""

from __future__ import annotations

import json
import zipfile
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from uitpas_async import InvalidArgumentError, PollPolicy, UitpasClient
from uitpas_async.engine.single import ReportToken
from uitpas_async.xml_api.sandbox import Sandbox, SandboxConfig

START, END = date(2024, 1, 1), date(2024, 3, 31)
POLL = PollPolicy(max_interval=0.5, timeout=20.0)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox whose reports take about 0.3 s."""
    async with Sandbox(SandboxConfig(balies=3, generation_median=0.3, seed=5)) as server:
        yield server


async def test_a_report_started_in_one_client_is_finished_from_its_token(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """start_financial_report's JSON token, given to another client, yields the report."""
    key = sandbox.balies[0].key
    async with UitpasClient(sandbox.base_url, sandbox.credentials, poll=POLL) as client:
        token = await client.start_financial_report(START, END, balie_consumer_key=key)
    text = token.to_json()
    assert set(json.loads(text)) == {
        "v",
        "provider",
        "report_id",
        "balie",
        "start",
        "end",
        "created_at",
    }
    assert sandbox.credentials.consumer_secret not in text
    async with UitpasClient(sandbox.base_url, sandbox.credentials, poll=POLL) as other:
        report = await other.resume_financial_report(text, tmp_path)
    with zipfile.ZipFile(report.path) as archive:
        assert archive.testzip() is None
    assert report.report_id == token.report_id


async def test_a_token_of_another_provider_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    """A Finam token handed to the XML client is refused before any request."""
    token = ReportToken("finam", "1", "", START, END, 0.0)
    async with UitpasClient(sandbox.base_url, sandbox.credentials, poll=POLL) as client:
        with pytest.raises(InvalidArgumentError):
            await client.resume_financial_report(token, tmp_path)


async def test_the_client_remembers_generation_times_and_polls_fewer_times(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """After three reports the client's memory places a 9% grid: it records every report."""
    key = sandbox.balies[1].key
    async with UitpasClient(sandbox.base_url, sandbox.credentials, poll=POLL) as client:
        for _ in range(4):
            await client.fetch_financial_report(START, END, tmp_path, balie_consumer_key=key)
        memory = client._generation_memory
        assert len(memory) == 4
        assert all(0.01 < seconds < 10 for seconds in memory.times(key))
