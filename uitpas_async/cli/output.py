"""What the commands print and write: messages, the progress bar, the manifest, the summary.

Results go to stdout (with ``--json``, one JSON document); progress, notes and
warnings go to stderr, and ``-q`` silences progress and notes. Exit status of every
command: 0 when everything asked for was done, 1 when some reports failed, 2 for
usage or configuration errors, 130 when interrupted.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from uitpas_async.engine.filenames import escape_for_terminal
from uitpas_async.engine.jobs import JobEvent, JobState
from uitpas_async.engine.manifest import MANIFEST_NAME, merge_manifest
from uitpas_async.engine.orchestrator import ReportResult
from uitpas_async.engine.periods import period_label

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "MANIFEST_NAME",
    "STOPPED_CODE",
    "Progress",
    "display_name",
    "fetch_status",
    "note",
    "print_json",
    "print_summary",
    "result_record",
    "say",
    "set_quiet",
    "summary_data",
    "warn",
    "write_manifest",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: What a shell reports for a process ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: The error code of jobs not tried because the batch stopped early; one line says why.
STOPPED_CODE = "STOPPED"


class _Verbosity:
    """Whether ``-q`` asked for results and errors only."""

    quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence (or not) progress and notes for the rest of the process."""
    _Verbosity.quiet = quiet


def say(text: str, *, err: bool = False) -> None:
    """Print one line to stdout (or stderr), flushed, with any terminal control escaped.

    Lines carry names a server chose (filenames, balie names, error messages).
    """
    print(escape_for_terminal(text), file=sys.stderr if err else sys.stdout, flush=True)


def note(text: str) -> None:
    """Print an informational line to stderr, unless ``-q``."""
    if not _Verbosity.quiet:
        say(text, err=True)


def warn(text: str) -> None:
    """Print a warning to stderr (``-q`` keeps warnings)."""
    say(f"warning: {text}", err=True)


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """Print ``data`` as one indented JSON document (dates as ISO strings)."""
    print(
        json.dumps(data, indent=2, ensure_ascii=False, default=str),
        file=stream or sys.stdout,
        flush=True,
    )


def display_name(request: Any) -> str:
    """Return ``Name (KEY)`` for a request with a name, else its label (balie, account)."""
    name = getattr(request, "name", None)
    label = str(request.label)
    return f"{name} ({label})" if name else label


def _period(start: Any, end: Any) -> str | None:
    return period_label(start, end) if start is not None and end is not None else None


def result_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest fields every provider shares: job, period, state, file, error."""
    report = result.report
    return {
        "job_key": result.job_key or result.request.job_key,
        "period": _period(result.start, result.end),
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
    *,
    provider: str,
) -> None:
    """Merge one line per result, ``record(result)``, into ``manifest.jsonl`` (see engine)."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    merge_manifest(
        path,
        ({"provider": provider, **record(result), "updated_at": now} for result in results),
    )


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


