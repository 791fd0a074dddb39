"""``python -m uitpas_async.v4.sandbox``: serve until killed, announcing itself in one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence

from uitpas_async.sandboxkit.config import DEFAULT_RATE_BURST
from uitpas_async.sandboxkit.loopback import DEFAULT_HOST
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
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument(
        "--organizers", type=int, default=_DEFAULTS.organizers, help="organizers with reports"
    )
    parser.add_argument(
        "--median", type=float, default=_DEFAULTS.generation_median, help="median generation s"
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
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=_DEFAULTS.token_lifetime,
        help="server seconds an access token lives",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
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
        organizers=args.organizers,
        generation_median=args.median,
        generation_sigma=args.sigma,
        time_scale=args.time_scale,
        rate_limit=args.rate,
        rate_burst=args.rate_burst,
        token_lifetime=args.token_lifetime,
        seed=args.seed,
    )
    sandbox = V4Sandbox(config, host=args.host, port=args.port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_cancelled(sandbox, announce))


if __name__ == "__main__":
    main()
