"""What every ``python -m <provider>.sandbox`` shares: the load options and the config they make."""

from __future__ import annotations

import argparse
from typing import Any

from uitpas_async.sandboxkit.config import DEFAULT_RATE_BURST
from uitpas_async.sandboxkit.loopback import DEFAULT_HOST

__all__ = ["add_load_arguments", "load_config"]


def add_load_arguments(parser: argparse.ArgumentParser, *, median: float) -> None:
    """Add ``--host``, ``--port``, ``--median``, ``--sigma``, ``--time-scale``, ``--rate``,
    ``--rate-burst`` and ``--seed``."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument("--median", type=float, default=median, help="median generation s")
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


def load_config(args: argparse.Namespace) -> dict[str, Any]:
    """Return the ``BaseSandboxConfig`` fields that :func:`add_load_arguments` read."""
    return {
        "generation_median": args.median,
        "generation_sigma": args.sigma,
        "time_scale": args.time_scale,
        "rate_limit": args.rate,
        "rate_burst": args.rate_burst,
        "seed": args.seed,
    }
