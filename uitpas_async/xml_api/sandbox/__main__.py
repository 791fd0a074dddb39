"""``python -m uitpas_async.sandbox``: serve until killed, announcing itself in one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence

from uitpas_async.sandboxkit.command import add_load_arguments, load_config
from uitpas_async.xml_api.sandbox.config import (
    DEFAULT_BALIE_COUNT,
    DEFAULT_GENERATION_MEDIAN,
    SandboxConfig,
)
from uitpas_async.xml_api.sandbox.server import Sandbox, serve

__all__ = ["announce", "main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m uitpas_async.sandbox",
        description="Serve a local imitation of the UiTPAS XML API until killed.",
    )
    add_load_arguments(parser, median=DEFAULT_GENERATION_MEDIAN)
    parser.add_argument("--balies", type=int, default=DEFAULT_BALIE_COUNT, help="balie count")
    return parser.parse_args(argv)


def announce(sandbox: Sandbox) -> None:
    """Print the one JSON line benchmarks wait for (the sandbox's own, public credentials)."""
    creds = sandbox.credentials
    line = {
        "base_url": sandbox.base_url,
        "consumer_key": creds.consumer_key,
        "consumer_secret": creds.consumer_secret,
        "token": creds.token,
        "token_secret": creds.token_secret,
        "balies": [[balie.key, balie.name] for balie in sandbox.balies],
    }
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the sandbox from the command line."""
    args = parse_args(argv)
    config = SandboxConfig(balies=args.balies, **load_config(args))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, args.host, args.port, ready=announce))


if __name__ == "__main__":
    main()
