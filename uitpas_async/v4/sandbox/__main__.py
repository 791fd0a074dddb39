"""``python -m uitpas_async.v4.sandbox``: serve until killed, announcing itself in one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence

from uitpas_async.sandboxkit.command import add_load_arguments, load_config
from uitpas_async.sandboxkit.server import serve_until_cancelled
from uitpas_async.v4.sandbox.config import V4SandboxConfig
from uitpas_async.v4.sandbox.server import V4Sandbox

__all__ = ["announce", "main", "parse_args"]

_DEFAULTS = V4SandboxConfig()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m uitpas_async.v4.sandbox",
        description="Serve a local imitation of UiTPAS API 4.0 until killed.",
    )
    add_load_arguments(parser, median=_DEFAULTS.generation_median)
    parser.add_argument(
        "--organizers", type=int, default=_DEFAULTS.organizers, help="organizers with reports"
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=_DEFAULTS.token_lifetime,
        help="server seconds an access token lives",
    )
    return parser.parse_args(argv)


def announce(sandbox: V4Sandbox) -> None:
    """Print the one JSON line benchmarks wait for (the sandbox's own, public credentials)."""
    line = {
        "base_url": sandbox.base_url,
        "token_url": sandbox.token_url,
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "organizers": sandbox.organizer_ids(),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sandbox from the command line."""
    args = parse_args(argv)
    config = V4SandboxConfig(
        organizers=args.organizers, token_lifetime=args.token_lifetime, **load_config(args)
    )
    sandbox = V4Sandbox(config, host=args.host, port=args.port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_cancelled(sandbox, announce))


if __name__ == "__main__":
    main()
