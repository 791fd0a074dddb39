"""The orchestrator's SIGKILL resume test, repeated for the Finam provider through its CLI."""

from __future__ import annotations

import collections
import os
import sys
from pathlib import Path

import pytest
from helpers import journal_creates, journal_states, kill_when_done, rerun

from uitpas_async.finam.sandbox import FinamSandbox, FinamSandboxConfig


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_finam_sigkill_halfway_then_resume(tmp_path: Path) -> None:
    """Kill `finam reports fetch` with SIGKILL halfway; the rerun creates no known report again."""
    config = FinamSandboxConfig(accounts=30, generation_median=0.6, generation_sigma=0.4, seed=4)
    async with FinamSandbox(config) as sandbox:
        out = tmp_path / "out"
        env = {**os.environ, "FINAM_SECRET": sandbox.secret, "FINAM_BASE_URL": sandbox.base_url}
        accounts = [arg for account in sandbox.accounts for arg in ("--account", account)]
        command = [
            sys.executable, "-m", "uitpas_async.cli.main", "finam", "reports", "fetch",
            *accounts, "--period", "2024-Q1", "--out", str(out), "--max-in-flight", "8",
        ]  # fmt: skip
        journal = out / "journal.sqlite"
        await kill_when_done(command, env, journal, 8)
        done_before = journal_states(journal)["done"]
        assert 0 < done_before < 30

        known_ids, possibly_lost = journal_creates(journal)
        created_before = sandbox.stats.reports_created

        await rerun(command, env)
        new_creates = sandbox.stats.reports_created - created_before
        duplicates = sandbox.stats.duplicate_creates
        per_account = collections.Counter(r.account_id for r in sandbox.reports.values())

    # Known report ids were polled, not created again; only creates the killed run
    # had in flight, unrecorded, can have started a second report.
    assert new_creates == 30 - len(known_ids)
    assert duplicates <= possibly_lost
    assert sum(per_account.values()) == 30 + duplicates
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 30
    assert all('"state": "done"' in line for line in lines)
