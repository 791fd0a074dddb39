"""A new provider needs only the seam: the toy Ledger provider through the real orchestrator."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from pathlib import Path

from example_provider import LedgerBackend, LedgerServer, StatementRequest
from virtual_time import VirtualClock

from uitpas_async import JobEvent, JobState, Journal, PollPolicy, ReportOrchestrator

MONTH = date(2026, 10, 1)
ACCOUNTS = [f"account-{number:02d}" for number in range(12)]
POLL = PollPolicy(initial_delay=1.0, multiplier=1.5, max_interval=10.0, timeout=600.0)


def _duration(account: str) -> float:
    return 5.0 + 3.0 * int(account.rsplit("-", 1)[1])


def _orchestrator(
    backend: LedgerBackend, out: Path, clock: VirtualClock, **kwargs: object
) -> ReportOrchestrator:
    return ReportOrchestrator(
        backend,
        out,
        journal=out / "ledger.sqlite",
        poll=POLL,
        max_in_flight=4,
        sleep=clock.sleep,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_batch_is_killed_halfway_and_resumes_with_nothing_created_twice(
    tmp_path: Path,
) -> None:
    """A cancelled run resumes from the journal: done jobs stay done, none is created again."""
    clock = VirtualClock()
    server = LedgerServer(clock, _duration)
    requests = [StatementRequest(account, MONTH) for account in ACCOUNTS]
    done: list[JobEvent] = []
    first_run: asyncio.Future[object] | None = None

    def stop_after_four(event: JobEvent) -> None:
        if event.state is JobState.DONE:
            done.append(event)
            if len(done) == 4 and first_run is not None:
                first_run.cancel()

    first = _orchestrator(LedgerBackend(server), tmp_path, clock, on_event=stop_after_four)
    first_run = asyncio.ensure_future(first.run(requests))
    with contextlib.suppress(asyncio.CancelledError):
        await clock.run(first_run)
    assert first_run.cancelled()
    with Journal(tmp_path / "ledger.sqlite") as journal:
        states = [journal.get("ledger", request.job_key) for request in requests]
    assert sum(entry is not None and entry.state is JobState.DONE for entry in states) == 4
    assert any(entry is not None and entry.state is JobState.GENERATING for entry in states)

    second = _orchestrator(LedgerBackend(server), tmp_path, clock)
    results = await clock.run(second.run(requests))

    assert [result.state for result in results] == [JobState.DONE] * len(ACCOUNTS)
    assert all(server.created[request.job_key] == 1 for request in requests)
    for request, result in zip(requests, results, strict=True):
        assert result.report is not None
        assert result.report.path.read_text() == f"statement of {request.account} for 2026-10\n"
    assert len(list(tmp_path.glob("account-*/statement-*.txt"))) == len(ACCOUNTS)


async def test_a_statement_the_server_forgot_is_created_again(tmp_path: Path) -> None:
    """The provider's error leaf tells the engine a report is gone; the job creates it anew."""
    clock = VirtualClock()
    server = LedgerServer(clock, _duration)

    def forget_first_report(event: JobEvent) -> None:
        if event.state is JobState.GENERATING and event.report_id == "1":
            server.forget("1")

    orchestrator = _orchestrator(
        LedgerBackend(server), tmp_path, clock, on_event=forget_first_report
    )
    results = await clock.run(orchestrator.run([StatementRequest(ACCOUNTS[0], MONTH)]))

    assert results[0].ok
    assert results[0].report_id == "2"
    assert server.created[f"{ACCOUNTS[0]}|2026-10"] == 2
