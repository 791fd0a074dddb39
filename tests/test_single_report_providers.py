"""Single reports of every provider over real HTTP: tokens, resume in a new client, memory, failure.

Each provider's client is driven through its public methods against its sandbox.
Where waiting is the point (memory, failure), the sandbox and the client share
one stepping clock: a client's sleep moves it at once, so a 20 s report takes no
real time, and every poll is still a real request the sandbox counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from helpers import END, FAST_RETRY, START

from uitpas_async import PollPolicy, UitpasClient
from uitpas_async.engine.errors import InvalidArgumentError, UitpasError
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.single import ReportToken
from uitpas_async.finam import FinamClient, FinamReportError
from uitpas_async.finam.sandbox import FinamFaultRule, FinamSandbox, FinamSandboxConfig
from uitpas_async.sandboxkit.stats import RequestStats
from uitpas_async.v4 import ClientCredentials, UitpasV4Client
from uitpas_async.v4.errors import V4ReportFailedError
from uitpas_async.v4.sandbox import V4FaultRule, V4Sandbox, V4SandboxConfig
from uitpas_async.xml_api.sandbox import Sandbox, SandboxConfig

#: Reports of the real-time tests take about this long (server seconds = real seconds).
QUICK = 0.2
#: Reports of the stepping-clock tests take exactly this long.
SLOW = 20.0
#: Fewest polls of a SLOW report on the blind ladder, and most once three are remembered.
BLIND_POLLS, LEARNED_POLLS = 20, 14
POLL = PollPolicy(max_interval=0.5, timeout=20.0)
SLOW_POLL = PollPolicy(timeout=600.0)


class SteppingClock:
    """Monotonic and wall time that move only when a client sleeps (or a test says)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        """POSIX seconds, moving with the monotonic clock."""
        return 1.7e9 + self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@attrs.frozen
class Case:
    """One provider as these tests drive it: its sandbox and its single-report calls."""

    provider: str
    #: The provider's sandbox (its ``stats`` are live counters).
    sandbox: Any
    #: A new client of the running sandbox.
    client: Callable[[], Any]
    start: Callable[[Any], Awaitable[ReportToken]]
    fetch: Callable[[Any, Path], Awaitable[DownloadedReport]]
    #: The name of the client's resume method.
    resume_method: str
    #: The endpoint of a status poll.
    poll_endpoint: str
    #: The sandbox's fault rule, to make reports fail (None: a failed one never completes).
    fault_rule: Callable[..., Any] | None

    def polls(self) -> int:
        """Return the status polls the sandbox has answered so far."""
        return self.requests()[self.poll_endpoint]

    def requests(self) -> dict[str, int]:
        """Return the requests the sandbox has answered so far, by endpoint."""
        stats: RequestStats = self.sandbox.stats
        return stats.requests

    def fail_from_now_on(self) -> None:
        """Make every report created from now on fail."""
        assert self.fault_rule is not None
        self.sandbox.add_fault(self.fault_rule("fail_generation", endpoint="create"))

    async def resume(self, client: Any, token: ReportToken | str, out: Path) -> DownloadedReport:
        """Resume a token with the client's own resume method."""
        report: DownloadedReport = await getattr(client, self.resume_method)(token, out)
        return report


def _clocks(clock: SteppingClock | None) -> dict[str, Any]:
    # The wall clock stays real: the XML sandbox checks OAuth timestamps by it.
    return {} if clock is None else {"clock": clock}


def _options(clock: SteppingClock | None) -> dict[str, Any]:
    """A client's policies: quick in real time, or a report's worth on the stepping clock."""
    if clock is None:
        return {"poll": POLL, "retry": FAST_RETRY}
    return {"poll": SLOW_POLL, "retry": FAST_RETRY, "clock": clock, "sleep": clock.sleep}


def xml_case(median: float, clock: SteppingClock | None = None) -> Case:
    """The UiTPAS XML API: the token's balie is the balie's consumer key."""
    sandbox = Sandbox(SandboxConfig(balies=2, generation_median=median, seed=3), **_clocks(clock))
    key = sandbox.balies[0].key
    return Case(
        "uitpas",
        sandbox,
        lambda: UitpasClient(sandbox.base_url, sandbox.credentials, **_options(clock)),
        lambda c: c.start_financial_report(START, END, balie_consumer_key=key),
        lambda c, out: c.fetch_financial_report(START, END, out, balie_consumer_key=key),
        "resume_financial_report",
        "status",
        None,
    )


def v4_case(median: float, clock: SteppingClock | None = None) -> Case:
    """UiTPAS API 4.0: the token's balie is the organizer id."""
    config = V4SandboxConfig(organizers=2, generation_median=median, seed=3)
    sandbox = V4Sandbox(config, **_clocks(clock))
    organizer = config.organizer_ids()[0]
    credentials = ClientCredentials(config.client_id, config.client_secret)
    return Case(
        "uitpas4",
        sandbox,
        lambda: UitpasV4Client(
            credentials, base_url=sandbox.base_url, token_url=sandbox.root_url, **_options(clock)
        ),
        lambda c: c.start_financial_report(organizer, START, END),
        lambda c, out: c.fetch_financial_report(organizer, START, END, out),
        "resume_financial_report",
        "status",
        V4FaultRule,
    )


