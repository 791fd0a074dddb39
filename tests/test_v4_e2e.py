"""UiTPAS API 4.0 over real HTTP against its sandbox: schemas, faults, tokens, 403, SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from v4_schema import errors, response_pointer, schema_pointer

from uitpas_async.engine.config import Limits, PollPolicy, RetryPolicy, Timeouts
from uitpas_async.engine.errors import (
    DownloadError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
    TransportError,
    UitpasError,
)
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.orchestrator import ReportOrchestrator
from uitpas_async.v4 import ClientCredentials, OrganizerReportRequest, UitpasV4Client
from uitpas_async.v4.errors import V4AccessDeniedError, V4ReportFailedError
from uitpas_async.v4.sandbox import FAULT_KINDS, V4FaultRule, V4Sandbox, V4SandboxConfig

POLL = PollPolicy(initial_delay=0.05, multiplier=1.5, max_interval=0.3, timeout=60.0)
REPORTS = "/organizers/{organizerId}/financial-reports"


def _client(sandbox: V4Sandbox, **kwargs: Any) -> UitpasV4Client:
    config = sandbox.config
    return UitpasV4Client(
        ClientCredentials(config.client_id, config.client_secret),
        base_url=sandbox.base_url,
        token_url=sandbox.root_url,
        poll=POLL,
        **kwargs,
    )


async def _get(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)


async def test_sandbox_answers_validate_against_the_openapi_schemas() -> None:
    """Every JSON answer of the sandbox, problems included, fits the vendored schemas."""
    config = V4SandboxConfig(organizers=2, generation_median=0.0)
    async with V4Sandbox(config) as sandbox, aiohttp.ClientSession() as session:
        form = {"grant_type": "client_credentials", "client_id": config.client_id}
        form["client_secret"] = config.client_secret
        async with session.post(sandbox.token_url, data=form) as response:
            token_doc = await response.json()
        assert set(token_doc) == {"access_token", "expires_in", "token_type"}
        token = token_doc["access_token"]
        base = sandbox.base_url + "/organizers/org-0001/financial-reports"
        json_ = "application/json"
        status, doc = await _get(session, sandbox.base_url + "/permissions", token)
        assert errors(doc, response_pointer("/permissions", "get", "200", json_)) == []
        status, doc = await _get(session, base + "/periods", token)
        assert errors(doc, response_pointer(REPORTS + "/periods", "get", "200", json_)) == []
        async with session.post(
            base,
            json={"startDate": "2024-01-01", "endDate": "2024-03-31"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            created = await response.json()
        assert errors(created, response_pointer(REPORTS, "post", "200", json_)) == []
        report = f"{base}/{created['id']}"
        status, doc = await _get(session, report, token)
        assert errors(doc, response_pointer(REPORTS + "/{reportId}", "get", "200", json_)) == []
        status, doc = await _get(session, base, token)
        assert errors(doc, response_pointer(REPORTS, "get", "200", json_)) == []
        assert doc[0]["period"] == {"startDate": "2024-01-01", "endDate": "2024-03-31"}
        status, doc = await _get(session, report + "/download-link", token)
        link_pointer = response_pointer(REPORTS + "/{reportId}/download-link", "get", "200", json_)
        assert errors(doc, link_pointer) == []
        async with session.get(doc["downloadLink"]) as response:
            assert response.status == 200
            assert (await response.read())[:2] == b"PK"
        problems = [
            (sandbox.base_url + "/organizers/nobody/financial-reports", token, 404),
            (sandbox.base_url + "/organizers/org-noreports/financial-reports", token, 403),
            (base + "/1", token, 404),
            (base, "wrong-token", 401),
        ]
        for url, used, expected in problems:
            status, doc = await _get(session, url, used)
            assert status == expected
            assert errors(doc, schema_pointer("Error")) == [], doc


async def test_three_hundred_organizers_with_every_fault_kind(tmp_path: Path) -> None:
    """300 organizers under every fault kind: each ends intact or failed with a fitting error."""
    # Every kind bites for sure, once, early; then about one request in eight gets a
    # fault (a revoked token hits every job in flight).
    rules = [
        V4FaultRule(kind, count=1, delay=1.0 if kind == "slow" else 0.0)
        for kind in FAULT_KINDS
        if kind != "revoke_token"
    ]
    rules += [
        V4FaultRule(
            kind,
            probability=0.01,
            delay=1.0 if kind == "slow" else 0.0,
            count=1 if kind == "revoke_token" else None,
        )
        for kind in FAULT_KINDS
    ]
    rules.append(V4FaultRule("drop", endpoint="create", probability=0.05, after_effect=True))
    rules.append(
        V4FaultRule("server_error", endpoint="create", probability=0.05, after_effect=True)
    )
    config = V4SandboxConfig(
        organizers=300, generation_median=0.2, generation_sigma=0.5, seed=3, faults=tuple(rules)
    )
    async with V4Sandbox(config) as sandbox:
        async with _client(
            sandbox,
            timeouts=Timeouts(request=0.5, download=5.0),
            limits=Limits(max_concurrent_requests=40),
            retry=RetryPolicy(attempts=4, initial_backoff=0.05, max_backoff=0.2),
        ) as client:
            requests = [OrganizerReportRequest(o, period="latest") for o in sandbox.organizer_ids()]
            orchestrator = ReportOrchestrator(client, tmp_path, max_in_flight=100)
            results = await orchestrator.run(requests)
        stats = sandbox.stats
    assert len(results) == 300
    done = [r for r in results if r.ok]
    assert len(done) > 250, Counter(type(r.error).__name__ for r in results if not r.ok)
    for result in done:
        assert result.report is not None
        with zipfile.ZipFile(result.report.path) as archive:
            assert archive.testzip() is None
    allowed = (
        V4ReportFailedError,
        TransportError,
        ServerError,
        RateLimitedError,
        MalformedResponseError,
        DownloadError,
    )
    for result in results:
        if not result.ok:
            assert isinstance(result.error, allowed), repr(result.error)
    assert all(stats.faults[kind] > 0 for kind in FAULT_KINDS), stats.faults
    # Lost creates were adopted: a period has two reports only where the server forgot one.
    assert stats.duplicate_creates <= stats.faults["forget_report"]
    assert orchestrator.adopted_reports > 0


async def test_token_expiry_mid_batch_means_exactly_one_renewal(tmp_path: Path) -> None:
    """Tokens expired in the middle of a batch: one renewal serves every job, none fails."""
    config = V4SandboxConfig(organizers=40, generation_median=0.3, seed=5)
    async with V4Sandbox(config) as sandbox, _client(sandbox) as client:
        expired = False

        def on_event(event: Any) -> None:
            nonlocal expired
            if not expired and event.state is JobState.GENERATING and event.index >= 20:
                sandbox.expire_tokens()
                expired = True

        requests = [OrganizerReportRequest(o, period="latest") for o in sandbox.organizer_ids()]
        results = await ReportOrchestrator(client, tmp_path, on_event=on_event).run(requests)
        assert expired
        assert all(r.ok for r in results)
        assert sandbox.stats.tokens_issued == 2
        assert client.token_renewals == 2
        assert sandbox.stats.auth_failures >= 1


async def test_a_403_for_one_organizer_fails_only_that_one(tmp_path: Path) -> None:
    """An organizer without ORGANIZERS_REPORTS fails with V4AccessDeniedError; the rest go on."""
    config = V4SandboxConfig(organizers=3, generation_median=0.1)
    async with V4Sandbox(config) as sandbox, _client(sandbox) as client:
        organizers = [*sandbox.organizer_ids(), "org-noreports"]
        assert [o.id for o in await client.get_report_organizers()] == sandbox.organizer_ids()
        requests = [OrganizerReportRequest(o, period="latest") for o in organizers]
        results = await ReportOrchestrator(client, tmp_path).run(requests)
    assert [r.ok for r in results] == [True, True, True, False]
    error = results[3].error
    assert isinstance(error, V4AccessDeniedError)
    assert error.status == 403
    assert error.required_permission == "ORGANIZERS_REPORTS"


async def test_no_secret_or_link_in_errors_or_reprs(tmp_path: Path) -> None:
    """The secret, the token and the download link never show in a repr or an error."""
    config = V4SandboxConfig(organizers=1, generation_median=0.0)
    async with V4Sandbox(config) as sandbox, _client(sandbox) as client:
        report = await client.create_financial_report("org-0001", *_q1())
        await client.wait_for_financial_report("org-0001", report.id)
        link = await client.get_financial_report_download_link("org-0001", report.id)
        token = next(iter(sandbox.pipeline.tokens))
        with pytest.raises(UitpasError) as caught:
            await client.get_financial_report("org-0001", 1)
        texts = [repr(client), repr(link), str(link), str(caught.value), repr(caught.value)]
    for text in texts:
        assert config.client_secret not in text
        assert token not in text
        assert link.url not in text


def _q1() -> tuple[Any, Any]:
    from datetime import date

    return date(2024, 1, 1), date(2024, 3, 31)


def _journal_done(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(journal) as db:
            return int(db.execute("SELECT count(*) FROM jobs WHERE state = 'done'").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_sigkill_many_times_then_resume_makes_one_report_per_period(tmp_path: Path) -> None:
    """Kill the real CLI three times mid-batch (creates lose answers too); one report per period."""
    faults = (V4FaultRule("drop", endpoint="create", probability=0.2, after_effect=True),)
    config = V4SandboxConfig(
        organizers=40, generation_median=0.5, generation_sigma=0.4, seed=11, faults=faults
    )
    async with V4Sandbox(config) as sandbox:
        out = tmp_path / "out"
        env = {
            **os.environ,
            "UITPAS_BASE_URL": sandbox.base_url,
            "UITPAS_TOKEN_URL": sandbox.token_url,
            "UITPAS_CLIENT_ID": config.client_id,
            "UITPAS_CLIENT_SECRET": config.client_secret,
        }
        command = [
            sys.executable,
            "-m",
            "uitpas_async.cli.main",
            "reports",
            "fetch",
            "--api",
            "4",
            "--period",
            "2024-Q1",
            "--out",
            str(out),
            "--max-in-flight",
            "10",
        ]
        journal = out / "journal.sqlite"
        for target in (5, 15, 25):
            process = await asyncio.create_subprocess_exec(
                *command,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for _ in range(600):
                if _journal_done(journal) >= target or process.returncode is not None:
                    break
                await asyncio.sleep(0.02)
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
            await process.wait()
        rerun = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stdout, stderr = await rerun.communicate()
        assert rerun.returncode == 0, (stdout + stderr).decode()[-2000:]
        created = sandbox.created
        stats = sandbox.stats
    assert len(created) == 40
    assert set(created.values()) == {1}, created
    assert stats.duplicate_creates == 0
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 40
    assert all(line["state"] == "done" for line in lines)
