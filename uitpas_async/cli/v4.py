"""``--api 4``: ``periods``, ``report``, ``reports fetch`` and ``login`` on UiTPAS API 4.0.

The API is ``--base-url``, else ``$UITPAS_BASE_URL``, else ``--env``'s (test by
default); the token endpoint ``--token-url``, else ``$UITPAS_TOKEN_URL``, else the
environment's. Credentials: ``UITPAS_CLIENT_ID``/``UITPAS_CLIENT_SECRET``, else
what ``login --api 4`` saved. ``reports fetch`` takes ``--organizer ID``
(repeatable) or ``--organizers FILE``; with neither, every organizer that
``/permissions`` grants ORGANIZERS_REPORTS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from uitpas_async.cli.args import parse_period, period_request, read_key_file
from uitpas_async.cli.batch import NestedSummary, fetch_batch
from uitpas_async.cli.output import EXIT_OK, result_record, say
from uitpas_async.cli.sandbox import (
    DEFAULT_SANDBOX_BALIES,
    SANDBOX_GENERATION_MEDIAN,
    SANDBOX_GENERATION_SIGMA,
    SANDBOX_POLL,
)
from uitpas_async.engine.config import Limits
from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.engine.orchestrator import ReportResult
from uitpas_async.v4.client import UitpasV4Client
from uitpas_async.v4.credential_store import resolve_credentials, save_credentials
from uitpas_async.v4.models import (
    CLIENT_ID_VARIABLE,
    CLIENT_SECRET_VARIABLE,
    ClientCredentials,
    OrganizerReportRequest,
)
from uitpas_async.v4.protocol import endpoints_for

__all__ = [
    "API_CHOICES",
    "TOKEN_URL_VARIABLE",
    "add_api_arguments",
    "add_organizer_arguments",
    "cmd_fetch",
    "cmd_login",
    "cmd_periods",
    "cmd_report",
    "uses_v4",
]

#: ``--api``: the XML API (the default) or API 4.0.
API_CHOICES = ("xml", "4")
BASE_URL_VARIABLE = "UITPAS_BASE_URL"
TOKEN_URL_VARIABLE = "UITPAS_TOKEN_URL"  # noqa: S105 (a variable name)
_ORGANIZER_HEADERS = ("organizer", "organizer_id", "id")
#: Longest client id or secret line read from standard input.
MAX_ANSWER_CHARS = 4096

#: Organizers (id, name or None).
Organizers = list[tuple[str, str | None]]


def uses_v4(args: argparse.Namespace) -> bool:
    """Return whether the command was asked for API 4.0."""
    return getattr(args, "api", "xml") == "4"


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--api`` and ``--token-url``."""
    parser.add_argument(
        "--api", choices=API_CHOICES, default="xml", help="XML API (default) or API 4.0"
    )
    parser.add_argument("--token-url", help="API 4.0 token endpoint (default: $UITPAS_TOKEN_URL)")


def add_organizer_arguments(parser: argparse.ArgumentParser, *, many: bool) -> None:
    """Add ``--organizer`` (and ``--organizers FILE`` for batches)."""
    parser.add_argument("--organizer", action="append", help="API 4.0 organizer id")
    if many:
        parser.add_argument("--organizers", help="file of organizer ids: one a line, or id,name")


def _endpoints(args: argparse.Namespace) -> tuple[str, str]:
    base = args.base_url or os.environ.get(BASE_URL_VARIABLE) or None
    token = args.token_url or os.environ.get(TOKEN_URL_VARIABLE) or None
    endpoints = endpoints_for(args.env or "test", base_url=base, token_url=token)
    return endpoints.base_url, endpoints.token_url


@contextlib.asynccontextmanager
async def connection(args: argparse.Namespace) -> AsyncIterator[tuple[UitpasV4Client, Organizers]]:
    """Yield a client and the organizers it may fetch reports for (asked only when needed)."""
    limits = Limits(rate_limit=getattr(args, "rate", None))
    named = bool(getattr(args, "organizer", None) or getattr(args, "organizers", None))
    if args.sandbox is None:
        base_url, token_url = _endpoints(args)
        credentials = resolve_credentials(base_url)
        async with UitpasV4Client(
            credentials, base_url=base_url, token_url=token_url, limits=limits
        ) as client:
            yield client, [] if named else await _report_organizers(client)
        return
    from uitpas_async.v4.sandbox import V4Sandbox, V4SandboxConfig

    count = args.sandbox if isinstance(args.sandbox, int) and args.sandbox > 0 else None
    config = V4SandboxConfig(
        organizers=count or DEFAULT_SANDBOX_BALIES,
        generation_median=SANDBOX_GENERATION_MEDIAN,
        generation_sigma=SANDBOX_GENERATION_SIGMA,
    )
    async with V4Sandbox(config) as sandbox:
        credentials = ClientCredentials(config.client_id, config.client_secret)
        async with UitpasV4Client(
            credentials,
            base_url=sandbox.base_url,
            token_url=sandbox.token_url,
            limits=limits,
            poll=SANDBOX_POLL,
        ) as client:
            say(f"sandbox: {sandbox.base_url} (UiTPAS API 4.0)", err=True)
            yield client, [] if named else await _report_organizers(client)


