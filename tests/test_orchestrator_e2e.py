"""The orchestrator over real HTTP against the sandbox: faults, cancellation, SIGKILL and resume."""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from helpers import (
    END,
    FAST_RETRY,
    JOB_RETRY,
    START,
    journal_creates,
    journal_states,
    kill_when_done,
    rerun,
)

from uitpas_async import (
    Limits,
    PollPolicy,
    ReportOrchestrator,
    ReportRequest,
    UitpasClient,
)
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.journal import Journal
from uitpas_async.engine.storage import TEMPORARY_PREFIX
from uitpas_async.xml_api.sandbox import FAULT_KINDS, FaultRule, Sandbox, SandboxConfig

FAST_POLL = PollPolicy(initial_delay=0.02, multiplier=1.5, max_interval=0.2, timeout=60.0)

#: Endpoints where each fault kind bites.
FAULT_ENDPOINTS = {
    "server_error": "status",
    "bad_gateway": "status",
    "unavailable": "status",
    "rate_limited": "create",
    "drop": "status",
    "truncate": "download",
    "not_zip": "download",
    "slow": "download",
    "fail_generation": "create",
    "forget_report": "status",
    "malformed_xml": "status",
}
#: Every fault kind the sandbox knows: a few of each for sure (the first matching
#: rule wins), then a random sprinkling over the whole batch.
ALL_FAULTS = (
    *(
        FaultRule(kind, endpoint=endpoint, count=2, delay=0.01)
        for kind, endpoint in FAULT_ENDPOINTS.items()
    ),
    FaultRule("server_error", endpoint="status", probability=0.02),
    FaultRule("bad_gateway", endpoint="status", probability=0.03),
    FaultRule("unavailable", endpoint="*", probability=0.02, delay=0.01),
    FaultRule("rate_limited", endpoint="*", probability=0.02),
    FaultRule("drop", endpoint="status", probability=0.02),
    FaultRule("drop", endpoint="create", probability=0.02, after_effect=True),
    FaultRule("truncate", endpoint="download", probability=0.05),
    FaultRule("not_zip", endpoint="download", probability=0.03),
    FaultRule("malformed_xml", endpoint="status", probability=0.02),
    FaultRule("fail_generation", endpoint="create", probability=0.03),
    FaultRule("forget_report", endpoint="status", probability=0.01),
    FaultRule("slow", endpoint="*", probability=0.02, delay=0.02),
)


def _sheet_text(path: Path) -> str:
    """Return the text of every worksheet in a report zip."""
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        texts = []
        for member in archive.namelist():
            with zipfile.ZipFile(archive.open(member)) as workbook:
                texts += [
                    workbook.read(name).decode()
                    for name in workbook.namelist()
                    if name.startswith("xl/worksheets/")
                ]
        return "\n".join(texts)


async def test_300_balies_with_every_fault(tmp_path: Path) -> None:
    """Every report ends downloaded intact for its balie and period, or failed with its code."""
    config = SandboxConfig(
        balies=300,
        generation_median=5.0,
        generation_sigma=0.5,
        time_scale=0.01,
        seed=11,
        faults=ALL_FAULTS,
    )
    async with Sandbox(config) as sandbox:
        names = {balie.key: balie.name for balie in sandbox.balies}
        requests = [ReportRequest(key, START, END) for key in names]
        client = UitpasClient(
            sandbox.base_url,
            sandbox.credentials,
            retry=FAST_RETRY,
            poll=FAST_POLL,
            limits=Limits(max_concurrent_requests=30),
        )
        async with client:
            orchestrator = ReportOrchestrator(
                client, tmp_path / "out", max_in_flight=60, job_retry=JOB_RETRY
            )
            results = await orchestrator.run(requests)
        stats = sandbox.stats
        reports = sandbox.reports

    assert [result.request for result in results] == requests
    assert set(FAULT_ENDPOINTS) == set(FAULT_KINDS)
    assert all(stats.faults[kind] >= 2 for kind in FAULT_KINDS), stats.faults
    failed = [result for result in results if not result.ok]
    for result in failed:
        assert result.state is JobState.FAILED
        assert result.error is not None
        if result.error.code == "ACTION_FAILED":
            assert reports[result.report_id or ""].failed
    assert any(r.error is not None and r.error.code == "ACTION_FAILED" for r in failed)
    assert len(failed) < 40
    for result in results:
        if not result.ok:
            continue
        report = result.report
        assert report is not None
        assert reports[report.report_id].balie_key == result.request.balie_consumer_key
        text = _sheet_text(report.path)
        assert escape(names[result.request.balie_consumer_key].strip()) in text
    assert not list((tmp_path / "out").glob(f"*/{TEMPORARY_PREFIX}*"))


