"""What the commands print and write: messages, the progress bar, the manifest, the summary table.

Exit status of every command: 0 when everything asked for was done, 1 when some
reports failed, 2 for usage or configuration errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from uitpas_async.engine.filenames import escape_for_terminal
from uitpas_async.engine.jobs import JobEvent, JobState
from uitpas_async.engine.orchestrator import ReportResult
from uitpas_async.engine.reconcile import MANIFEST_NAME

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "MANIFEST_NAME",
    "Progress",
    "fetch_status",
    "print_summary",
    "result_record",
    "say",
    "write_manifest",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: What a shell reports for a process ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def say(text: str, *, err: bool = False) -> None:
    """Print one line to stdout (or stderr), flushed, with any terminal control escaped.

    Lines carry names a server chose (filenames, balie names, error messages).
    """
    print(escape_for_terminal(text), file=sys.stderr if err else sys.stdout, flush=True)


def result_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest fields every provider shares: period, state, file, error."""
    report = result.report
    return {
        "job_key": result.job_key,
        "start": result.start.isoformat() if result.start else None,
        "end": result.end.isoformat() if result.end else None,
        "state": result.state.value,
        "report_id": result.report_id,
        "path": str(report.path) if report else None,
        "sha256": report.sha256 if report else None,
        "bytes": report.size if report else None,
        "error_code": result.error.code if result.error else None,
        "error_message": result.error.message if result.error else None,
    }


def write_manifest(
    results: Sequence[ReportResult],
    path: Path,
    record: Callable[[ReportResult], dict[str, Any]],
) -> None:
    """Write ``manifest.jsonl`` atomically: one JSON object, ``record(result)``, per request."""
    descriptor, temporary = tempfile.mkstemp(prefix=".manifest-", dir=path.parent)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(record(result), ensure_ascii=False) + "\n")
    os.replace(temporary, path)


class Progress:
    """Counts jobs per state from orchestrator events; draws a bar or prints plain lines."""

    def __init__(self, total: int, *, stream: TextIO) -> None:
        self.total = total
        self.counts: Counter[JobState] = Counter({JobState.QUEUED: total})
        self._stream = stream
        self._bar: Any = None
        self._task: Any = None
        if stream.isatty():
            # rich only for a terminal, and imported only then: plain runs start faster.
            with contextlib.suppress(ImportError):
                from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
                from rich.progress import Progress as Bar

                self._bar = Bar(
                    TextColumn("reports"),
                    BarColumn(bar_width=24),
                    MofNCompleteColumn(),
                    TextColumn("{task.description}"),
                    transient=False,
                )
                self._task = self._bar.add_task(self._describe(), total=total)

    def _describe(self) -> str:
        return "  ".join(
            f"{state.value} {self.counts[state]}" for state in JobState if self.counts[state]
        )

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: JobEvent) -> None:
        self.counts[event.previous] -= 1
        self.counts[event.state] += 1
        finished = self.counts[JobState.DONE] + self.counts[JobState.FAILED]
        if self._bar is not None:
            self._bar.update(self._task, completed=finished, description=self._describe())
        elif event.state.finished:
            label = event.request.label
            detail = (
                str(event.report.path)
                if event.report
                else (f"{event.error.code}: {event.error.message}" if event.error else "")
            )
            line = f"[{finished}/{self.total}] {event.state.value:<6} {label}  {detail}"
            print(escape_for_terminal(line), file=self._stream, flush=True)


def print_summary(results: Sequence[ReportResult], stream: TextIO) -> None:
    """Print how many reports are done and failed, per error code, and each failure."""
    counts = Counter(result.state.value for result in results)
    errors = Counter(result.error.code for result in results if result.error is not None)
    rows = [("done", counts["done"]), ("failed", counts["failed"])]
    rows += [(f"  {code}", count) for code, count in errors.most_common()]
    width = max(len(label) for label, _ in rows)
    print(f"{'state':<{width}}  reports", file=stream)
    for label, count in rows:
        print(f"{label:<{width}}  {count:>7}", file=stream)
    print(
        f"done {counts['done']}, failed {counts['failed']}, of {len(results)} reports",
        file=stream,
    )
    for result in results:
        if not result.ok and result.error is not None:
            label = result.request.label
            line = f"  failed {label}: {result.error.code}: {result.error.message}"
            print(escape_for_terminal(line), file=stream)


def fetch_status(results: Sequence[ReportResult]) -> int:
    """Return the exit status of a fetch run: 0 when every report is done, else 1."""
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED
