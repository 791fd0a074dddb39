"""One measurement in a fresh child process, so its CPU and peak RSS are its own.

``python -m benchmarks.child`` reads one JSON task on stdin and prints one JSON
result line on stdout. Tasks: ``batch`` (one client fetches N reports from a
running sandbox) and ``micro`` (rows 1 and 2, plus the sandbox's capacity).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from oauthlib import oauth1

from uitpas_async import (
    Credentials,
    Limits,
    PollPolicy,
    ReportOrchestrator,
    ReportRequest,
    UitpasClient,
)
from uitpas_async.engine.jobs import JobEvent, JobState
from uitpas_async.engine.single import wait_until_ready
from uitpas_async.xml_api.signing import OAuthSigner, normalize_base_uri

from .baselines import (
    BASELINES,
    AsyncExponentialBaseline,
    AsyncFixedBaseline,
    SyncSequentialBaseline,
)

__all__ = ["main", "run_task"]

START, END = date(2024, 1, 1), date(2024, 3, 31)
#: Rows of a cProfile summary kept.
PROFILE_ROWS = 18
_PATH_PREFIX = re.compile(r"\S*/(?:site-packages|lib/python3\.\d+)/")
_CWD = str(Path.cwd()) + "/"
#: The PollPolicy defaults, in unscaled seconds (multiplied by the time scale).
POLL_INITIAL_DELAY, POLL_MULTIPLIER, POLL_MAX_INTERVAL, POLL_TIMEOUT = 2.0, 1.5, 60.0, 3600.0
#: Our client on UiTPAS API 4.0 (``UitpasV4Client``), as a batch task names it.
V4_CLIENT = "uitpas_async-v4"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _credentials(task: dict[str, Any]) -> Credentials:
    c = task["sandbox"]["credentials"]
    return Credentials(c["consumer_key"], c["consumer_secret"], c["token"], c["token_secret"])


def profile_summary(profiler: cProfile.Profile, rows: int = PROFILE_ROWS) -> dict[str, list[str]]:
    """Return the top functions by cumulative and by own time, as printable lines."""
    summary: dict[str, list[str]] = {}
    for key in ("cumulative", "tottime"):
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats(key).print_stats(rows)
        lines = buffer.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        summary[key] = [_shorten(line) for line in lines[start:] if line.strip()]
    return summary


def _shorten(line: str) -> str:
    """Drop interpreter, site-packages and working-directory prefixes from a pstats line."""
    return _PATH_PREFIX.sub("", line).replace(_CWD, "")


@contextlib.contextmanager
def _maybe_profile(enabled: bool, sink: dict[str, Any]) -> Iterator[None]:
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        sink["profile"] = profile_summary(profiler)


# -- batch --------------------------------------------------------------------------


async def _run_ours(task: dict[str, Any], out_dir: Path, counter: list[int]) -> None:
    """Fetch every report through ReportOrchestrator on one UitpasClient."""
    scale = task["time_scale"]
    poll = PollPolicy(
        initial_delay=task.get("poll_initial_delay") or POLL_INITIAL_DELAY * scale,
        multiplier=POLL_MULTIPLIER,
        max_interval=POLL_MAX_INTERVAL * scale,
        # A sigma-1 grid point's slowest report takes 22 medians: past the scaled default.
        timeout=max(POLL_TIMEOUT * scale, task.get("poll_timeout") or 0.0),
    )
    limits = Limits(max_concurrent_requests=task["concurrency"], rate_limit=task.get("rate"))

    generating_since: dict[int, float] = {}
    observed: list[float] = task.setdefault("observed", [])

    def on_event(event: JobEvent) -> None:
        # Generation time as this client saw it: created until seen completed.
        if event.state is JobState.GENERATING:
            generating_since[event.index] = time.monotonic()
        elif event.state is JobState.DOWNLOADING and event.index in generating_since:
            observed.append(time.monotonic() - generating_since.pop(event.index))
        if event.state is JobState.DONE:
            counter[0] += 1

    # A later quarter, on a journal an earlier run left, is what a user's next run is:
    # the journal's generation times are its history.
    period = task.get("period")
    start, end = (date.fromisoformat(day) for day in period) if period else (START, END)
    journal = Path(task["journal"]) if task.get("journal") else out_dir / "journal.sqlite"
    requests = [ReportRequest(key, start, end) for key in task["balies"]]
    async with UitpasClient(
        task["sandbox"]["base_url"], _credentials(task), limits=limits, poll=poll
    ) as client:
        orchestrator = ReportOrchestrator(
            client,
            out_dir / "reports",
            journal=journal,
            max_in_flight=task.get("max_in_flight") or len(requests),
            on_event=on_event,
        )
        results = await orchestrator.run(requests)
        task["from_history"] = orchestrator._scheduler.from_history
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, first: {failed[0].error!r}")


async def _run_v4(task: dict[str, Any], out_dir: Path, counter: list[int]) -> None:
    """Fetch every organizer's report through ReportOrchestrator on one UitpasV4Client."""
    from uitpas_async.v4 import ClientCredentials, OrganizerReportRequest, UitpasV4Client

    scale = task["time_scale"]
    poll = PollPolicy(
        initial_delay=POLL_INITIAL_DELAY * scale,
        multiplier=POLL_MULTIPLIER,
        max_interval=POLL_MAX_INTERVAL * scale,
        timeout=max(POLL_TIMEOUT * scale, task.get("poll_timeout") or 0.0),
    )
    limits = Limits(max_concurrent_requests=task["concurrency"], rate_limit=task.get("rate"))
    sandbox = task["sandbox"]
    credentials = ClientCredentials(
        sandbox["credentials"]["client_id"], sandbox["credentials"]["client_secret"]
    )

    def on_event(event: JobEvent) -> None:
        if event.state is JobState.DONE:
            counter[0] += 1

    requests = [OrganizerReportRequest(key, START, END) for key in task["balies"]]
    async with UitpasV4Client(
        credentials,
        base_url=sandbox["base_url"],
        token_url=sandbox["token_url"],
        limits=limits,
        poll=poll,
    ) as client:
        orchestrator = ReportOrchestrator(
            client,
            out_dir / "reports",
            journal=out_dir / "journal.sqlite",
            max_in_flight=len(requests),
            on_event=on_event,
        )
        try:
            results = await orchestrator.run(requests)
        finally:
            task["token_renewals"] = client.token_renewals
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, first: {failed[0].error!r}")