class Progress:
    """Counts jobs per state from orchestrator events; draws a bar or prints plain lines.

    It also keeps every finished job as a :class:`ReportResult`, so an interrupted run
    can still write the manifest of what it finished.
    """

    def __init__(
        self, total: int, *, stream: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.counts: Counter[JobState] = Counter({JobState.QUEUED: total})
        #: Jobs found done by an earlier run (their file intact), and jobs picked up mid-way.
        self.done_earlier = 0
        self.resumed = 0
        #: Every finished job, by its place in the batch.
        self.finished: dict[int, ReportResult] = {}
        self.periods: dict[str, None] = {}
        self._clock = clock
        self._started = clock()
        self._stream = stream
        self._bar: Any = None
        self._task: Any = None
        self._quiet = _Verbosity.quiet
        if stream.isatty() and not self._quiet:
            # rich only for a terminal, and imported only then: plain runs start faster.
            with contextlib.suppress(ImportError):
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
                from rich.progress import Progress as Bar

                self._bar = Bar(
                    TextColumn("reports"),
                    BarColumn(bar_width=24),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("ETA"),
                    TimeRemainingColumn(),
                    TextColumn("{task.description}"),
                    transient=False,
                    # The bar goes where progress goes, never into stdout's results.
                    console=Console(file=stream),
                )
                self._task = self._bar.add_task(self._describe(), total=total)

    def _describe(self) -> str:
        periods = ", ".join(self.periods)
        states = "  ".join(
            f"{state.value} {self.counts[state]}" for state in JobState if self.counts[state]
        )
        return f"{periods}  {states}" if periods else states

    def _timing(self, finished: int) -> str:
        elapsed = self._clock() - self._started
        fetched_now = finished - self.done_earlier
        remaining = self.total - finished
        if fetched_now <= 0 or remaining <= 0:
            return f"{_clock(elapsed)} elapsed"
        eta = elapsed / fetched_now * remaining
        return f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}"

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
        period = _period(event.start, event.end)
        if period is not None:
            self.periods.setdefault(period, None)
        if event.previous is JobState.QUEUED and event.state is JobState.DONE:
            self.done_earlier += 1
        elif event.previous is JobState.QUEUED and event.state is JobState.GENERATING:
            self.resumed += 1
        if event.state.finished:
            self.finished[event.index] = ReportResult(
                event.request,
                event.state,
                event.report_id,
                event.start,
                event.end,
                event.report,
                event.error,
                event.job_key,
            )
        finished = self.counts[JobState.DONE] + self.counts[JobState.FAILED]
        if self._bar is not None:
            self._bar.update(self._task, completed=finished, description=self._describe())
            if event.state is JobState.FAILED and not _stopped(event):
                # A failure shows when it happens, above the bar, not only in the summary.
                line = self._line(event, finished, period)
                self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        elif event.state.finished and not self._quiet and not _stopped(event):
            print(self._line(event, finished, period), file=self._stream, flush=True)

    def _line(self, event: JobEvent, finished: int, period: str | None) -> str:
        """Return one finished job as a line, escaped: names and errors come from servers."""
        detail = (
            str(event.report.path)
            if event.report
            else (f"{event.error.code}: {event.error.message}" if event.error else "")
        )
        where = f"  {period}" if period else ""
        line = (
            f"[{finished}/{self.total}] {event.state.value:<6} {display_name(event.request)}"
            f"{where}  {detail}  ({self._timing(finished)})"
        )
        return escape_for_terminal(line)


def _stopped(event: JobEvent) -> bool:
    return event.error is not None and event.error.code == STOPPED_CODE


def summary_data(
    results: Sequence[ReportResult], *, done_earlier: int = 0, manifest: Path | None = None
) -> dict[str, Any]:
    """Return the summary of a fetch run as plain data (what ``--json`` prints)."""
    counts = Counter(result.state.value for result in results)
    errors = Counter(result.error.code for result in results if result.error is not None)
    periods = {
        period: None
        for result in results
        if (period := _period(result.start, result.end)) is not None
    }
    return {
        "reports": len(results),
        "done": counts["done"],
        "failed": counts["failed"],
        "done_earlier": done_earlier,
        "periods": list(periods),
        "errors": dict(errors.most_common()),
        "failures": [
            {
                "job_key": result.job_key or result.request.job_key,
                "owner": result.request.label,
                "name": getattr(result.request, "name", None),
                "period": _period(result.start, result.end),
                "error_code": result.error.code,
                "error_message": result.error.message,
            }
            for result in results
            if not result.ok and result.error is not None
        ],
        "manifest": str(manifest) if manifest is not None else None,
    }


def print_summary(
    results: Sequence[ReportResult], stream: TextIO, *, done_earlier: int = 0
) -> None:
    """Print how many reports are done and failed, per error code, and each failure."""
    data = summary_data(results, done_earlier=done_earlier)
    rows = [("done", data["done"]), ("failed", data["failed"])]
    rows += [(f"  {code}", count) for code, count in data["errors"].items()]
    width = max(len(label) for label, _ in rows)
    print(f"{'state':<{width}}  reports", file=stream)
    for label, count in rows:
        print(f"{label:<{width}}  {count:>7}", file=stream)
    earlier = f" ({done_earlier} done earlier)" if done_earlier else ""
    periods = f"; period {', '.join(data['periods'])}" if data["periods"] else ""
    print(
        f"done {data['done']}, failed {data['failed']}, of {len(results)} reports"
        f"{earlier}{periods}",
        file=stream,
    )
    for result in results:
        if not result.ok and result.error is not None:
            name = display_name(result.request)
            line = f"  failed {name}: {result.error.code}: {result.error.message}"
            print(escape_for_terminal(line), file=stream)


def fetch_status(results: Sequence[ReportResult]) -> int:
    """Return the exit status of a fetch run: 0 when every report is done, else 1."""
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED
