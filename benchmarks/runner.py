"""Run every scenario: a sandbox and a client process per measurement, figures in the parent."""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import attrs

from uitpas_async import Credentials, Limits, UitpasClient

from .baselines import requests_available
from .metrics import batch_figures, slope
from .sandbox_process import SandboxInfo, fetch_stats, running_sandbox

__all__ = ["PROFILES", "Profile", "run_all"]

REPO_ROOT = Path(__file__).resolve().parent.parent
START, END = date(2024, 1, 1), date(2024, 3, 31)
#: The issue's reference load: reports take a 20 s median (sigma 0.5) to generate ...
REFERENCE_MEDIAN = 20.0
REFERENCE_SIGMA = 0.5
#: ... and the server admits 50 requests per second, for 1,000 balies.
REFERENCE_RATE = 50.0
REFERENCE_JOBS = 1000
#: Status calls whose median is the round-trip time.
RTT_SAMPLES = 9
#: Our client and every async baseline bound requests in flight to this many.
CONCURRENCY = 20
#: Our client, then the baselines, in the order they run.
CLIENTS = ("uitpas_async", "async-fixed", "async-exponential", "sync-sequential")
SEED = 7


@attrs.frozen
class Profile:
    """Sizes of one harness run (full, quick or smoke)."""

    name: str
    jobs: int
    #: Time scale of the rate-limited and the micro scenarios.
    time_scale: float
    #: Time scale of the no-rate-limit scenario (rows 3 to 5). Detection lag needs
    #: requests in proportion to 1 / time scale; compressed too far, the machine
    #: (both processes on two cores) becomes the bottleneck, not the client's design.
    unlimited_time_scale: float
    #: Jobs the sequential baseline runs; its figures are extrapolated to ``jobs``.
    sync_jobs: int
    memory_jobs: tuple[int, ...]
    call_iterations: int
    signer_iterations: int
    capacity_seconds: float
    #: A batch is cut off after this many lower bounds (plus a few seconds).
    deadline_factor: float
    #: Re-run our client under cProfile when one of its batch targets is missed.
    profile_misses: bool

    @property
    def median(self) -> float:
        """Return the median generation time in real seconds."""
        return REFERENCE_MEDIAN * self.time_scale

    @property
    def rate(self) -> float:
        """Return R in real requests per second, keeping R x median / N as in the reference."""
        return REFERENCE_RATE * REFERENCE_MEDIAN / REFERENCE_JOBS * self.jobs / self.median


PROFILES = {
    "full": Profile("full", 1000, 0.25, 1.0, 4, (2500, 5000, 10000), 4000, 4000, 3.0, 3.0, True),
    "quick": Profile("quick", 100, 0.05, 0.05, 2, (250, 500, 1000), 1000, 1000, 1.0, 2.0, False),
    "smoke": Profile("smoke", 4, 0.005, 0.005, 1, (5, 10), 40, 50, 0.2, 4.0, False),
}