async def _run_async_baseline(task: dict[str, Any], out_dir: Path, counter: list[int]) -> None:
    kind = BASELINES[task["client"]]
    assert issubclass(kind, (AsyncFixedBaseline, AsyncExponentialBaseline))
    baseline = kind(
        task["sandbox"]["base_url"],
        task["sandbox"]["credentials"],
        time_scale=task["time_scale"],
        concurrency=task["concurrency"],
    )
    original = baseline.fetch_one

    async def counted(*args: Any) -> Path:
        path = await original(*args)
        counter[0] += 1
        return path

    baseline.fetch_one = counted  # type: ignore[method-assign,assignment]
    await baseline.run(task["balies"], START, END, out_dir)


def _run_sync_baseline(task: dict[str, Any], out_dir: Path, counter: list[int]) -> bool:
    """Run the sequential baseline until done or the deadline; return whether it timed out."""
    import requests
    from requests_oauthlib import OAuth1  # type: ignore[import-untyped]

    baseline = SyncSequentialBaseline(
        task["sandbox"]["base_url"], task["sandbox"]["credentials"], time_scale=task["time_scale"]
    )
    creds = task["sandbox"]["credentials"]
    deadline = time.monotonic() + task["deadline"]
    with requests.Session() as session:
        session.auth = OAuth1(
            creds["consumer_key"],
            client_secret=creds["consumer_secret"],
            resource_owner_key=creds["token"],
            resource_owner_secret=creds["token_secret"],
            signature_type="auth_header",
        )
        for balie in task["balies"]:
            if time.monotonic() > deadline:
                return True
            baseline.fetch_one(session, balie, START, END, out_dir)
            counter[0] += 1
    return False


