"""A durable record of a batch's jobs in SQLite, so a crashed or interrupted run can resume.

Every change is committed at once (WAL, ``synchronous=NORMAL``): a report id is
on disk before the next request is sent, so a resumed run polls a known report
instead of creating it again. Jobs are keyed by provider and request key, so
one journal can hold several providers' jobs.

Any database fault (disk full, a corrupt page, a row holding an impossible
value) is raised as one :class:`~uitpas_async.engine.errors.JournalError`.
Each change is a single committed statement, so a fault leaves the journal as
it was before that change. The journal, its lock file and SQLite's side files
are owner-only.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import IO

try:  # POSIX; elsewhere runs are not protected from each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

import attrs

from uitpas_async.engine.errors import ConfigurationError, JournalError
from uitpas_async.engine.generation_store import (
    GENERATION_SCHEMA,
    load_history,
    prune_samples,
    record_samples,
)
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.polling import GenerationHistory, GenerationSample

__all__ = [
    "POSSIBLE_DUPLICATE_CREATE",
    "SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "PossibleDuplicate",
]

#: The event kind of a create that may have started a report we never heard of.
POSSIBLE_DUPLICATE_CREATE = "possible_duplicate_create"
#: Journal, lock file and SQLite's side files: owner-only.
FILE_MODE = 0o600

#: What a faulty database or an impossible stored value raises while reading or writing.
_DATABASE_FAULTS = (sqlite3.Error, ValueError, TypeError, OverflowError)

#: Stored in ``PRAGMA user_version``; bump it with a migration when the schema changes.
#: 2 added the ``generation_times`` table (created when a version-1 journal is opened);
#: 3 added ``jobs.created_at``, when the job's report was created (added, empty, to an
#: older journal's jobs: those resume as before, their reports' age unknown).
SCHEMA_VERSION = 3
#: Older versions this one migrates by creating what is missing.
_MIGRATES = (0, 1, 2)
#: Columns added to ``jobs`` after version 1, with their types, for the migration.
_ADDED_JOB_COLUMNS = (("created_at", "REAL"),)

_SCHEMA = (
    """
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
    created_at    REAL,
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
    + GENERATION_SCHEMA
)


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
    #: Wall-clock time (POSIX seconds) the job's report was created, if known: a run
    #: that resumes the job polls it at its true age.
    created_at: float | None = None


@attrs.frozen
class PossibleDuplicate:
    """A create that may have started a report on the server that no job knows."""

    provider: str
    job_key: str
    #: When it was recorded (seconds since the epoch).
    at: float
    #: What made it possible: the fault's type name, or "resumed".
    detail: str | None


def _lock_exclusively(path: Path) -> IO[bytes]:
    """Hold an exclusive lock on ``path`` for as long as the returned file is open.

    Two runs on one journal would each sweep the other's partial downloads.

    Raises:
        ConfigurationError: another process holds the lock.
    """
    while True:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        # A lock file made by an older version may be wider; it names the journal's batch.
        with contextlib.suppress(OSError):
            os.fchmod(descriptor, FILE_MODE)
        handle = os.fdopen(descriptor, "ab")
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


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, found {type(value).__name__}")
    return value


def _count(value: object) -> int:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, found {value!r}")
    return value


