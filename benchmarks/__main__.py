"""``python -m benchmarks [--quick | --smoke] [--grid] [--json PATH] [--no-readme]``."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import grid, report, v4
from .runner import PROFILES, profile_ours, run_all

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure uitpas_async against the physical limit and against baselines.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small N, well under a minute")
    size.add_argument("--smoke", action="store_true", help="tiny N: proves the harness works")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the JSON goes")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not rewrite benchmarks/README.md's results"
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the cProfile re-runs of missed batch rows"
    )
    parser.add_argument(
        "--grid",
        action="store_true",
        help="also run issue 15's grid: 8 batches x 4 clients (full size: about 40 minutes)",
    )

    return parser.parse_args(argv)


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the profile, write the JSON and the README section; return an exit code."""
    args = parse_args(argv)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = PROFILES[name]

    began = time.perf_counter()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    data = run_all(profile, say)
    # Issue 15: single reports and the second run with history always (they are short);
    # the grid when asked (and always at smoke size, so the tests run its code).
    data["singles"] = grid.run_singles(profile, say)
    data["history"] = grid.run_history(profile, say)
    # Issue 12: the UiTPAS API 4.0 scenario, at every size.
    data["v4"] = v4.run_v4(profile, say)
    if args.grid or args.smoke:
        capacity = data["micro"]["capacity"]["requests_per_s"]
        data["grid"] = grid.run_grid(profile, say, capacity=capacity)
    data["elapsed_s"] = time.perf_counter() - began
    data["machine"] = _machine()
    data["command"] = shlex.join(["python", "-m", "benchmarks", *(argv or sys.argv[1:])])
    data["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    data["rows"] = report.rows(data)
    data["profiles"] = {"row 1: signed status calls": data["micro"]["status_call"]["profile"]}
    missed = {row["row"] for row in data["rows"] if row["ok"] is False}
    if profile.profile_misses and not args.no_profile:
        if missed & {3, 4, 5}:
            say("profiling our client: no rate limit")
            data["profiles"]["rows 3-5: our client, no rate limit"] = profile_ours(
                profile, rate=None
            )["profile"]
        if 6 in missed:
            say("profiling our client: rate limited")
            data["profiles"]["row 6: our client, rate limited"] = profile_ours(
                profile, rate=profile.rate
            )["profile"]
    data["analysis"] = report.analysis(data)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    markdown = report.render_markdown(data)
    if not args.no_readme:
        report.update_readme(markdown)
    print(markdown)
    say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