async def test_cancelling_run_stops_quickly_and_resumes(tmp_path: Path) -> None:
    """Cancelling run() leaves no partial file and a journal that resumes without re-creating."""
    config = SandboxConfig(balies=30, generation_median=0.5, generation_sigma=0.3, seed=5)
    async with Sandbox(config) as sandbox:
        requests = [ReportRequest(balie.key, START, END) for balie in sandbox.balies]
        async with UitpasClient(
            sandbox.base_url, sandbox.credentials, retry=FAST_RETRY, poll=FAST_POLL
        ) as client:
            generating = asyncio.Event()
            seen = collections.Counter()

            def on_event(event: object) -> None:
                seen[getattr(event, "state", None)] += 1
                if seen[JobState.GENERATING] >= 10:
                    generating.set()

            orchestrator = ReportOrchestrator(
                client, tmp_path / "out", max_in_flight=15, on_event=on_event
            )
            task = asyncio.create_task(orchestrator.run(requests))
            await asyncio.wait_for(generating.wait(), 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            created_before = sandbox.stats.reports_created
            with Journal(tmp_path / "out" / "journal.sqlite") as journal:
                entries = [journal.get("uitpas", r.job_key) for r in requests]
            known = [e for e in entries if e is not None and e.report_id]
            assert known
            assert not list((tmp_path / "out").glob(f"*/{TEMPORARY_PREFIX}*"))

            results = await ReportOrchestrator(client, tmp_path / "out").run(requests)
        assert all(result.ok for result in results)
        for entry in known:
            assert sandbox.reports[entry.report_id or ""].balie_key == entry.job_key.split("|")[0]
        # Known report ids were polled, not created again.
        assert sandbox.stats.reports_created == created_before + (len(requests) - len(known))
        assert sandbox.stats.duplicate_creates == 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_sigkill_halfway_then_resume(tmp_path: Path) -> None:
    """Kill a real CLI run with SIGKILL halfway; the rerun creates no known report again."""
    config = SandboxConfig(balies=40, generation_median=0.6, generation_sigma=0.4, seed=9)
    async with Sandbox(config) as sandbox:
        balies_file = tmp_path / "balies.csv"
        balies_file.write_text(
            "key,name\n" + "".join(f"{b.key},balie {i}\n" for i, b in enumerate(sandbox.balies))
        )
        out = tmp_path / "out"
        credentials = sandbox.credentials
        env = {
            **os.environ,
            "UITPAS_BASE_URL": sandbox.base_url,
            "UITPAS_CONSUMER_KEY": credentials.consumer_key,
            "UITPAS_CONSUMER_SECRET": credentials.consumer_secret,
            "UITPAS_TOKEN": credentials.token,
            "UITPAS_TOKEN_SECRET": credentials.token_secret,
        }
        command = [
            sys.executable,
            "-m",
            "uitpas_async.cli.main",
            "reports",
            "fetch",
            "--balies",
            str(balies_file),
            "--period",
            "2024-Q1",
            "--out",
            str(out),
            "--max-in-flight",
            "10",
        ]
        journal = out / "journal.sqlite"
        await kill_when_done(command, env, journal, 10)
        states = journal_states(journal)
        assert 0 < states["done"] < 40, states

        known_ids, possibly_lost = journal_creates(journal)
        created_before = sandbox.stats.reports_created

        await rerun(command, env)

        by_request = collections.Counter(
            (report.balie_key, report.start, report.end) for report in sandbox.reports.values()
        )
        duplicates = sandbox.stats.duplicate_creates
        new_creates = sandbox.stats.reports_created - created_before

    # Reports whose id the journal held were polled, never created again: the only
    # duplicates possible are creates the killed run had in flight, unrecorded.
    assert duplicates <= possibly_lost
    assert new_creates == 40 - len(known_ids)
    assert sum(by_request.values()) == 40 + duplicates
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 40
    assert all('"state": "done"' in line for line in lines)


async def test_latest_follows_the_calendar_across_runs(tmp_path: Path) -> None:
    """A quarterly rerun with period="latest" and the same journal fetches the new quarter."""
    now = [datetime(2026, 11, 23, 12, tzinfo=timezone.utc).timestamp()]
    # The sandbox's calendar moves on; OAuth timestamps are checked against it too,
    # so the window is opened wide for this test.
    config = SandboxConfig(balies=2, generation_median=0.05, timestamp_window=10**9)
    async with Sandbox(config, wall_clock=lambda: now[0]) as sandbox:
        requests = [ReportRequest(b.key, period="latest") for b in sandbox.balies]
        async with UitpasClient(
            sandbox.base_url, sandbox.credentials, retry=FAST_RETRY, poll=FAST_POLL
        ) as client:
            first = await ReportOrchestrator(client, tmp_path).run(requests)
            now[0] = datetime(2027, 2, 10, 12, tzinfo=timezone.utc).timestamp()
            second = await ReportOrchestrator(client, tmp_path).run(requests)
        created = sandbox.stats.reports_created
    assert [(r.start, r.end) for r in first] == [(date(2026, 7, 1), date(2026, 9, 30))] * 2
    assert [(r.start, r.end) for r in second] == [(date(2026, 10, 1), date(2026, 12, 31))] * 2
    assert all(result.ok for result in first + second)
    assert created == 4
    assert [result.request for result in second] == requests