def run_batch(task: dict[str, Any]) -> dict[str, Any]:
    """Measure one client fetching every balie's report; return makespan, CPU and peak RSS."""
    result: dict[str, Any] = {"client": task["client"], "jobs": len(task["balies"])}
    counter = [0]
    with tempfile.TemporaryDirectory(prefix="uitpas-bench-") as tmp:
        out_dir = Path(tmp)
        cpu0, began = _cpu_seconds(), time.perf_counter()
        timed_out = False
        with _maybe_profile(task.get("profile", False), result):
            if task["client"] == SyncSequentialBaseline.name:
                timed_out = _run_sync_baseline(task, out_dir, counter)
            else:
                runner: Callable[[dict[str, Any], Path, list[int]], Awaitable[None]] = {
                    "uitpas_async": _run_ours,
                    V4_CLIENT: _run_v4,
                }.get(task["client"], _run_async_baseline)
                timed_out = asyncio.run(_with_deadline(runner(task, out_dir, counter), task))
        result["makespan"] = time.perf_counter() - began
        result["cpu"] = _cpu_seconds() - cpu0
    result["done"] = counter[0]
    result["observed"] = task.get("observed", [])
    result["from_history"] = task.get("from_history", False)
    result["timed_out"] = timed_out
    if "token_renewals" in task:
        result["token_renewals"] = task["token_renewals"]
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


async def _with_deadline(work: Awaitable[None], task: dict[str, Any]) -> bool:
    """Await ``work`` up to the task's deadline; return whether it was cut short."""
    try:
        await asyncio.wait_for(work, task["deadline"])
    except asyncio.TimeoutError:
        return True
    return False


# -- micro: rows 1 and 2, and the sandbox's capacity ------------------------------------


SignedRequest = tuple[str, str, tuple[tuple[str, str], ...]]


def _signer_requests(base_url: str, balie: str) -> list[SignedRequest]:
    """Return (method, url, params) of the requests the signers are compared on."""
    report = base_url + "/uitpas/report/financialoverview/organiser"
    return [
        ("GET", report + "/1234/status", (("balieConsumerKey", balie),)),
        ("GET", report + "/1234/download", (("balieConsumerKey", balie),)),
        (
            "POST",
            report,
            (("balieConsumerKey", balie), ("startDate", "2024-01-01"), ("endDate", "2024-03-31")),
        ),
    ]


def _oauthlib_sign(
    client: oauth1.Client, method: str, url: str, params: tuple[tuple[str, str], ...]
) -> str:
    from urllib.parse import urlencode

    if method == "POST":
        _, headers, _ = client.sign(
            url, method, urlencode(params), {"Content-Type": "application/x-www-form-urlencoded"}
        )
    else:
        _, headers, _ = client.sign(url + "?" + urlencode(params), method)
    return str(headers["Authorization"])


