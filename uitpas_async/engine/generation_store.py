"""Observed generation times in a journal's SQLite database: the table, writes and reads.

The journal keeps one row per report seen completed (provider, balie, seconds,
when), so the next run of the same journal can start its poll grid from them
(:class:`~uitpas_async.engine.polling.GenerationHistory`). A journal on disk is
input from outside: reads are bounded in rows and skip values that are not
finite positive numbers or not text.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable

from uitpas_async.engine.polling import (
    DEFAULT_HISTORY_KEEP,
    DEFAULT_HISTORY_MAX_AGE,
    GenerationHistory,
    GenerationSample,
)

__all__ = ["GENERATION_SCHEMA", "load_history", "prune_samples", "record_samples"]

GENERATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS generation_times (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    provider    TEXT NOT NULL,
    balie       TEXT NOT NULL,
    seconds     REAL NOT NULL,
    observed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS generation_times_by_provider
    ON generation_times (provider, observed_at);
"""
#: Longest provider or balie name read back; longer rows are skipped.
MAX_NAME_CHARS = 200


def record_samples(
    db: sqlite3.Connection,
    samples: Iterable[GenerationSample],
    *,
    keep: int = DEFAULT_HISTORY_KEEP,
    prune: bool = True,
) -> None:
    """Insert ``samples``; with ``prune``, keep only the newest ``keep`` of each provider."""
    rows = [
        (s.provider, s.balie, s.seconds, s.observed_at)
        for s in samples
        if math.isfinite(s.seconds) and s.seconds > 0 and math.isfinite(s.observed_at)
    ]
    if not rows:
        return
    db.executemany(
        "INSERT INTO generation_times (provider, balie, seconds, observed_at) VALUES (?, ?, ?, ?)",
        rows,
    )
    if prune:
        for provider in {row[0] for row in rows}:
            prune_samples(db, provider, keep=keep)


def prune_samples(
    db: sqlite3.Connection, provider: str, *, keep: int = DEFAULT_HISTORY_KEEP
) -> None:
    """Delete all but the newest ``keep`` rows of ``provider``."""
    db.execute(
        "DELETE FROM generation_times WHERE provider = ? AND id NOT IN ("
        "SELECT id FROM generation_times WHERE provider = ? "
        "ORDER BY observed_at DESC, id DESC LIMIT ?)",
        (provider, provider, keep),
    )


def _plain(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_NAME_CHARS


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def load_history(
    db: sqlite3.Connection,
    *,
    provider: str,
    now: float,
    max_age: float = DEFAULT_HISTORY_MAX_AGE,
    limit: int = DEFAULT_HISTORY_KEEP,
) -> GenerationHistory:
    """Return the provider's samples observed within ``max_age`` of ``now``, newest first."""
    cursor = db.execute(
        "SELECT provider, balie, seconds, observed_at FROM generation_times "
        "WHERE provider = ? AND observed_at >= ? ORDER BY observed_at DESC, id DESC LIMIT ?",
        (provider, now - max_age, limit),
    )
    samples = tuple(
        GenerationSample(float(seconds), name, balie, float(observed_at))
        for name, balie, seconds, observed_at in cursor
        if _plain(name) and _plain(balie) and _positive(seconds) and _positive(observed_at)
    )
    return GenerationHistory(samples)
