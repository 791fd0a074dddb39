"""``python -m benchmarks.row1 [--runs N] [--iterations N] | --instructions [--calls N]``.

Row 1 alone, several times. Each run is a fresh child process measuring exactly
what the full harness measures for row 1 (``child._status_call_cpu``), against
one sandbox; the spread of the runs shows how much of a figure is the machine.

``--instructions`` measures instead, under valgrind's callgrind, the instructions
of a call and of each of its pieces, and the floor of what must stay
(:mod:`benchmarks.instructions`); it is slow, and no part of the full harness.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

from . import instructions
from .runner import CONCURRENCY, PROFILES, SEED, _child
from .sandbox_process import running_sandbox

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run row 1 ``--runs`` times and print each ratio and the spread."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.row1", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="fresh child processes (default 5)")
    parser.add_argument(
        "--iterations",
        type=int,
        default=PROFILES["full"].call_iterations,
        help="calls of each kind per run (default: the full profile's)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per call and per piece under callgrind instead (slow)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=instructions.DEFAULT_CALLS,
        help="with --instructions: calls of each kind in the shorter run",
    )
    args = parser.parse_args(argv)
    if args.instructions:
        return instructions.main(["--calls", str(args.calls)])
    ratios = []
    with running_sandbox(
        balies=3, median=0.0, sigma=0.0, time_scale=PROFILES["full"].time_scale, seed=SEED
    ) as info:
        for run in range(args.runs):
            result = _child(
                {
                    "kind": "status_call",
                    "sandbox": info.as_child_input(),
                    "call_iterations": args.iterations,
                    "concurrency": CONCURRENCY,
                }
            )
            ratios.append(result["ratio"])
            print(
                f"run {run + 1}: {result['ratio']:.3f}x "
                f"({result['signed_us']:.0f} vs {result['bare_us']:.0f} us/call)",
                flush=True,
            )
    print(
        f"row 1 over {args.runs} runs: median {statistics.median(ratios):.3f}x, "
        f"min {min(ratios):.3f}x, max {max(ratios):.3f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
