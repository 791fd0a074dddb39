"""Issue 12: the UiTPAS API 4.0 scenario: ``UitpasV4Client`` through ``ReportOrchestrator``.

The same load as rows 3 to 6 (N reports, lognormal 20 s median, sigma 0.5, the same
seed), served by the 4.0 sandbox (``python -m uitpas_async.v4.sandbox``) in its own
process, with bearer tokens that expire during the batch so renewals are measured.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from uitpas_async.engine.config import Limits
from uitpas_async.v4 import ClientCredentials, UitpasV4Client

from .child import END, START, V4_CLIENT
from .metrics import batch_figures
from .runner import (
    CONCURRENCY,
    REFERENCE_MEDIAN,
    REFERENCE_SIGMA,
    RTT_SAMPLES,
    SEED,
    Profile,
    _child,
    _expected_bound,
)
from .sandbox_process import V4SandboxInfo, fetch_stats, running_v4_sandbox
from .targets import LAG_P95, LIMITED_MAKESPAN_OVER_LB, MAKESPAN_OVER_LB, POLLS_MEDIAN

__all__ = ["V4_TOKEN_LIFETIME", "render_v4", "run_v4", "v4_rows"]

#: Server seconds an access token lives: a few times within a batch (the real
#: lifetime is the authorization server's choice; short here to measure renewals).
V4_TOKEN_LIFETIME = 60.0
_ROW = 9


def _client(info: V4SandboxInfo, rate: float | None) -> UitpasV4Client:
    creds = info.credentials
    return UitpasV4Client(
        ClientCredentials(creds["client_id"], creds["client_secret"]),
        base_url=info.base_url,
        token_url=info.token_url,
        limits=Limits(rate_limit=rate),
    )


async def _rtt(info: V4SandboxInfo, organizer: str, rate: float | None) -> float:
    """Return the median wall time of a few status calls (token already held)."""
    async with _client(info, rate) as client:
        report = await client.create_financial_report(organizer, START, END)
        samples = []
        for _ in range(RTT_SAMPLES):
            began = time.perf_counter()
            await client.get_financial_report(organizer, report.id)
            samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def run_v4_batch(profile: Profile, *, rate: float | None, time_scale: float) -> dict[str, Any]:
    """Start a 4.0 sandbox, measure our 4.0 client fetching N reports, return every figure."""
    jobs = profile.jobs
    with running_v4_sandbox(
        organizers=jobs + 1,
        median=REFERENCE_MEDIAN,
        sigma=REFERENCE_SIGMA,
        time_scale=time_scale,
        token_lifetime=V4_TOKEN_LIFETIME,
        rate=rate,
        seed=SEED,
    ) as info:
        probe, organizers = info.organizers[0], list(info.organizers[1:])
        rtt = asyncio.run(_rtt(info, probe, rate))
        before = fetch_stats(info.root_url)
        expected = _expected_bound(REFERENCE_MEDIAN * time_scale, jobs, rate)
        deadline = profile.deadline_factor * expected + 10.0
        result = _child(
            {
                "kind": "batch",
                "client": V4_CLIENT,
                "sandbox": info.as_child_input(),
                "balies": organizers,
                "time_scale": time_scale,
                "rate": rate,
                "concurrency": CONCURRENCY,
                "deadline": deadline,
                "poll_timeout": deadline,
            }
        )
        after = fetch_stats(info.root_url)
    result["rtt"] = rtt
    result["deadline"] = deadline
    result["time_scale"] = time_scale
    result["token_lifetime_real_s"] = V4_TOKEN_LIFETIME * time_scale
    result.update(
        batch_figures(before, after, organizers, rtt=rtt, rate=rate, makespan=result["makespan"])
    )
    result["tokens_issued"] = after["tokens_issued"] - before["tokens_issued"]
    result["client_cpu_share"] = result["cpu"] / result["makespan"]
    return result


def run_v4(profile: Profile, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the 4.0 scenario without and with a rate limit (time scales as rows 3-5 and 6)."""
    data: dict[str, Any] = {"token_lifetime_server_s": V4_TOKEN_LIFETIME}
    for key, rate, scale in (
        ("no_rate_limit", None, profile.unlimited_time_scale),
        ("rate_limited", profile.rate, profile.time_scale),
    ):
        say(f"UiTPAS API 4.0, {key.replace('_', ' ')}, N={profile.jobs}")
        run = run_v4_batch(profile, rate=rate, time_scale=scale)
        data[key] = run
        say(
            f"  {V4_CLIENT}: makespan {run['makespan']:.1f}s, LB {run['lower_bound']:.1f}s, "
            f"{run['requests']} requests, {run.get('token_renewals')} token renewals, "
            f"{run['rate_limited_429']} x 429"
            + (" (cut off at the deadline)" if run["timed_out"] else "")
        )
    return data


