"""The SQLite journal on its own: round trip, schema version, permissions, one run at a time."""

from __future__ import annotations

import sqlite3
import stat
import time
from datetime import date
from pathlib import Path

import attrs
import pytest

from uitpas_async import ConfigurationError
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.journal import SCHEMA_VERSION, Journal, JournalEntry
from uitpas_async.engine.polling import GenerationSample


def test_entries_round_trip(tmp_path: Path) -> None:
    """What is saved comes back the same, and survives reopening."""
    entry = JournalEntry(
        "uitpas", "K|2024-01-01|2024-03-31", "K", JobState.GENERATING,
        start=date(2024, 1, 1), end=date(2024, 3, 31), report_id="19", creates=1,
        created_at=1_700_000_000.25,
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


_VERSION_1_SCHEMA = """
CREATE TABLE jobs (
    provider TEXT NOT NULL, job_key TEXT NOT NULL, label TEXT NOT NULL, start_date TEXT,
    end_date TEXT, report_id TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    creates INTEGER NOT NULL DEFAULT 0, path TEXT, sha256 TEXT, bytes INTEGER,
    error_code TEXT, error_message TEXT, updated_at REAL NOT NULL,
    PRIMARY KEY (provider, job_key)
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, job_key TEXT NOT NULL,
    at REAL NOT NULL, kind TEXT NOT NULL, report_id TEXT, detail TEXT
);
INSERT INTO jobs (provider, job_key, label, state, updated_at)
    VALUES ('uitpas', 'k1', 'B1', 'generating', 0);
PRAGMA user_version=1;
"""


def _old_journal(tmp_path: Path, script: str) -> Path:
    """Write a journal as an older version left it; return its path."""
    path = tmp_path / "journal.sqlite"
    db = sqlite3.connect(path)
    db.executescript(script)
    db.close()
    return path


def test_a_version_1_journal_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    """Opening a version-1 journal adds generation_times, bumps the version, keeps jobs."""
    path = _old_journal(tmp_path, _VERSION_1_SCHEMA)
    with Journal(path) as journal:
        entry = journal.get("uitpas", "k1")
        assert entry is not None
        assert entry.label == "B1"
        journal.record_generation(GenerationSample(12.5, "uitpas", "B1", time.time()))
        history = journal.generation_history("uitpas", now=time.time())
        assert [s.seconds for s in history.samples] == [12.5]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()


_VERSION_2_SCHEMA = (
    _VERSION_1_SCHEMA.replace("PRAGMA user_version=1;", "")
    + """
CREATE TABLE generation_times (
    id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, balie TEXT NOT NULL,
    seconds REAL NOT NULL, observed_at REAL NOT NULL
);
INSERT INTO generation_times (provider, balie, seconds, observed_at)
    VALUES ('uitpas', 'B1', 21.5, 1700000000);
PRAGMA user_version=2;
"""
)


def test_a_version_2_journal_gains_creation_times_and_keeps_the_rest(tmp_path: Path) -> None:
    """A version-2 journal opens: its jobs' creation times are unknown, new ones are kept."""
    path = _old_journal(tmp_path, _VERSION_2_SCHEMA)
    with Journal(path) as journal:
        entry = journal.get("uitpas", "k1")
        assert entry is not None
        assert entry.state is JobState.GENERATING
        assert entry.created_at is None
        history = journal.generation_history("uitpas", now=1_700_000_100)
        assert [s.seconds for s in history.samples] == [21.5]
        journal.save(attrs.evolve(entry, created_at=1_700_000_050.5))
    with Journal(path) as journal:
        entry = journal.get("uitpas", "k1")
        assert entry is not None
        assert entry.created_at == 1_700_000_050.5
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_a_creation_time_that_is_no_time_reads_as_unknown(tmp_path: Path) -> None:
    """Text, infinity or NaN in created_at means "unknown": the job still resumes."""
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        journal.save(JournalEntry("uitpas", "k1", "B1", JobState.GENERATING, report_id="7"))
    db = sqlite3.connect(path)
    for value in ("soon", float("inf"), float("nan")):
        db.execute("UPDATE jobs SET created_at = ?", (value,))
        db.commit()
        with Journal(path) as journal:
            entry = journal.get("uitpas", "k1")
            assert entry is not None
            assert entry.report_id == "7"
            assert entry.created_at is None
    db.close()


def test_the_journal_stamps_changes_and_events_with_its_clock(tmp_path: Path) -> None:
    """The clock given is what events and changes are stamped with (virtual time in tests)."""
    with Journal(tmp_path / "j.sqlite", clock=lambda: 123.5) as journal:
        journal.save(JournalEntry("uitpas", "k1", "B1", JobState.QUEUED))
        assert journal.record_event("uitpas", "k1", "create_sent") == 123.5
        assert journal.last_event_at("uitpas", "k1", "create_sent") == 123.5
    db = sqlite3.connect(tmp_path / "j.sqlite")
    assert db.execute("SELECT updated_at FROM jobs").fetchone()[0] == 123.5
    db.close()
