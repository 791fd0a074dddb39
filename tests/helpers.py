"""What the end-to-end tests of every provider share: a quarter, fast policies, a killed CLI run."""

from __future__ import annotations

import asyncio
import collections
import signal
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

from uitpas_async import RetryPolicy

#: The quarter most tests fetch.
START, END = date(2024, 1, 1), date(2024, 3, 31)
#: Retries of a call, quick enough for a test to sit through many.
FAST_RETRY = RetryPolicy(attempts=5, initial_backoff=0.01, max_backoff=0.05, max_retry_after=0.05)
#: Retries of a whole job by the orchestrator.
JOB_RETRY = RetryPolicy(attempts=4, initial_backoff=0.01, max_backoff=0.05)
#: Polls of the journal while a CLI run is waited for, and the pause between them.
KILL_POLLS = 600
KILL_POLL_SECONDS = 0.05


def journal_states(path: Path) -> collections.Counter[str]:
    """Count a journal's jobs by state; nothing for a journal not (fully) created yet."""
    if not path.exists():
        return collections.Counter()
    try:
        with sqlite3.connect(path) as db:
            return collections.Counter(state for (state,) in db.execute("SELECT state FROM jobs"))
    except sqlite3.Error:  # the run has not created its tables yet
        return collections.Counter()


def journal_creates(path: Path) -> tuple[set[str], int]:
    """Return the report ids a journal knows and how many jobs were caught creating."""
    with sqlite3.connect(path) as db:
        known = {rid for (rid,) in db.execute("SELECT report_id FROM jobs") if rid}
        creating = db.execute("SELECT count(*) FROM jobs WHERE state = 'creating'").fetchone()[0]
    return known, int(creating)


async def kill_when_done(
    command: Sequence[str],
    env: Mapping[str, str],
    journal: Path,
    done: int,
    *,
    poll_seconds: float = KILL_POLL_SECONDS,
) -> None:
    """Run a CLI command and SIGKILL it once its journal has ``done`` jobs done (or it ended)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        env=dict(env),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(KILL_POLLS):
        if journal_states(journal)["done"] >= done or process.returncode is not None:
            break
        await asyncio.sleep(poll_seconds)
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    await process.wait()


async def rerun(command: Sequence[str], env: Mapping[str, str]) -> str:
    """Run a CLI command to its end; return its output, asserting it succeeded."""
    process = await asyncio.create_subprocess_exec(
        *command, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    output = (stdout + stderr).decode()
    assert process.returncode == 0, output[-2000:]
    return output
