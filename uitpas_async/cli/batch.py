"""A provider's ``reports fetch``: the options it takes and the run, shared by every provider.

A fetch command adds its own options (which balies or accounts, which period), then
:func:`add_batch_arguments`; its handler checks its arguments (before any I/O),
then hands a connection, its requests and a manifest record to :func:`fetch_batch`::

    async def _cmd_fetch(args):
        planned = plan(args)  # validates everything; raises before any I/O
        return await fetch_batch(
            args, connection(args), lambda found: planned.requests(found), record=record
        )

What every provider's fetch gets from here: progress with elapsed time, ETA and
period; a manifest merged into ``OUT/manifest.jsonl`` (also after Ctrl-C, with what
was done); "resumed: N done earlier"; ``--json``; and an early stop, exit 2 with one
line naming the cause and the fix, when the first calls show that nothing can work
(refused credentials, an unreachable host).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from uitpas_async.cli.args import positive_float, positive_int
from uitpas_async.cli.output import (
    EXIT_OK,
    EXIT_USAGE,
    MANIFEST_NAME,
    STOPPED_CODE,
    Progress,
    fetch_status,
    note,
    print_json,
    print_summary,
    say,
    summary_data,
    write_manifest,
)
from uitpas_async.engine.backend import (
    FindsStartedReports,
    HasReportBackend,
    JobRequest,
    ReportBackend,
    StartedReport,
    as_backend,
)
from uitpas_async.engine.config import PollPolicy
from uitpas_async.engine.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    UitpasError,
)
from uitpas_async.engine.jobs import JobState
from uitpas_async.engine.journal import Journal
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.orchestrator import ReportOrchestrator, ReportResult

__all__ = [
    "HOPELESS_ERRORS",
    "JOURNAL_NAME",
    "STOP_AFTER_FAILURES",
    "RunStoppedError",
    "add_batch_arguments",
    "fetch_batch",
]

#: The journal's file in OUT unless ``--journal`` names another.
JOURNAL_NAME = "journal.sqlite"
#: Errors that, when every one of the first calls ends in the same one, mean that no
#: report of the batch can be fetched: refused credentials, an unreachable host.
HOPELESS_ERRORS: tuple[type[UitpasError], ...] = (AuthenticationError, ConnectError)
#: How many calls must fail that way (and none succeed) before the batch stops.
STOP_AFTER_FAILURES = 3

#: What a connection yields besides the client: the sandbox's balies or accounts, if any.
_Found = TypeVar("_Found")
_T = TypeVar("_T")

#: Turns the error that stopped a batch into the fix to tell the operator.
Hint = Callable[[UitpasError], str]
#: Totals the fetched reports (``--summarize``): the exit status and the JSON document.
NestedSummary = Callable[[], tuple[int, dict[str, Any]]]


class RunStoppedError(ConfigurationError):
    """A job not tried because the batch's first calls showed that none can succeed."""

    code = STOPPED_CODE


def _default_hint(error: UitpasError) -> str:
    if isinstance(error, AuthenticationError):
        return "check the credentials"
    return "check the network and the base URL"