def _f(value: float | None, digits: int) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def v4_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Return row 9 of the table: the 4.0 batch, judged on rows 3-6's targets."""
    v4 = data.get("v4")
    if not v4:
        return []
    free, limited = v4["no_rate_limit"], v4["rate_limited"]
    figure = (
        f"makespan/LB {_f(free['makespan_over_lb'], 3)}, lag p95 "
        f"{_f(free['lag_p95'] * 100, 1)}%, polls median {_f(free['polls_median'], 1)}, "
        f"{_f(free['requests_per_job'], 1)} req/job, {free.get('token_renewals')} renewals; "
        f"rate limited: makespan/LB {_f(limited['makespan_over_lb'], 3)}, "
        f"{limited['rate_limited_429']} x 429"
    )
    ok = (
        free["makespan_over_lb"] <= MAKESPAN_OVER_LB
        and free["lag_p95"] <= LAG_P95
        and free["polls_median"] <= POLLS_MEDIAN
        and limited["makespan_over_lb"] <= LIMITED_MAKESPAN_OVER_LB
        and limited["rate_limited_429"] == 0
        and not free["timed_out"]
        and not limited["timed_out"]
    )
    return [
        {
            "row": _ROW,
            "scenario": f"UiTPAS API 4.0: N={free['jobs']}, UitpasV4Client through "
            "ReportOrchestrator (rows 3-6's load; tokens expire mid-batch)",
            "figure": figure,
            "target": "rows 3-6's",
            "ok": ok,
        }
    ]


def render_v4(data: dict[str, Any]) -> list[str]:
    """Return the markdown of the 4.0 scenario's table (nothing when it was not run)."""
    v4 = data.get("v4")
    if not v4:
        return []
    lines = [
        "### Row 9: UiTPAS API 4.0 (`UitpasV4Client`, bearer tokens)",
        "",
        "| scenario | time scale | makespan (s) | makespan / LB | lag p95 | polls median "
        "| requests/job | token renewals | 401s | 429s | client CPU share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, label in (("no_rate_limit", "no rate limit"), ("rate_limited", "rate limited")):
        run = v4[key]
        cut = " (cut off)" if run["timed_out"] else ""
        lines.append(
            f"| {label}{cut} | {run['time_scale']:g} | {_f(run['makespan'], 1)} | "
            f"{_f(run['makespan_over_lb'], 3)} | {_f(run['lag_p95'] * 100, 1)}% | "
            f"{_f(run['polls_median'], 1)} | {_f(run['requests_per_job'], 2)} | "
            f"{run.get('token_renewals')} | {run['auth_failures']} | "
            f"{run['rate_limited_429']} | {_f(run['client_cpu_share'], 2)} |"
        )
    lifetime = v4["token_lifetime_server_s"]
    lines += [
        "",
        f"Tokens live {lifetime:g} server seconds (times the time scale in real seconds), "
        "so the batch renews them while it runs; `token renewals` counts the client's "
        "token requests (the first included), `401s` the sandbox's refusals. Requests per "
        "job include the token requests.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.v4 [--quick | --smoke]``: the 4.0 scenario alone, as markdown."""
    import argparse
    import json
    import sys

    from .runner import PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.v4", description="Run only the UiTPAS API 4.0 scenario."
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="N = 100")
    size.add_argument("--smoke", action="store_true", help="tiny N")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    data = {"v4": run_v4(profile, lambda text: print(text, file=sys.stderr, flush=True))}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
    rows = v4_rows(data)
    print("\n".join(render_v4(data)))
    for row in rows:
        print(f"| {row['row']} | {row['scenario']} | {row['figure']} | {row['target']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