def compare_signers(task: dict[str, Any]) -> dict[str, Any]:
    """Row 2: our signer vs oauthlib's Client.sign, µs per signature and byte identity."""
    creds = _credentials(task)
    requests = _signer_requests(task["sandbox"]["base_url"], task["sandbox"]["balies"][0])
    fixed_nonce, fixed_time = "0123456789abcdef0123456789abcdef", 1_700_000_000

    def oauthlib_client(**fixed: str) -> oauth1.Client:
        return oauth1.Client(
            creds.consumer_key,
            client_secret=creds.consumer_secret,
            resource_owner_key=creds.token,
            resource_owner_secret=creds.token_secret,
            **fixed,
        )

    ours_fixed = OAuthSigner(creds, clock=lambda: fixed_time, nonce=lambda: fixed_nonce)
    theirs_fixed = oauthlib_client(nonce=fixed_nonce, timestamp=str(fixed_time))
    identical = all(
        ours_fixed.authorization(method, normalize_base_uri(url), params)
        == _oauthlib_sign(theirs_fixed, method, url, params)
        for method, url, params in requests
    )
    ours, theirs = OAuthSigner(creds), oauthlib_client()
    prepared = [(m, normalize_base_uri(u), p) for m, u, p in requests]
    rounds = int(task["signer_iterations"])

    def time_ours() -> float:
        began = time.perf_counter()
        for _ in range(rounds):
            for method, base_uri, params in prepared:
                ours.authorization(method, base_uri, params)
        return (time.perf_counter() - began) / (rounds * len(prepared))

    def time_theirs() -> float:
        began = time.perf_counter()
        for _ in range(max(1, rounds // 5)):
            for method, url, params in requests:
                _oauthlib_sign(theirs, method, url, params)
        return (time.perf_counter() - began) / (max(1, rounds // 5) * len(requests))

    ours_us = min(time_ours() for _ in range(3)) * 1e6
    theirs_us = min(time_theirs() for _ in range(3)) * 1e6
    return {
        "ours_us": ours_us,
        "oauthlib_us": theirs_us,
        "speedup": theirs_us / ours_us,
        "identical": identical,
        "requests_compared": len(requests),
    }


async def _status_call_cpu(task: dict[str, Any]) -> dict[str, Any]:
    """Row 1: client CPU of signed status calls vs bare GETs of the same URL and body."""
    sandbox = task["sandbox"]
    balie = sandbox["balies"][0]
    creds = _credentials(task)
    async with UitpasClient(sandbox["base_url"], creds) as client:
        job = await client.create_financial_report(START, END, balie_consumer_key=balie)
        await client.wait_for_financial_report(
            job.report_id,
            balie_consumer_key=balie,
            poll=PollPolicy(initial_delay=0.01, max_interval=0.05, timeout=30),
        )
        # The exact bytes the sandbox answers, replayed by a server that checks nothing,
        # so both clients read the same body and only the client side differs.
        path = f"/uitpas/report/financialoverview/organiser/{job.report_id}/status"
        signer = OAuthSigner(creds)
        status_url = f"{sandbox['base_url']}{path}?balieConsumerKey={balie}"
        headers = {
            "Authorization": signer.authorization(
                "GET", normalize_base_uri(status_url), (("balieConsumerKey", balie),)
            )
        }
        async with (
            aiohttp.ClientSession() as session,
            session.get(status_url, headers=headers) as answer,
        ):
            body = (await answer.read()).decode("utf-8")
            content_type = answer.headers["Content-Type"]
    with _echo_server(body, content_type) as root_url:
        base_url = root_url + "/uitid/rest"
        url = f"{base_url}{path}?balieConsumerKey={balie}"
        iterations, rounds = task["call_iterations"], 4
        signed_cpu = bare_cpu = 0.0
        async with UitpasClient(base_url, creds) as client, aiohttp.ClientSession() as session:

            async def signed() -> None:
                status = await client.get_financial_report_status(
                    job.report_id, balie_consumer_key=balie
                )
                assert status.completed

            async def bare() -> None:
                async with session.get(url) as answer:
                    await answer.read()

            await signed()
            await bare()
            for _ in range(rounds):
                cpu0 = _cpu_seconds()
                for _ in range(iterations // rounds):
                    await signed()
                signed_cpu += _cpu_seconds() - cpu0
                cpu0 = _cpu_seconds()
                for _ in range(iterations // rounds):
                    await bare()
                bare_cpu += _cpu_seconds() - cpu0
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(min(iterations, 2000) // 2):
                await signed()
            profiler.disable()
        calls = (iterations // rounds) * rounds
    return {
        "signed_us": signed_cpu / calls * 1e6,
        "bare_us": bare_cpu / calls * 1e6,
        "ratio": signed_cpu / bare_cpu,
        "iterations": calls,
        "body_bytes": len(body),
        "profile": profile_summary(profiler),
    }


@contextlib.contextmanager
def _echo_server(body: str, content_type: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.echo_server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps({"body": body, "content_type": content_type}) + "\n")
        process.stdin.flush()
        yield str(json.loads(process.stdout.readline())["root_url"])
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _capacity(task: dict[str, Any]) -> dict[str, Any]:
    """Return how many signed status calls per second the sandbox serves to our client."""
    sandbox = task["sandbox"]
    balie = sandbox["balies"][0]
    concurrency = task["concurrency"]
    async with UitpasClient(
        sandbox["base_url"],
        _credentials(task),
        limits=Limits(max_concurrent_requests=concurrency),
    ) as client:
        job = await client.create_financial_report(START, END, balie_consumer_key=balie)
        count = 0
        stop = time.perf_counter() + task["capacity_seconds"]

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                await client.get_financial_report_status(job.report_id, balie_consumer_key=balie)
                count += 1

        began, cpu0 = time.perf_counter(), _cpu_seconds()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - began, _cpu_seconds() - cpu0
    return {
        "requests_per_s": count / elapsed,
        "client_cpu_share": cpu / elapsed,
        "concurrency": concurrency,
    }


def run_micro(task: dict[str, Any]) -> dict[str, Any]:
    """Rows 1 and 2, and the sandbox capacity that bounds every batch on this machine."""
    return {
        "signer": compare_signers(task),
        "status_call": asyncio.run(_status_call_cpu(task)),
        "capacity": asyncio.run(_capacity(task)),
    }


# -- single reports, each awaited alone ---------------------------------------------------


async def _single_reports(task: dict[str, Any]) -> dict[str, Any]:
    """Create, poll on a SingleReportSchedule, and download one report per balie.

    The reports run at once but each polls on its own schedule, as separate callers
    of ``fetch_financial_report`` would; ``history`` is what each would remember.
    """
    scale = task["time_scale"]
    rng = random.Random(task.get("seed", 1))
    history = tuple(task.get("history") or ())
    observed: list[float] = []
    polls: list[int] = []
    with tempfile.TemporaryDirectory(prefix="uitpas-bench-") as tmp:
        async with UitpasClient(
            task["sandbox"]["base_url"],
            _credentials(task),
            limits=Limits(max_concurrent_requests=task["concurrency"]),
        ) as client:
            polls_of: dict[str, int] = {}

            async def one(balie: str) -> None:
                job = await client.create_financial_report(START, END, balie_consumer_key=balie)
                report_id = job.report_id

                async def ready() -> bool:
                    polls_of[report_id] = polls_of.get(report_id, 0) + 1
                    status = await client.get_financial_report_status(
                        report_id, balie_consumer_key=balie
                    )
                    return status.completed

                # What fetch_financial_report does, with the history given here.
                observed.append(
                    await wait_until_ready(
                        ready,
                        report_id=report_id,
                        history=history,
                        policy=PollPolicy(
                            max_interval=POLL_MAX_INTERVAL * scale, timeout=POLL_TIMEOUT
                        ),
                        age=0.0,
                        clock=time.monotonic,
                        sleep=asyncio.sleep,
                        rng=rng,
                    )
                )
                polls.append(polls_of[report_id])
                await client.download_financial_report(
                    job.report_id, Path(tmp), balie_consumer_key=balie
                )

            began = time.perf_counter()
            await asyncio.gather(*(one(balie) for balie in task["balies"]))
    return {
        "makespan": time.perf_counter() - began,
        "observed": observed,
        "polls": polls,
        "from_history": bool(history),
    }


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task and return its result."""
    if task["kind"] == "batch":
        return run_batch(task)
    if task["kind"] == "single":
        return asyncio.run(_single_reports(task))
    if task["kind"] == "micro":
        return run_micro(task)
    if task["kind"] == "status_call":
        return asyncio.run(_status_call_cpu(task))
    raise ValueError(f"unknown task kind {task['kind']!r}")


def main() -> None:
    """Read one task from stdin, print its result as one JSON line."""
    task = json.loads(sys.stdin.read())
    sys.stdout.write(json.dumps(run_task(task)) + "\n")


if __name__ == "__main__":
    main()
