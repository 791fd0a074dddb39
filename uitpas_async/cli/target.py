"""Where a UiTPAS XML API command goes: the base URL, the credentials, or a sandbox instead.

The base URL is ``--base-url``, else ``--env``'s, else ``$UITPAS_BASE_URL``, else the
test environment's. The credentials are the four ``UITPAS_*`` variables when all are
set, else what ``uitpas-async login`` saved for that URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from uitpas_async.cli.args import add_sandbox_option, global_options
from uitpas_async.cli.output import note
from uitpas_async.cli.sandbox import (
    DEFAULT_SANDBOX_BALIES,
    SANDBOX_GENERATION_MEDIAN,
    SANDBOX_GENERATION_SIGMA,
    SANDBOX_POLL,
)
from uitpas_async.engine.config import Limits
from uitpas_async.engine.errors import AuthenticationError, ConfigurationError, UitpasError
from uitpas_async.xml_api.client import UitpasClient
from uitpas_async.xml_api.credential_store import resolve_credentials
from uitpas_async.xml_api.models import ENVIRONMENTS

__all__ = [
    "BASE_URL_VARIABLE",
    "base_url_of",
    "connection",
    "first_balie",
    "stop_hint",
    "uitpas_options",
]

#: Environment variable that points the commands at another UiTPAS base URL.
BASE_URL_VARIABLE = "UITPAS_BASE_URL"
#: The environment used when nothing names one.
DEFAULT_ENVIRONMENT = "test"

#: Balie keys and names (None when unknown).
Balies = list[tuple[str, str | None]]


def uitpas_options() -> argparse.ArgumentParser:
    """Return the parent parser of every UiTPAS command: where it goes, and -v/-q.

    A further UiTPAS API (``--api``) adds its choice to this group.
    """
    common = argparse.ArgumentParser(add_help=False, parents=[global_options()])
    target = common.add_argument_group("target")
    target.add_argument(
        "--env",
        choices=sorted(ENVIRONMENTS),
        help=f"UiTPAS environment (default: ${BASE_URL_VARIABLE}, else {DEFAULT_ENVIRONMENT})",
    )
    target.add_argument("--base-url", metavar="URL", help="API prefix URL, instead of an --env")
    add_sandbox_option(target, default=DEFAULT_SANDBOX_BALIES, what="balies")
    return common


def stop_hint(args: argparse.Namespace) -> Callable[[UitpasError], str]:
    """Return what to tell the operator when no call of a batch can succeed."""

    def hint(error: UitpasError) -> str:
        if isinstance(error, AuthenticationError):
            return (
                "the credentials were refused: check them with `uitpas-async whoami`, "
                "then run `uitpas-async login` (or fix the UITPAS_* variables)"
            )
        host = urlsplit(base_url_of(args)).hostname or base_url_of(args)
        return f"cannot reach {host}: check the network and the URL (--env, --base-url)"

    return hint


def base_url_of(args: argparse.Namespace) -> str:
    """Return the base URL the command's ``--base-url`` or ``--env`` (or the environment) names."""
    if args.base_url:
        return str(args.base_url)
    if args.env:
        return ENVIRONMENTS[args.env]
    return os.environ.get(BASE_URL_VARIABLE) or ENVIRONMENTS[DEFAULT_ENVIRONMENT]


@contextlib.asynccontextmanager
async def connection(
    args: argparse.Namespace, *, sandbox_balies: int = DEFAULT_SANDBOX_BALIES
) -> AsyncIterator[tuple[UitpasClient, Balies]]:
    """Yield a client (and the sandbox's balies, if any) for the command's target."""
    limits = Limits(rate_limit=getattr(args, "rate", None))
    if args.sandbox is None:
        url = base_url_of(args)
        credentials = resolve_credentials(url).credentials
        async with UitpasClient(url, credentials, limits=limits) as client:
            yield client, []
        return
    from uitpas_async.xml_api.sandbox import Sandbox, SandboxConfig

    count = args.sandbox if isinstance(args.sandbox, int) and args.sandbox > 0 else sandbox_balies
    config = SandboxConfig(
        balies=count,
        generation_median=SANDBOX_GENERATION_MEDIAN,
        generation_sigma=SANDBOX_GENERATION_SIGMA,
    )
    async with (
        Sandbox(config) as sandbox,
        UitpasClient(
            sandbox.base_url, sandbox.credentials, limits=limits, poll=SANDBOX_POLL
        ) as client,
    ):
        note(f"sandbox: {sandbox.base_url} with {len(sandbox.balies)} balies")
        yield client, [(balie.key, balie.name) for balie in sandbox.balies]


def first_balie(args: argparse.Namespace, sandbox_balies: Balies) -> str:
    """Return the first ``--balie``, else the sandbox's first balie.

    Raises:
        ConfigurationError: neither names a balie.
    """
    if args.balie:
        return str(args.balie[0] if isinstance(args.balie, list) else args.balie)
    if sandbox_balies:
        return sandbox_balies[0][0]
    raise ConfigurationError("name a balie with --balie KEY")
