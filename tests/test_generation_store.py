"""Generation times in SQLite: written, pruned per provider, and read back bounded and checked."""

from __future__ import annotations

import sqlite3

from uitpas_async.engine.generation_store import GENERATION_SCHEMA, load_history, record_samples
from uitpas_async.engine.polling import GenerationSample

DAY = 86400.0


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(GENERATION_SCHEMA)
    return db


def test_samples_round_trip_newest_first_within_the_age() -> None:
    """What is recorded comes back for its provider, newest first, old rows left out."""
    db = _db()
    record_samples(
        db,
        [
            GenerationSample(10.0, "xml", "A", 100 * DAY),
            GenerationSample(11.0, "xml", "B", 101 * DAY),
            GenerationSample(12.0, "finam", "A", 101 * DAY),
            GenerationSample(13.0, "xml", "A", 1 * DAY),
            GenerationSample(float("nan"), "xml", "A", 101 * DAY),
        ],
    )
    history = load_history(db, provider="xml", now=200 * DAY)
    assert [s.seconds for s in history.samples] == [11.0, 10.0]
    assert history.samples[0] == GenerationSample(11.0, "xml", "B", 101 * DAY)


def test_only_the_newest_rows_of_a_provider_are_kept() -> None:
    """record_samples prunes each provider it wrote to its newest ``keep`` rows."""
    db = _db()
    record_samples(db, [GenerationSample(1.0, "finam", "A", 50 * DAY)], keep=3)
    samples = [GenerationSample(float(i + 1), "xml", "A", (i + 1) * DAY) for i in range(10)]
    record_samples(db, samples, keep=3)
    history = load_history(db, provider="xml", now=10 * DAY, max_age=100 * DAY)
    assert [s.seconds for s in history.samples] == [10.0, 9.0, 8.0]
    assert len(load_history(db, provider="finam", now=51 * DAY).samples) == 1


def test_rows_a_hostile_journal_holds_are_skipped_and_reads_are_bounded() -> None:
    """Text where numbers belong, non-positive times and long names are skipped; LIMIT holds."""
    db = _db()
    rows = [
        ("xml", "A", "fast", 100 * DAY),
        ("xml", "A", -1.0, 100 * DAY),
        ("xml", "x" * 1000, 5.0, 100 * DAY),
        ("xml", "A", 5.0, 100 * DAY),
    ]
    db.executemany(
        "INSERT INTO generation_times (provider, balie, seconds, observed_at) VALUES (?, ?, ?, ?)",
        rows,
    )
    history = load_history(db, provider="xml", now=101 * DAY)
    assert [s.seconds for s in history.samples] == [5.0]
    assert len(load_history(db, provider="xml", now=101 * DAY, limit=2).samples) <= 2
