"""``uitpas-async sandbox``, and what every ``--sandbox`` run of the command shares.

The sandboxes are imported only when a command runs against one, so the other
commands start without loading them.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from uitpas_async.cli.args import (
    global_options,
    non_negative_float,
    port_number,
    positive_float,
    sandbox_count,
)
from uitpas_async.cli.output import EXIT_OK, note, say
from uitpas_async.engine.config import PollPolicy

__all__ = [
    "DEFAULT_SANDBOX_BALIES",
    "SANDBOX_GENERATION_MEDIAN",
    "SANDBOX_GENERATION_SIGMA",
    "SANDBOX_POLL",
    "add_commands",
]

#: Balies (or Finam accounts) of a sandbox when ``--sandbox`` names no number.
DEFAULT_SANDBOX_BALIES = 20
#: Sandbox reports take about this long, so a demo run finishes in seconds.
SANDBOX_GENERATION_MEDIAN = 1.0
SANDBOX_GENERATION_SIGMA = 0.5
SANDBOX_POLL = PollPolicy(initial_delay=0.5, multiplier=1.5, max_interval=5.0, timeout=300.0)
#: What ``uitpas-async sandbox`` serves unless told otherwise.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_SERVE_MEDIAN = 5.0


async def _cmd_sandbox(args: argparse.Namespace) -> int:
    from uitpas_async.xml_api.sandbox import SandboxConfig, serve

    config = SandboxConfig(
        balies=args.balies, generation_median=args.median, generation_sigma=args.sigma
    )

    def ready(sandbox: Any) -> None:
        credentials = sandbox.credentials
        # Lines a shell can run as they are: paste them, or eval "$(...)" them.
        say(f"export UITPAS_BASE_URL={shlex.quote(sandbox.base_url)}")
        say(f"export UITPAS_CONSUMER_KEY={shlex.quote(credentials.consumer_key)}")
        say(f"export UITPAS_CONSUMER_SECRET={shlex.quote(credentials.consumer_secret)}")
        say(f"export UITPAS_TOKEN={shlex.quote(credentials.token)}")
        say(f"export UITPAS_TOKEN_SECRET={shlex.quote(credentials.token_secret)}")
        say("# balies:")
        for balie in sandbox.balies:
            say(f"#   {balie.key}  {balie.name}")
        note("serving until interrupted (Ctrl-C)")

    await serve(config, args.host, args.port, ready=ready)
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sandbox`` to the main command's subparsers."""
    sandbox = commands.add_parser(
        "sandbox",
        parents=[global_options()],
        help="serve the sandbox and print its credentials",
        description="Serve a UiTPAS sandbox on this machine until Ctrl-C, and print "
        "shell lines that point every other command at it.",
        epilog='example:\n  eval "$(uitpas-async sandbox --port 8080 | grep ^export)"\n',
    )
    sandbox.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    sandbox.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="port")
    sandbox.add_argument(
        "--balies", type=sandbox_count, default=DEFAULT_SANDBOX_BALIES, metavar="N", help="balies"
    )
    sandbox.add_argument(
        "--median",
        type=positive_float,
        default=DEFAULT_SERVE_MEDIAN,
        metavar="SECONDS",
        help="median generation time of a report",
    )
    sandbox.add_argument(
        "--sigma",
        type=non_negative_float,
        default=0.5,
        help="lognormal spread of the generation time",
    )
    sandbox.set_defaults(
        handler=_cmd_sandbox, sandbox=None, interrupted="uitpas-async: sandbox stopped"
    )
