"""``manifest.jsonl``: what every run into one output directory fetched, keyed by job.

One JSON object a line. Each run *merges* its results in: a line is replaced only by
a later result of the same job (``provider`` and ``job_key``, the journal's key), so a
Finam run never drops UiTPAS lines, a Q2 run never drops Q1's, and two runs with
different journals add up. The merge holds an exclusive lock on the directory and
replaces the file atomically. Fields every line has::

    provider   "uitpas", "finam", ...
    job_key    the journal's key of the job, e.g. "KEY|2024-01-01|2024-03-31"
    period     "2024-Q1" or "2024-01-01..2024-02-15" (None when never resolved)
    start, end ISO dates (None when never resolved)
    state      "done" or "failed"
    report_id, path, sha256, bytes, error_code, error_message
    updated_at ISO timestamp (UTC) of the run that wrote the line

plus the provider's own (``balie`` and ``name``; ``account``, ``form``, ...). Lines
of earlier versions carry no ``provider``/``job_key``; they are read, and replaced by a
new line for the same owner and period.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

try:  # POSIX; elsewhere concurrent merges are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MANIFEST_NAME",
    "MAX_MANIFEST_BYTES",
    "RESULT_FIELDS",
    "ManifestRead",
    "merge_manifest",
    "read_manifest",
]

MANIFEST_NAME = "manifest.jsonl"
#: A manifest past this size is refused: a million reports' lines stay well below it.
MAX_MANIFEST_BYTES = 512 * 1024 * 1024
#: Fields of every line that describe the run's outcome, not the job's identity.
RESULT_FIELDS = frozenset(
    {
        "provider",
        "job_key",
        "period",
        "state",
        "report_id",
        "path",
        "sha256",
        "bytes",
        "error_code",
        "error_message",
        "updated_at",
        "name",
        "content_type",
    }
)


@attrs.frozen
class ManifestRead:
    """The lines of a manifest, and what could not be read (``line N: why``)."""

    records: list[dict[str, Any]]
    problems: list[str]


def read_manifest(path: Path) -> ManifestRead:
    """Read ``manifest.jsonl``: every JSON object line; other lines become problems.

    A missing file reads as empty.

    Raises:
        OSError: the file exists but cannot be read, or is over the size limit.
    """
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ManifestRead(records, problems)
    with handle:
        if os.fstat(handle.fileno()).st_size > MAX_MANIFEST_BYTES:
            raise OSError(f"{path} is over {MAX_MANIFEST_BYTES} bytes")
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: {exc}")
                continue
            if not isinstance(record, dict):
                problems.append(f"line {number}: not an object")
                continue
            records.append(record)
    return ManifestRead(records, problems)


def _owner_and_period(record: dict[str, Any]) -> tuple[Any, ...]:
    """The identity of a line without a job key: its own fields, period included."""
    return tuple(sorted((k, str(v)) for k, v in record.items() if k not in RESULT_FIELDS))


def _owner(record: dict[str, Any]) -> tuple[Any, ...]:
    """Who a line is about (``balie``, ``account``, ...), whatever its period."""
    return (
        str(record.get("provider") or ""),
        *sorted(
            (k, str(v)) for k, v in record.items() if k not in RESULT_FIELDS | {"start", "end"}
        ),
    )


class _Superseded:
    """Tells which old lines the new lines of a run replace."""

    def __init__(self, new: list[dict[str, Any]]) -> None:
        self._jobs = {(r.get("provider"), r.get("job_key")) for r in new if r.get("job_key")}
        self._periods = {_owner_and_period(r) for r in new}
        self._owners = {_owner(r) for r in new}

    def __call__(self, old: dict[str, Any]) -> bool:
        if old.get("job_key"):
            if (old.get("provider"), old["job_key"]) in self._jobs:
                return True
            # A line that failed before its period was known ("latest") gives way
            # to any later line of the same owner.
            return old.get("start") is None and _owner(old) in self._owners
        # A line of an earlier version, without a job key: the same owner and period.
        return _owner_and_period(old) in self._periods


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (no lock file is left behind)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def merge_manifest(path: Path, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge ``records`` into the manifest at ``path``; return every line it now holds.

    Old lines keep their order; a line a new record replaces gives way to it, at the
    end. Lines that cannot be read are kept as they were, never silently dropped.

    Raises:
        OSError: the manifest cannot be read or written.
    """
    new = list(records)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    superseded = _Superseded(new)
    with _locked(path.parent):
        kept_text: list[str] = []
        merged: list[dict[str, Any]] = []
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as handle:
                for text in handle:
                    if not text.strip():
                        continue
                    try:
                        record = json.loads(text)
                    except json.JSONDecodeError:
                        record = None
                    if not isinstance(record, dict):
                        kept_text.append(text.rstrip("\n"))
                        continue
                    if not superseded(record):
                        merged.append(record)
        merged += new
        descriptor, temporary = tempfile.mkstemp(prefix=".manifest-", dir=path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                for text in kept_text:
                    handle.write(text + "\n")
                for record in merged:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    return merged