def _child(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task in a fresh ``python -m benchmarks.child`` and return its result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.child"],
        input=json.dumps(task),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({task['kind']}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _credentials(info: SandboxInfo) -> Credentials:
    c = info.credentials
    return Credentials(c["consumer_key"], c["consumer_secret"], c["token"], c["token_secret"])


async def _rtt(info: SandboxInfo, balie: str, rate: float | None) -> float:
    """Return the median wall time of a few signed status calls through our client."""
    async with UitpasClient(
        info.base_url, _credentials(info), limits=Limits(rate_limit=rate)
    ) as client:
        job = await client.create_financial_report(START, END, balie_consumer_key=balie)
        samples = []
        for _ in range(RTT_SAMPLES):
            began = time.perf_counter()
            await client.get_financial_report_status(job.report_id, balie_consumer_key=balie)
            samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def _expected_bound(
    median: float, jobs: int, rate: float | None, sigma: float = REFERENCE_SIGMA
) -> float:
    """Return the lower bound expected before the run (for its deadline)."""
    z = statistics.NormalDist().inv_cdf(1 - 0.5 / max(jobs, 2))
    bound = median * math.exp(sigma * z)
    return max(bound, 3 * jobs / rate) if rate else bound


def run_batch(
    profile: Profile,
    client: str,
    *,
    jobs: int,
    rate: float | None,
    median: float | None = None,
    sigma: float = REFERENCE_SIGMA,
    time_scale: float | None = None,
    poll_initial_delay: float | None = None,
    profile_client: bool = False,
    sigma_for_deadline: float = REFERENCE_SIGMA,
    journal: Path | None = None,
    period: tuple[date, date] | None = None,
    seed_offset: int = 0,
) -> dict[str, Any]:
    """Start a sandbox, measure one client fetching ``jobs`` reports, return every figure.

    ``journal`` (our client only) is the orchestrator's journal, kept across runs (by
    default each run has a fresh one); ``period`` the reports' period (by default the
    child's first quarter of 2024); ``seed_offset`` draws other generation times than
    ``SEED``'s.
    """
    scale = profile.time_scale if time_scale is None else time_scale
    unscaled_median = REFERENCE_MEDIAN if median is None else median
    with running_sandbox(
        balies=jobs + 1,
        median=unscaled_median,
        sigma=sigma,
        time_scale=scale,
        rate=rate,
        seed=SEED + seed_offset,
    ) as info:
        probe, balies = info.balies[0], list(info.balies[1:])
        rtt = asyncio.run(_rtt(info, probe, rate))
        before = fetch_stats(info.root_url)
        expected = _expected_bound(unscaled_median * scale, jobs, rate, sigma_for_deadline)
        deadline = profile.deadline_factor * expected + 10.0
        result = _child(
            {
                "kind": "batch",
                "client": client,
                "sandbox": info.as_child_input(),
                "balies": balies,
                "time_scale": scale,
                "rate": rate,
                "concurrency": CONCURRENCY,
                "deadline": deadline,
                "poll_initial_delay": poll_initial_delay,
                "poll_timeout": deadline,
                "profile": profile_client,
                "journal": str(journal) if journal else None,
                "period": [day.isoformat() for day in period] if period else None,
            }
        )
        after = fetch_stats(info.root_url)
    result["rtt"] = rtt
    result["deadline"] = deadline
    result.update(
        batch_figures(before, after, balies, rtt=rtt, rate=rate, makespan=result["makespan"])
    )
    result["client_cpu_share"] = result["cpu"] / result["makespan"]
    if rate is not None:
        # The makespan the rate limit alone forces with this many requests.
        result["request_bound"] = result["requests"] / rate
    return result


def _extrapolate(result: dict[str, Any], jobs: int, lower_bound: float) -> dict[str, Any]:
    """Scale a sequential run's makespan and requests to ``jobs``, against their N's bound."""
    factor = jobs / max(result["done"], 1)
    result = dict(result)
    result["measured_jobs"] = result["done"]
    result["measured_makespan"] = result["makespan"]
    result["measured_lower_bound"] = result["lower_bound"]
    result["makespan"] = result["makespan"] * factor
    result["requests"] = round(result["requests"] * factor)
    result["requests_per_s"] = result["requests"] / result["makespan"]
    result["extrapolated_to"] = jobs
    # The bound of the N-job batch (our client's run of the same scenario).
    result["lower_bound"] = lower_bound
    result["makespan_over_lb"] = result["makespan"] / lower_bound
    return result


def batch_scenario(
    profile: Profile, *, rate: float | None, say: Callable[[str], None]
) -> dict[str, Any]:
    """Run our client and each baseline on the same scenario; return their figures."""
    scale = profile.time_scale if rate is not None else profile.unlimited_time_scale
    runs: dict[str, Any] = {}
    for client in CLIENTS:
        if client == "sync-sequential":
            if not requests_available():
                runs[client] = {"skipped": "requests / requests-oauthlib not installed"}
                say(f"  {client}: skipped (pip install requests requests-oauthlib)")
                continue
            measured = run_batch(
                profile, client, jobs=profile.sync_jobs, rate=rate, time_scale=scale
            )
            bound = runs["uitpas_async"]["lower_bound"]
            runs[client] = _extrapolate(measured, profile.jobs, bound)
        else:
            runs[client] = run_batch(
                profile, client, jobs=profile.jobs, rate=rate, time_scale=scale
            )
        run = runs[client]
        say(
            f"  {client}: makespan {run['makespan']:.1f}s, LB {run['lower_bound']:.1f}s, "
            f"{run['requests']} requests, {run['rate_limited_429']} x 429"
            + (" (cut off at the deadline)" if run["timed_out"] else "")
        )
    return runs


def memory_scenario(profile: Profile, say: Callable[[str], None]) -> dict[str, Any]:
    """Peak RSS of our client with every job of a batch in flight, at a few N."""
    points = []
    for jobs in profile.memory_jobs:
        # Constant generation time, long enough that all N are in flight together,
        # and a first poll just after it: exactly three requests per job.
        median = max(1.0 if profile.name == "full" else 0.1, jobs / 600)
        run = run_batch(
            profile,
            "uitpas_async",
            jobs=jobs,
            rate=None,
            median=median,
            sigma=0.0,
            time_scale=1.0,
            poll_initial_delay=median * 1.1 + 0.05,
        )
        points.append(
            {
                "jobs": jobs,
                "peak_rss_mb": run["peak_rss_mb"],
                "makespan": run["makespan"],
                "requests_per_job": run["requests_per_job"],
                "done": run["done"],
                "generation_s": median,
            }
        )
        say(f"  N={jobs}: peak RSS {run['peak_rss_mb']:.1f} MB, makespan {run['makespan']:.1f}s")
    per_job, intercept = slope(
        [float(p["jobs"]) for p in points], [p["peak_rss_mb"] for p in points]
    )
    return {"points": points, "slope_kb_per_job": per_job * 1024, "intercept_mb": intercept}


def micro_scenario(profile: Profile) -> dict[str, Any]:
    """Rows 1 and 2, and the sandbox's capacity on this machine."""
    with running_sandbox(
        balies=3, median=0.0, sigma=0.0, time_scale=profile.time_scale, seed=SEED
    ) as info:
        return _child(
            {
                "kind": "micro",
                "sandbox": info.as_child_input(),
                "call_iterations": profile.call_iterations,
                "signer_iterations": profile.signer_iterations,
                "capacity_seconds": profile.capacity_seconds,
                "concurrency": CONCURRENCY,
            }
        )


def run_all(profile: Profile, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every scenario of ``profile`` and return the raw figures."""
    began = time.perf_counter()
    data: dict[str, Any] = {
        "profile": attrs.asdict(profile),
        "scenario": {
            "jobs": profile.jobs,
            "time_scale": profile.time_scale,
            "median_real_s": profile.median,
            "unlimited_time_scale": profile.unlimited_time_scale,
            "unlimited_median_real_s": REFERENCE_MEDIAN * profile.unlimited_time_scale,
            "sigma": REFERENCE_SIGMA,
            "rate_real_per_s": profile.rate,
            "concurrency": CONCURRENCY,
            "seed": SEED,
        },
    }
    say("micro: signer and status-call CPU, sandbox capacity")
    data["micro"] = micro_scenario(profile)
    say(f"no rate limit, N={profile.jobs}")
    data["no_rate_limit"] = batch_scenario(profile, rate=None, say=say)
    say(f"rate limit R={profile.rate:g}/s, N={profile.jobs}")
    data["rate_limited"] = batch_scenario(profile, rate=profile.rate, say=say)
    say(f"memory, N={', '.join(map(str, profile.memory_jobs))}")
    data["memory"] = memory_scenario(profile, say)
    data["elapsed_s"] = time.perf_counter() - began
    return data


def profile_ours(profile: Profile, *, rate: float | None) -> dict[str, Any]:
    """Re-run our client's batch under cProfile; return the profile and its figures."""
    scale = profile.time_scale if rate is not None else profile.unlimited_time_scale
    run = run_batch(
        profile,
        "uitpas_async",
        jobs=profile.jobs,
        rate=rate,
        time_scale=scale,
        profile_client=True,
    )
    return {
        "profile": run.pop("profile", {}),
        "makespan_over_lb_under_profiler": run["makespan_over_lb"],
        "client_cpu_share_under_profiler": run["client_cpu_share"],
    }
