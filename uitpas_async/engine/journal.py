"""A durable record of a batch's jobs in SQLite, so a crashed or interrupted run can resume.

Every change is committed at once (WAL, ``synchronous=NORMAL``): a report id is
on disk before the next request is sent, so a resumed run polls a known report
instead of creating it again. Jobs are keyed by provider and request key, so
one journal can hold several providers' jobs.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from datetime import date
from pathlib import Path
from typing import IO

try:  # POSIX; elsewhere runs are not protected from each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

import attrs

from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.engine.jobs import JobState

__all__ = ["SCHEMA_VERSION", "Journal", "JournalEntry"]

#: Stored in ``PRAGMA user_version``; bump it with a migration when the schema changes.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    provider      TEXT NOT NULL,
    job_key       TEXT NOT NULL,
    label         TEXT NOT NULL,
    start_date    TEXT,
    end_date      TEXT,
    report_id     TEXT,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    creates       INTEGER NOT NULL DEFAULT 0,
    path          TEXT,
    sha256        TEXT,
    bytes         INTEGER,
    error_code    TEXT,
    error_message TEXT,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (provider, job_key)
);
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    provider   TEXT NOT NULL,
    job_key    TEXT NOT NULL,
    at         REAL NOT NULL,
    kind       TEXT NOT NULL,
    report_id  TEXT,
    detail     TEXT
);
"""


@attrs.frozen
class JournalEntry:
    """What the journal knows about one job."""

    provider: str
    job_key: str
    label: str
    state: JobState
    start: date | None = None
    end: date | None = None
    report_id: str | None = None
    attempts: int = 0
    creates: int = 0
    path: str | None = None
    sha256: str | None = None
    size: int | None = None
    error_code: str | None = None
    error_message: str | None = None


def _lock_exclusively(path: Path) -> IO[bytes]:
    """Hold an exclusive lock on ``path`` for as long as the returned file is open.

    Two runs on one journal would each sweep the other's partial downloads.

    Raises:
        ConfigurationError: another process holds the lock.
    """
    while True:
        handle = path.open("ab")
        if fcntl is None:
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise ConfigurationError(
                f"another run is using the journal {path.name[: -len('.lock')]}; "
                "wait for it to finish"
            ) from exc
        # The run before may have removed the file between our open and our lock
        # (see Journal.close): a lock on a removed file guards nothing, so try again.
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class Journal:
    """The SQLite journal of one batch (or several runs of it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_exclusively(self.path.with_name(self.path.name + ".lock"))
        except OSError as exc:
            raise ConfigurationError(f"cannot open journal {self.path}: {exc}") from exc
        try:
            self._db = self._open()
        except BaseException:
            self._lock.close()
            raise

    def _open(self) -> sqlite3.Connection:
        """Open the database, creating or checking its schema."""
        try:
            # Owner-only before SQLite writes a byte; its -wal and -shm files copy the mode.
            self.path.touch(mode=0o600, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise ConfigurationError(f"cannot open journal {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise ConfigurationError(
                    f"journal {self.path.name} has schema version {version}; "
                    f"this version of uitpas_async reads version {SCHEMA_VERSION}"
                )
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigurationError(f"cannot open journal {self.path}: {exc}") from exc
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Close the database and let another run have it; the lock file goes too."""
        self._db.close()
        if fcntl is not None:
            # Removed while still locked, so no run is left holding a stale file.
            with contextlib.suppress(OSError):
                os.unlink(self._lock.name)
        self._lock.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, provider: str, job_key: str) -> JournalEntry | None:
        """Return the entry of one job, if the journal has it."""
        row = self._db.execute(
            "SELECT provider, job_key, label, state, start_date, end_date, report_id, attempts,"
            " creates, path, sha256, bytes, error_code, error_message"
            " FROM jobs WHERE provider = ? AND job_key = ?",
            (provider, job_key),
        ).fetchone()
        if row is None:
            return None
        return JournalEntry(
            provider=row[0],
            job_key=row[1],
            label=row[2],
            state=JobState(row[3]),
            start=_date(row[4]),
            end=_date(row[5]),
            report_id=row[6],
            attempts=row[7],
            creates=row[8],
            path=row[9],
            sha256=row[10],
            size=row[11],
            error_code=row[12],
            error_message=row[13],
        )

    def save(self, entry: JournalEntry) -> None:
        """Insert or replace one job's entry, committed at once."""
        self._db.execute(
            "INSERT OR REPLACE INTO jobs (provider, job_key, label, state, start_date, end_date,"
            " report_id, attempts, creates, path, sha256, bytes, error_code, error_message,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.provider,
                entry.job_key,
                entry.label,
                entry.state.value,
                entry.start.isoformat() if entry.start else None,
                entry.end.isoformat() if entry.end else None,
                entry.report_id,
                entry.attempts,
                entry.creates,
                entry.path,
                entry.sha256,
                entry.size,
                entry.error_code,
                entry.error_message,
                time.time(),
            ),
        )

    def record_event(
        self,
        provider: str,
        job_key: str,
        kind: str,
        *,
        report_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record something worth knowing later, such as a possibly duplicate create."""
        self._db.execute(
            "INSERT INTO events (provider, job_key, at, kind, report_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (provider, job_key, time.time(), kind, report_id, detail),
        )

    def events(self, kind: str | None = None) -> list[tuple[str, str, str, str | None]]:
        """Return recorded events as (provider, job_key, kind, report_id), oldest first."""
        query = "SELECT provider, job_key, kind, report_id FROM events"
        rows = (
            self._db.execute(query + " WHERE kind = ? ORDER BY id", (kind,))
            if kind
            else self._db.execute(query + " ORDER BY id")
        )
        return [tuple(row) for row in rows]
