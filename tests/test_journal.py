"""The SQLite journal on its own: round trip, schema version, permissions, one run at a time."""

from __future__ import annotations

import sqlite3
import stat
from datetime import date
from pathlib import Path

import pytest

from uitpas_async import ConfigurationError
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.journal import SCHEMA_VERSION, Journal, JournalEntry


def test_entries_round_trip(tmp_path: Path) -> None:
    """What is saved comes back the same, and survives reopening."""
    entry = JournalEntry(
        "uitpas", "K|2024-01-01|2024-03-31", "K", JobState.GENERATING,
        start=date(2024, 1, 1), end=date(2024, 3, 31), report_id="19", creates=1,
    )  # fmt: skip
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.save(entry)
    with Journal(tmp_path / "j.sqlite") as journal:
        assert journal.get("uitpas", entry.job_key) == entry
        assert journal.get("finam", entry.job_key) is None


def test_schema_version_is_stored_and_checked(tmp_path: Path) -> None:
    """The schema version is stored; a journal from a newer schema is refused, not misread."""
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ConfigurationError, match="schema version"):
        Journal(path)


def test_journal_is_owner_only(tmp_path: Path) -> None:
    """The journal names balies and reports: only its owner may read it."""
    with Journal(tmp_path / "j.sqlite") as journal:
        mode = stat.S_IMODE(journal.path.stat().st_mode)
    assert mode == 0o600


def test_one_run_at_a_time(tmp_path: Path) -> None:
    """A second run on the same journal is refused while the first holds it."""
    with Journal(tmp_path / "j.sqlite"), pytest.raises(ConfigurationError, match="another run"):
        Journal(tmp_path / "j.sqlite")
    Journal(tmp_path / "j.sqlite").close()


def test_not_a_database(tmp_path: Path) -> None:
    """A file that is not SQLite gives a configuration error, not a crash."""
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigurationError, match="cannot open journal"):
        Journal(path)