def _instant(value: object) -> float | None:
    """Return a stored wall-clock time, or None where it is missing or not a time.

    Only a schedule depends on it, so a bad value means "unknown", not a broken journal.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class Journal:
    """The SQLite journal of one batch (or several runs of it).

    ``clock`` gives the wall-clock time (POSIX seconds) stored with each change and event.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_path = self.path.with_name(self.path.name + ".lock")
            self._lock = _lock_exclusively(self._lock_path)
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
            self.path.touch(mode=FILE_MODE, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (*_MIGRATES, SCHEMA_VERSION):
                raise ConfigurationError(
                    f"journal {self.path.name} has schema version {version}; "
                    f"this version of uitpas_async reads version {SCHEMA_VERSION}"
                )
            db.executescript(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_JOB_COLUMNS:
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        except BaseException:
            db.close()
            raise
        return db

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Raise any database fault or impossible stored value as one JournalError."""
        try:
            yield
        except _DATABASE_FAULTS as exc:
            raise JournalError(
                f"journal {self.path}: cannot {action} ({type(exc).__name__}: {exc}); "
                "free disk space or restore the journal, then run again to resume"
            ) from exc

    def close(self) -> None:
        """Close the database and let another run have it; the lock file goes too."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        if fcntl is not None:
            # Removed while still locked, so no run is left holding a stale file.
            with contextlib.suppress(OSError):
                os.unlink(self._lock_path)
        self._lock.close()

    def is_empty(self) -> bool:
        """Return whether the journal holds no job and no event (new, emptied or recreated)."""
        with self._guard("read its jobs"):
            row = self._db.execute(
                "SELECT EXISTS (SELECT 1 FROM jobs) OR EXISTS (SELECT 1 FROM events)"
            ).fetchone()
            return not row[0]

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, provider: str, job_key: str) -> JournalEntry | None:
        """Return the entry of one job, if the journal has it."""
        with self._guard(f"read job {job_key!r}"):
            return self._get(provider, job_key)

    def _get(self, provider: str, job_key: str) -> JournalEntry | None:
        row = self._db.execute(
            "SELECT provider, job_key, label, state, start_date, end_date, report_id, attempts,"
            " creates, path, sha256, bytes, error_code, error_message, created_at"
            " FROM jobs WHERE provider = ? AND job_key = ?",
            (provider, job_key),
        ).fetchone()
        if row is None:
            return None
        return JournalEntry(
            provider=row[0],
            job_key=row[1],
            label=_text(row[2]),
            state=JobState(row[3]),
            start=_date(row[4]),
            end=_date(row[5]),
            report_id=row[6],
            attempts=_count(row[7]),
            creates=_count(row[8]),
            path=row[9],
            sha256=row[10],
            size=None if row[11] is None else _count(row[11]),
            error_code=row[12],
            error_message=row[13],
            created_at=_instant(row[14]),
        )

    def save(self, entry: JournalEntry) -> None:
        """Insert or replace one job's entry, committed at once."""
        with self._guard(f"save job {entry.job_key!r}"):
            self._save(entry)

    def _save(self, entry: JournalEntry) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO jobs (provider, job_key, label, state, start_date, end_date,"
            " report_id, attempts, creates, path, sha256, bytes, error_code, error_message,"
            " updated_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                self._clock(),
                entry.created_at,
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
    ) -> float:
        """Record something worth knowing later, such as a possibly duplicate create.

        Returns:
            The wall-clock time (POSIX seconds) stored with the event.
        """
        at = self._clock()
        with self._guard(f"record an event of job {job_key!r}"):
            self._db.execute(
                "INSERT INTO events (provider, job_key, at, kind, report_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (provider, job_key, at, kind, report_id, detail),
            )
        return at

    def last_event_at(self, provider: str, job_key: str, kind: str) -> float | None:
        """Return the wall-clock time of one job's latest event of ``kind``, if any."""
        with self._guard(f"read the events of job {job_key!r}"):
            row = self._db.execute(
                "SELECT at FROM events WHERE provider = ? AND job_key = ? AND kind = ?"
                " ORDER BY id DESC LIMIT 1",
                (provider, job_key, kind),
            ).fetchone()
        return None if row is None else float(row[0])

    def record_generation(self, sample: GenerationSample) -> None:
        """Record one report's observed generation time, for the next run's poll grid."""
        with self._guard("record a generation time"):
            record_samples(self._db, [sample], prune=False)

    def prune_generation(self, provider: str) -> None:
        """Keep only the newest generation times of ``provider`` (bounded on disk)."""
        with self._guard("prune its generation times"):
            prune_samples(self._db, provider)

    def generation_history(self, provider: str, *, now: float) -> GenerationHistory:
        """Return the provider's recent observed generation times, newest first."""
        with self._guard("read its generation times"):
            return load_history(self._db, provider=provider, now=now)

    def possible_duplicates(self, provider: str | None = None) -> list[PossibleDuplicate]:
        """Return every possible duplicate create of every run of this journal, oldest first."""
        query = "SELECT provider, job_key, at, detail FROM events WHERE kind = ?"
        parameters: tuple[str, ...] = (POSSIBLE_DUPLICATE_CREATE,)
        if provider is not None:
            query += " AND provider = ?"
            parameters += (provider,)
        with self._guard("list its possible duplicate creates"):
            rows = self._db.execute(query + " ORDER BY id", parameters).fetchall()
            return [
                PossibleDuplicate(_text(row[0]), _text(row[1]), float(row[2]), row[3])
                for row in rows
            ]

    def events(self, kind: str | None = None) -> list[tuple[str, str, str, str | None]]:
        """Return recorded events as (provider, job_key, kind, report_id), oldest first."""
        query = "SELECT provider, job_key, kind, report_id FROM events"
        with self._guard("list its events"):
            rows = (
                self._db.execute(query + " WHERE kind = ? ORDER BY id", (kind,))
                if kind
                else self._db.execute(query + " ORDER BY id")
            )
            return [tuple(row) for row in rows]
