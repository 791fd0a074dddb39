"""A provider's ``reports fetch``: the options it takes and the run, shared by every provider.

A fetch command adds its own options (which balies or accounts, which period), then
:func:`add_batch_arguments`; its handler builds its requests and a manifest record
and hands the rest to :func:`fetch_batch`::

    async def _cmd_fetch(args):
        return await fetch_batch(
            args, connection(args), lambda found: requests(args, found), record=record
        )
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from uitpas_async.cli.args import positive_float, positive_int
from uitpas_async.cli.output import (
    MANIFEST_NAME,
    Progress,
    fetch_status,
    print_summary,
    say,
    write_manifest,
)
from uitpas_async.engine.backend import HasReportBackend, JobRequest, ReportBackend
from uitpas_async.engine.orchestrator import ReportOrchestrator, ReportResult

__all__ = ["JOURNAL_NAME", "add_batch_arguments", "fetch_batch"]

#: The journal's file in OUT unless ``--journal`` names another.
JOURNAL_NAME = "journal.sqlite"

#: What a connection yields besides the client: the sandbox's balies or accounts, if any.
_Found = TypeVar("_Found")


def add_batch_arguments(
    fetch: argparse.ArgumentParser, *, out_dir: str, max_in_flight: int, rate_help: str
) -> None:
    """Add ``--out``, ``--journal``, ``--max-in-flight`` and ``--rate`` to a fetch command."""
    fetch.add_argument("--out", default=out_dir, help="destination directory")
    fetch.add_argument("--journal", help=f"journal file (default: OUT/{JOURNAL_NAME})")
    fetch.add_argument(
        "--max-in-flight",
        type=positive_int,
        default=max_in_flight,
        help="reports generating at once",
    )
    fetch.add_argument("--rate", type=positive_float, help=rate_help)


async def fetch_batch(
    args: argparse.Namespace,
    connection: AbstractAsyncContextManager[tuple[ReportBackend | HasReportBackend, _Found]],
    requests_for: Callable[[_Found], Sequence[JobRequest]],
    *,
    record: Callable[[ReportResult], dict[str, Any]],
    note_duplicates: bool = True,
) -> int:
    """Run a batch with progress, then write the manifest, print the summary; return the status.

    ``args`` holds what :func:`add_batch_arguments` added. ``requests_for`` gets what
    the connection found (the sandbox's balies or accounts) and returns the requests;
    ``record`` turns a result into its manifest line. ``note_duplicates`` prints how
    many creates may have started a second report on the server.
    """
    out_dir = Path(args.out)
    journal = Path(args.journal) if args.journal else out_dir / JOURNAL_NAME
    async with connection as (client, found):
        requests = requests_for(found)
        with Progress(len(requests), stream=sys.stderr) as progress:
            orchestrator = ReportOrchestrator(
                client,
                out_dir,
                journal=journal,
                max_in_flight=args.max_in_flight,
                on_event=progress,
            )
            results = await orchestrator.run(requests)
    manifest = out_dir / MANIFEST_NAME
    write_manifest(results, manifest, record)
    print_summary(results, sys.stdout)
    in_journal = len(orchestrator.journal_possible_duplicates)
    if note_duplicates and in_journal:
        # Shown by every run of the journal, not only the one that made them.
        say(
            f"note: {orchestrator.possible_duplicate_creates} create(s) in this run and "
            f"{in_journal} in all runs of journal {journal} may have started a second "
            "report on the server (journal table events, kind possible_duplicate_create)"
        )
    say(f"manifest: {manifest}")
    return fetch_status(results)