def finam_case(median: float, clock: SteppingClock | None = None, **config: Any) -> Case:
    """Finam: the token's balie is the account id; its client takes a wall clock too."""
    walls = {} if clock is None else {"wall_clock": clock.wall}
    sandbox = FinamSandbox(
        FinamSandboxConfig(accounts=1, generation_median=median, seed=3, **config),
        **_clocks(clock),
        **walls,
    )
    account = sandbox.accounts[0]
    # Unpaced, so that each poll is where the schedule puts it.
    options = {"rate_per_method": None, **walls, **_options(clock)}
    return Case(
        "finam",
        sandbox,
        lambda: FinamClient(sandbox.secret, base_url=sandbox.base_url, **options),
        lambda c: c.start_account_report(account, START, END),
        lambda c, out: c.fetch_account_report(account, START, END, out),
        "resume_account_report",
        "info",
        FinamFaultRule,
    )


CASES = pytest.mark.parametrize("make", [xml_case, v4_case, finam_case], ids=["xml", "v4", "finam"])


@CASES
async def test_a_started_report_is_finished_from_its_json_token_by_a_new_client(
    make: Callable[[float], Case], tmp_path: Path
) -> None:
    """start_* gives a small JSON token; a new client resumes it and downloads that report."""
    case = make(QUICK)
    async with case.sandbox:
        async with case.client() as client:
            token = await case.start(client)
        text = token.to_json()
        assert token.provider == case.provider
        assert token.balie
        assert len(text) < 200
        async with case.client() as other:
            report = await case.resume(other, text, tmp_path)
    assert report.report_id == token.report_id
    assert report.path.parent == tmp_path
    assert report.path.stat().st_size == report.size > 0


@CASES
async def test_a_token_of_another_provider_is_refused_before_any_request(
    make: Callable[[float], Case], tmp_path: Path
) -> None:
    """Each client refuses the other providers' tokens (InvalidArgumentError), sending nothing."""
    case = make(QUICK)
    others = {"uitpas", "uitpas4", "finam"} - {case.provider}
    async with case.sandbox, case.client() as client:
        for provider in sorted(others):
            token = ReportToken(provider, "17", "org-0001", START, END, 1.7e9)
            with pytest.raises(InvalidArgumentError, match=provider):
                await case.resume(client, token.to_json(), tmp_path)
        assert sum(case.requests().values()) == 0


@CASES
async def test_after_three_reports_the_client_polls_far_fewer_times(
    make: Callable[[float, SteppingClock], Case], tmp_path: Path
) -> None:
    """The client remembers generation times: its fourth report, resumed, needs < half the polls."""
    clock = SteppingClock()
    case = make(SLOW, clock)
    polls = []
    async with case.sandbox, case.client() as client:
        for index in range(3):
            before = case.polls()
            await case.fetch(client, tmp_path / str(index))
            polls.append(case.polls() - before)
        before = case.polls()
        await case.resume(client, await case.start(client), tmp_path / "resumed")
        polls.append(case.polls() - before)
    # Blind (fewer than three reports seen), a 20 s report takes log(200)/log(1.26) = 23
    # polls or more; with history, the grid starts near 0.45 x 20 s, 9% a step: 9 to 12.
    assert min(polls[:3]) >= BLIND_POLLS, polls
    assert polls[3] <= LEARNED_POLLS, polls


@pytest.mark.parametrize(
    ("make", "error"), [(v4_case, V4ReportFailedError), (finam_case, FinamReportError)]
)
async def test_a_failed_report_raises_its_typed_error_at_the_poll_that_sees_it(
    make: Callable[[float, SteppingClock], Case], error: type[UitpasError], tmp_path: Path
) -> None:
    """A report that fails at 20 s raises the provider's error then, not at the timeout."""
    clock = SteppingClock()
    case = make(SLOW, clock)
    async with case.sandbox, case.client() as client:
        case.fail_from_now_on()
        token = await case.start(client)
        started = clock.now
        with pytest.raises(error):
            await case.resume(client, token, tmp_path)
    assert SLOW <= clock.now - started <= SLOW * 1.3
    assert not any(tmp_path.iterdir())


async def test_a_resumed_finam_report_keeps_its_not_found_grace(tmp_path: Path) -> None:
    """Finam says NOT_FOUND for 5 s after a create: a report resumed at 3 s is waited for."""
    clock = SteppingClock()
    case = finam_case(SLOW, clock, not_found_lag=5.0)
    async with case.sandbox:
        async with case.client() as client:
            token = await case.start(client)
        clock.now += 3.0
        async with case.client() as other:
            report = await case.resume(other, token, tmp_path)
    assert report.report_id == token.report_id
