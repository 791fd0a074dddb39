"""``python -m uitpas_async.sandbox``: serve until killed, announcing itself in one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence

from uitpas_async.xml_api.sandbox.config import (
    DEFAULT_BALIE_COUNT,
    DEFAULT_GENERATION_MEDIAN,
    DEFAULT_RATE_BURST,
    SandboxConfig,
)
from uitpas_async.xml_api.sandbox.server import DEFAULT_HOST, Sandbox, serve

__all__ = ["announce", "main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m uitpas_async.sandbox",
        description="Serve a local imitation of the UiTPAS XML API until killed.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument("--balies", type=int, default=DEFAULT_BALIE_COUNT, help="balie count")
    parser.add_argument(
        "--median", type=float, default=DEFAULT_GENERATION_MEDIAN, help="median generation s"
    )
    parser.add_argument("--sigma", type=float, default=0.0, help="lognormal sigma")
    parser.add_argument("--time-scale", type=float, default=1.0, help="server time multiplier")
    parser.add_argument("--rate", type=float, default=None, help="requests per second limit")
    parser.add_argument(
        "--rate-burst",
        type=float,
        default=DEFAULT_RATE_BURST,
        help="requests admitted back to back under --rate (token-bucket capacity)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
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
    config = SandboxConfig(
        balies=args.balies,
        generation_median=args.median,
        generation_sigma=args.sigma,
        time_scale=args.time_scale,
        rate_limit=args.rate,
        rate_burst=args.rate_burst,
        seed=args.seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, args.host, args.port, ready=announce))


if __name__ == "__main__":
    main()
