"""The orchestrator's SIGKILL resume test, repeated for the Finam provider through its CLI."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from uitpas_async.finam.sandbox import FinamSandbox, FinamSandboxConfig


def _done_jobs(journal: Path) -> int:
    if not journal.exists():
        return 0
    db = sqlite3.connect(journal)
    try:
        return int(db.execute("SELECT count(*) FROM jobs WHERE state = 'done'").fetchone()[0])
    except sqlite3.OperationalError:  # the run has not created its tables yet
        return 0
    finally:
        db.close()


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
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        journal = out / "journal.sqlite"
        for _ in range(600):
            if _done_jobs(journal) >= 8:
                break
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        done_before = _done_jobs(journal)
        assert 0 < done_before < 30

        db = sqlite3.connect(journal)
        known_ids = {rid for (rid,) in db.execute("SELECT report_id FROM jobs") if rid}
        in_creation = db.execute("SELECT count(*) FROM jobs WHERE state = 'creating'")
        possibly_lost = in_creation.fetchone()[0]
        db.close()
        created_before = sandbox.stats.reports_created

        rerun = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stdout, stderr = await rerun.communicate()
        assert rerun.returncode == 0, (stdout + stderr).decode()
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