class _Watchdog:
    """A backend that passes every call on, and stops the batch when nothing can work.

    When the first :data:`STOP_AFTER_FAILURES` calls all fail with the same one of
    :data:`HOPELESS_ERRORS` and none has succeeded, every later call fails at once
    with :class:`RunStoppedError` (which no job retries), so the batch ends in seconds.
    """

    def __init__(
        self, backend: ReportBackend, threshold: int, *, poll_policy: PollPolicy | None
    ) -> None:
        self._backend = backend
        self.provider = backend.provider
        #: Clients carry the poll policy; the orchestrator looks for it here.
        self.poll_policy = poll_policy
        self._threshold = threshold
        #: The failures seen while no call had succeeded yet.
        self._failures: list[UitpasError] = []
        self._armed = True
        #: The error that stopped the batch, once it is stopped; and the signal of it.
        self.stopped_by: UitpasError | None = None
        self._stop = asyncio.Event()

    @property
    def request_rate(self) -> float | None:
        """The wrapped backend's request rate (the orchestrator spaces polls by it)."""
        rate = getattr(self._backend, "request_rate", None)
        return rate if isinstance(rate, (int, float)) else None

    def _stopped(self) -> RunStoppedError:
        assert self.stopped_by is not None
        return RunStoppedError(
            f"not tried: the first calls failed with {type(self.stopped_by).__name__}"
        )

    async def _call(self, call: Callable[[], Awaitable[_T]], *, proves: bool = True) -> _T:
        """Make one call; ``proves``: whether its success shows that the server works."""
        if self.stopped_by is not None:
            raise self._stopped()
        try:
            result = await (self._racing(call) if self._armed else call())
        except UitpasError as exc:
            self._observe(exc)
            if self.stopped_by is not None and self.stopped_by is not exc:
                raise self._stopped() from None
            raise
        if proves:
            self._armed = False  # something works: never stop this batch
        return result

    async def _racing(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a call until it ends or the batch stops (then it is cancelled: no waiting
        out the retries of calls that cannot succeed either)."""
        task = asyncio.ensure_future(call())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if task.cancelled():
            raise self._stopped()
        return task.result()

    def _observe(self, error: UitpasError) -> None:
        if not self._armed:
            return
        if not isinstance(error, HOPELESS_ERRORS) or any(
            type(seen) is not type(error) for seen in self._failures
        ):
            self._armed = False  # an answer of another kind: the server is reachable
            return
        self._failures.append(error)
        if len(self._failures) >= self._threshold:
            self.stopped_by = error
            self._stop.set()

    async def resolve_request(self, request: JobRequest) -> JobRequest:
        """Pass on; a success proves nothing (most requests resolve without a call)."""
        return await self._call(lambda: self._backend.resolve_request(request), proves=False)

    async def start_report(self, request: JobRequest) -> StartedReport:
        """Pass on."""
        return await self._call(lambda: self._backend.start_report(request))

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        """Pass on."""
        return await self._call(lambda: self._backend.report_ready(request, report_id))

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        """Pass on."""
        return await self._call(lambda: self._backend.download_report(request, report_id, dest_dir))

    def is_report_gone(self, error: UitpasError) -> bool:
        """Pass on."""
        return self._backend.is_report_gone(error)


class _FindingWatchdog(_Watchdog):
    """A watchdog over a backend that finds the report of a lost create: it passes that on."""

    async def find_started_report(
        self, request: JobRequest, since: datetime | None
    ) -> StartedReport | None:
        """Pass on (the orchestrator adopts what it finds instead of creating again)."""
        backend = self._backend
        assert isinstance(backend, FindsStartedReports)
        return await self._call(lambda: backend.find_started_report(request, since))


def _watchdog(source: ReportBackend | HasReportBackend, threshold: int) -> _Watchdog:
    """Return a watchdog over ``source`` that keeps every optional hook of its backend."""
    backend = as_backend(source)
    poll_policy = getattr(source, "poll_policy", None) or getattr(backend, "poll_policy", None)
    kind = _FindingWatchdog if isinstance(backend, FindsStartedReports) else _Watchdog
    return kind(backend, threshold, poll_policy=poll_policy)


def add_batch_arguments(
    fetch: argparse.ArgumentParser, *, out_dir: str, max_in_flight: int, rate_help: str
) -> None:
    """Add ``--out``, ``--journal``, ``--max-in-flight``, ``--rate`` and ``--json``."""
    fetch.add_argument(
        "--out",
        default=out_dir,
        metavar="DIR",
        help=f"destination directory: DIR/<owner>/<file>_<period> and DIR/{MANIFEST_NAME}, "
        "which every run into DIR adds to",
    )
    fetch.add_argument(
        "--journal", metavar="FILE", help=f"journal file (default: DIR/{JOURNAL_NAME})"
    )
    fetch.add_argument(
        "--max-in-flight",
        type=positive_int,
        default=max_in_flight,
        metavar="N",
        help="reports generating at once",
    )
    fetch.add_argument("--rate", type=positive_float, metavar="PER_SECOND", help=rate_help)
    fetch.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _done_earlier(journal: Path, provider: str, requests: Sequence[JobRequest]) -> int:
    """Count the requests the journal already holds as done (explicit periods only)."""
    if not journal.is_file():
        return 0
    with Journal(journal) as opened:
        entries = (opened.get(provider, request.job_key) for request in requests)
        return sum(1 for entry in entries if entry is not None and entry.state is JobState.DONE)


def _stop_line(error: UitpasError, count: int, hint: Hint) -> str:
    return (
        f"uitpas-async: stopped: the first {count} calls all failed with "
        f"{type(error).__name__} ({error.message}); {hint(error)}"
    )


async def fetch_batch(
    args: argparse.Namespace,
    connection: AbstractAsyncContextManager[tuple[ReportBackend | HasReportBackend, _Found]],
    requests_for: Callable[[_Found], Sequence[JobRequest]],
    *,
    record: Callable[[ReportResult], dict[str, Any]],
    note_duplicates: bool = True,
    hint: Hint = _default_hint,
    stop_after: int = STOP_AFTER_FAILURES,
    nested_summary: NestedSummary | None = None,
) -> int:
    """Run a batch with progress, merge the manifest, print the summary; return the status.

    ``args`` holds what :func:`add_batch_arguments` added. ``requests_for`` gets what
    the connection found (the sandbox's balies or accounts) and returns the requests;
    ``record`` turns a result into its manifest line. ``note_duplicates`` prints how
    many creates may have started a second report on the server. ``hint`` names the
    fix when the first ``stop_after`` calls show that nothing can work (exit 2).
    With ``--json``, ``nested_summary`` (``--summarize``) adds the totals of the
    reports under ``"summary"``, so stdout holds one JSON document.
    """
    out_dir = Path(args.out)
    journal = Path(args.journal) if args.journal else out_dir / JOURNAL_NAME
    manifest = out_dir / MANIFEST_NAME
    as_json = bool(getattr(args, "json", False))
    async with connection as (client, found):
        requests = requests_for(found)
        # A batch smaller than the threshold stops (with the hint) once every job failed so.
        stop_after = max(1, min(stop_after, len(requests)))
        watchdog = _watchdog(client, stop_after)
        earlier = await asyncio.to_thread(_done_earlier, journal, watchdog.provider, requests)
        if earlier:
            note(f"resumed: {earlier} done earlier, {len(requests) - earlier} to go")
        with Progress(len(requests), stream=sys.stderr) as progress:
            orchestrator = ReportOrchestrator(
                watchdog,
                out_dir,
                journal=journal,
                max_in_flight=args.max_in_flight,
                on_event=progress,
            )
            try:
                results = await orchestrator.run(requests)
            except (asyncio.CancelledError, KeyboardInterrupt):
                # What finished is on disk: the manifest says so, and a rerun resumes.
                done = [progress.finished[index] for index in sorted(progress.finished)]
                write_manifest(done, manifest, record, provider=watchdog.provider)
                # main() prints this once the interruption reaches it.
                args.interrupted = (
                    f"uitpas-async: interrupted: {sum(r.ok for r in done)} reports done so far "
                    f"are in {manifest}; run the same command again to resume"
                )
                raise
    write_manifest(results, manifest, record, provider=watchdog.provider)
    done_earlier = progress.done_earlier
    if watchdog.stopped_by is not None:
        if as_json:
            data = summary_data(results, done_earlier=done_earlier, manifest=manifest)
            data["stopped"] = _stop_line(watchdog.stopped_by, stop_after, hint)
            await _nest_summary(data, nested_summary)
            print_json(data)
        else:
            counts = Counter(result.state.value for result in results)
            note(f"done {counts['done']}, failed {counts['failed']}; manifest: {manifest}")
        say(_stop_line(watchdog.stopped_by, stop_after, hint), err=True)
        return EXIT_USAGE
    status = fetch_status(results)
    if as_json:
        data = summary_data(results, done_earlier=done_earlier, manifest=manifest)
        status = max(status, await _nest_summary(data, nested_summary))
        print_json(data)
    else:
        print_summary(results, sys.stdout, done_earlier=done_earlier)
    in_journal = len(orchestrator.journal_possible_duplicates)
    if note_duplicates and in_journal:
        # Shown by every run of the journal, not only the one that made them.
        note(
            f"note: {orchestrator.possible_duplicate_creates} create(s) in this run and "
            f"{in_journal} in all runs of journal {journal} may have started a second "
            "report on the server (journal table events, kind possible_duplicate_create)"
        )
    if not as_json:
        say(f"manifest: {manifest}")
    return status


async def _nest_summary(data: dict[str, Any], nested_summary: NestedSummary | None) -> int:
    """Add the totals under ``"summary"`` (in a thread: reading workbooks is CPU work)."""
    if nested_summary is None:
        return EXIT_OK
    status, data["summary"] = await asyncio.to_thread(nested_summary)
    return status