async def _report_organizers(client: UitpasV4Client) -> Organizers:
    return [(o.id, o.name) for o in await client.get_report_organizers()]


def _first_organizer(args: argparse.Namespace, found: Organizers) -> str:
    if args.organizer:
        return str(args.organizer[0])
    if found:
        return found[0][0]
    raise ConfigurationError("name an organizer with --organizer ID")


def _requests(args: argparse.Namespace, found: Organizers) -> list[OrganizerReportRequest]:
    organizers: Organizers = [(key, None) for key in args.organizer or []]
    if args.organizers:
        rows = read_key_file(
            Path(args.organizers),
            kind="organizers",
            noun="organizer ids",
            headers=_ORGANIZER_HEADERS,
        )
        organizers += [
            (cells[0], cells[1] if len(cells) > 1 and cells[1] else None) for cells in rows
        ]
    if not organizers:
        organizers = found
    if not organizers:
        raise ConfigurationError("no organizer with ORGANIZERS_REPORTS; name them with --organizer")
    period = parse_period(args.period)
    seen: dict[str, str | None] = {}
    for key, name in organizers:
        seen.setdefault(key, name)
    if period is None:
        return [
            OrganizerReportRequest(key, period="latest", name=name) for key, name in seen.items()
        ]
    return [
        OrganizerReportRequest(key, period[0], period[1], name=name) for key, name in seen.items()
    ]


def manifest_record(result: ReportResult) -> dict[str, Any]:
    """Return the manifest line of one API 4.0 result (``balie`` holds the organizer id)."""
    request = result.request
    return {"balie": request.organizer_id, "name": request.name, **result_record(result)}


async def cmd_periods(args: argparse.Namespace) -> int:
    """``periods --api 4``: an organizer's suggested periods."""
    async with connection(args) as (client, found):
        periods = await client.get_financial_report_periods(_first_organizer(args, found))
    for period in periods:
        say(f"{period.start.isoformat()}  {period.end.isoformat()}")
    return EXIT_OK


async def cmd_report(args: argparse.Namespace) -> int:
    """``report --api 4``: create, poll and download one organizer's report."""
    period = parse_period(args.period)
    async with connection(args) as (client, found):
        organizer = _first_organizer(args, found)
        request = period_request(OrganizerReportRequest, organizer, period)
        resolved = await client.report_backend().resolve_request(request)
        assert isinstance(resolved, OrganizerReportRequest)
        assert resolved.start is not None
        assert resolved.end is not None
        report = await client.fetch_financial_report(
            organizer, resolved.start, resolved.end, Path(args.out)
        )
    say(f"{report.path}  {report.size} bytes  sha256 {report.sha256}")
    return EXIT_OK


async def cmd_fetch(args: argparse.Namespace, *, nested_summary: NestedSummary | None) -> int:
    """``reports fetch --api 4``: every organizer's report, resumably."""
    return await fetch_batch(
        args,
        connection(args),
        lambda found: _requests(args, found),
        record=manifest_record,
        nested_summary=nested_summary,
    )


def _ask(prompt: str, *, secret: bool) -> str:
    """Ask on the terminal (the secret without echo), or read a line of piped stdin."""
    if sys.stdin.isatty():
        if secret:
            return getpass.getpass(prompt).strip()
        sys.stderr.write(prompt)
        sys.stderr.flush()
    # No terminal (a pipe, a here-document): one line each, nothing echoed or prompted.
    line = sys.stdin.readline(MAX_ANSWER_CHARS)
    if not line.strip():
        what = "client secret" if secret else "client id"
        raise ConfigurationError(
            f"no {what} given: type it when asked, pipe it on standard input, or set "
            f"{CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE}"
        )
    return line.strip()


def _login_credentials() -> ClientCredentials:
    """Return the client id and secret from the environment when both are set, else ask."""
    if os.environ.get(CLIENT_ID_VARIABLE) and os.environ.get(CLIENT_SECRET_VARIABLE):
        return ClientCredentials.from_env()
    client_id = _ask("UiTPAS 4.0 client id: ", secret=False)
    return ClientCredentials(client_id, _ask("client secret (hidden): ", secret=True))


async def cmd_login(args: argparse.Namespace) -> int:
    """``login --api 4``: take the client id and secret, and save them (no browser)."""
    base_url, _ = _endpoints(args)
    credentials = await asyncio.to_thread(_login_credentials)
    path = save_credentials(base_url, credentials)
    say(f"saved the client credentials for {base_url} in {path}")
    return EXIT_OK
