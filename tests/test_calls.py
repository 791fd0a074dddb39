"""The engine's call pipeline in virtual time: gates in order, a token fresh after every queue."""

from __future__ import annotations

import asyncio

import attrs
import pytest
from virtual_time import VirtualClock

from uitpas_async.engine.calls import CallPipeline, check_base_url, connection_pool_size
from uitpas_async.engine.config import Limits, RetryPolicy
from uitpas_async.engine.errors import AuthenticationError, ConfigurationError, RateLimitedError
from uitpas_async.engine.tokens import TokenManager

#: Seconds each fake token lives; the manager counts it stale a quarter earlier.
LIFETIME = 2.0
#: Seconds a fake renewal takes, so waiters pile up on it.
RENEWAL_TIME = 0.1
RETRY = RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.01, max_retry_after=10.0)


@attrs.frozen
class Req:
    """A request as the pipeline sees it."""

    endpoint: str
    idempotent: bool = True


class FakeApi:
    """Sends in virtual time and records which token each request left with, and when."""

    def __init__(self, clock: VirtualClock, pipeline: CallPipeline) -> None:
        self.clock = clock
        self.pipeline = pipeline
        self.tokens = TokenManager(self.renew, clock=clock)
        #: Clock reading at which each token was issued.
        self.issued: dict[str, float] = {}
        #: (endpoint, token, clock) of every send.
        self.sent: list[tuple[str, str | None, float]] = []
        #: Seconds a send of an endpoint takes.
        self.durations: dict[str, float] = {}
        #: Errors the next sends of an endpoint raise, in order.
        self.failures: dict[str, list[Exception]] = {}

    async def renew(self) -> tuple[str, float]:
        """Get a new token; its request goes through the pipeline, as a provider's does."""
        return await self.pipeline.renewal_call(self.send, Req("token"))

    async def send(self, request: Req, token: str | None) -> tuple[str, float]:
        """One attempt: record the token and the time, take a while, maybe fail."""
        self.sent.append((request.endpoint, token, self.clock.now))
        await self.clock.sleep(self.durations.get(request.endpoint, 0.0))
        failures = self.failures.get(request.endpoint)
        if failures:
            raise failures.pop(0)
        if request.endpoint == "token":
            await self.clock.sleep(RENEWAL_TIME)
            name = f"t{len(self.issued) + 1}"
            self.issued[name] = self.clock.now
            return name, LIFETIME
        return request.endpoint, self.clock.now

    async def call(self, endpoint: str) -> tuple[str, float]:
        """Call an endpoint with the bearer token."""
        return await self.pipeline.call(self.send, Req(endpoint), tokens=self.tokens)

    def assert_no_stale_token_left(self) -> None:
        """Every request left with a token issued less than 3/4 of its lifetime before."""
        for endpoint, token, at in self.sent:
            if endpoint == "token":
                assert token is None
                continue
            assert token is not None
            assert at - self.issued[token] < LIFETIME * 0.75, (endpoint, token, at)


def _api(clock: VirtualClock, **options: object) -> FakeApi:
    """Build a fake API over a pipeline on the virtual clock."""
    limits = options.pop("limits", Limits())
    pipeline = CallPipeline(
        limits=limits,  # type: ignore[arg-type]
        retry=RETRY,
        urgency={"create": 0, "status": 3},
        sleep=clock.sleep,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )
    return FakeApi(clock, pipeline)


async def _after(clock: VirtualClock, seconds: float, api: FakeApi, endpoint: str) -> object:
    """Call ``endpoint`` after ``seconds``."""
    await clock.sleep(seconds)
    return await api.call(endpoint)


async def _wait_in_pacer(clock: VirtualClock) -> FakeApi:
    """Two rounds on five endpoints, one request per endpoint every 4 s."""
    api = _api(clock, per_endpoint_rate=0.25)
    endpoints = [f"e{i}" for i in range(5)]
    await asyncio.gather(*(api.call(e) for e in endpoints * 2))
    return api


async def _wait_in_hold(clock: VirtualClock) -> FakeApi:
    """A 429 asks for 5 s; four later requests wait out the hold with the refused one."""
    api = _api(clock)
    api.failures["e0"] = [RateLimitedError("slow down", retry_after=5.0)]
    await asyncio.gather(api.call("e0"), *(_after(clock, 0.5, api, f"e{i}") for i in range(1, 5)))
    return api


async def _wait_for_slot(clock: VirtualClock) -> FakeApi:
    """One slot, held 5 s by a slow request; four others queue for it."""
    api = _api(clock, limits=Limits(max_concurrent_requests=1))
    api.durations["slow"] = 5.0
    await asyncio.gather(api.call("slow"), *(_after(clock, 0.5, api, f"e{i}") for i in range(1, 5)))
    return api


@pytest.mark.parametrize(
    "scenario",
    [_wait_in_pacer, _wait_in_hold, _wait_for_slot],
    ids=["pacer", "retry-after-hold", "slot"],
)
async def test_a_request_that_waits_past_expiry_leaves_with_a_fresh_token(scenario: object) -> None:
    """Waiting longer than a token lives, in any queue: one renewal, and every request fresh."""
    clock = VirtualClock()
    api: FakeApi = await clock.run(scenario(clock))  # type: ignore[operator]
    api.assert_no_stale_token_left()
    # The first token at the start; one renewal for everyone who waited past it.
    assert api.tokens.renewals == 2
    late = [token for endpoint, token, at in api.sent if endpoint != "token" and at >= 4.0]
    assert len(late) >= 4
    assert set(late) == {"t2"}


async def test_a_renewal_inside_a_full_set_of_slots_does_not_deadlock() -> None:
    """Every slot held by a request waiting for the renewal: the renewal needs none."""
    clock = VirtualClock()
    api = _api(clock, limits=Limits(max_concurrent_requests=2))
    results = await clock.run(asyncio.gather(*(api.call(f"e{i}") for i in range(6))))
    assert len(results) == 6
    assert api.tokens.renewals == 1
    assert connection_pool_size(Limits(max_concurrent_requests=2), renews_tokens=True) == 3
    assert connection_pool_size(Limits(max_concurrent_requests=2), renews_tokens=False) == 2


async def test_a_401_for_a_fresh_token_renews_once_and_retries() -> None:
    """A refused token is replaced once; the request goes again with the new one."""
    clock = VirtualClock()
    api = _api(clock)
    api.failures["create"] = [AuthenticationError("refused", status=401)]
    await clock.run(api.call("create"))
    assert [token for endpoint, token, _ in api.sent if endpoint == "create"] == ["t1", "t2"]
    assert api.tokens.renewals == 2


async def test_a_second_401_is_final() -> None:
    """Refused again right after a renewal: AuthenticationError, after two renewals."""
    clock = VirtualClock()
    api = _api(clock)
    api.failures["create"] = [AuthenticationError("refused", status=401) for _ in range(3)]
    with pytest.raises(AuthenticationError):
        await clock.run(api.call("create"))
    assert api.tokens.renewals == 2
    assert len(api.failures["create"]) == 1


async def test_a_late_401_for_an_old_token_keeps_the_new_one() -> None:
    """A 401 for a token already replaced does not make the new one stale."""
    clock = VirtualClock()
    api = _api(clock)
    api.tokens.invalidate("t0")  # never current: nothing happens
    await clock.run(api.call("a"))
    api.tokens.invalidate("old")
    assert api.tokens.fresh == "t1"


async def test_renewals_racing_a_request_in_flight_are_counted() -> None:
    """A renewal that begins while a request with the old token is in flight counts as a race."""
    clock = VirtualClock()
    api = _api(clock)
    api.durations["slow"] = 3.0

    async def late_call() -> object:
        await clock.sleep(1.8)  # past the first token's stale point, "slow" still in flight
        return await api.call("quick")

    await clock.run(asyncio.gather(api.call("slow"), late_call()))
    assert api.tokens.renewals == 2
    assert api.tokens.raced_renewals == 1
    assert api.tokens.in_flight == 0
    await clock.run(_after(clock, 10.0, api, "quick"))
    assert api.tokens.raced_renewals == 1  # nothing was in flight that time


async def test_waiting_requests_leave_by_urgency_then_arrival() -> None:
    """Under Limits.rate_limit, a create queued behind polls leaves first."""
    clock = VirtualClock()
    api = _api(clock, limits=Limits(rate_limit=1.0))
    await clock.run(api.tokens.token())  # the renewal took the turn at 0; the next is at 1

    async def arrive(endpoint: str, at: float) -> object:
        await clock.sleep(at)
        return await api.call(endpoint)

    await clock.run(
        asyncio.gather(arrive("status", 0.0), arrive("status", 0.1), arrive("create", 0.2))
    )
    order = [endpoint for endpoint, _, _ in api.sent if endpoint != "token"]
    assert order == ["create", "status", "status"]


async def test_calls_without_tokens_carry_none() -> None:
    """A call given no TokenManager sends with token None and renews nothing."""
    clock = VirtualClock()
    api = _api(clock)
    await clock.run(api.pipeline.call(api.send, Req("plain")))
    assert api.sent == [("plain", None, 0.0)]
    assert api.tokens.renewals == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example/", "https://api.example"),
        ("http://127.0.0.1:8080/uitid/rest/", "http://127.0.0.1:8080/uitid/rest"),
        ("https://api.example/v1", "https://api.example/v1"),
    ],
)
def test_check_base_url_strips_the_trailing_slash(url: str, expected: str) -> None:
    """An http(s) base URL comes back without its trailing slash."""
    assert check_base_url(url, example="https://api.example") == expected


@pytest.mark.parametrize(
    "url",
    ["ftp://api.example", "api.example/v1", "https://", "https://a.example/?x=1", "https://a/#f"],
)
def test_check_base_url_refuses_what_is_not_a_base(url: str) -> None:
    """No scheme, no host, another scheme, a query or a fragment: ConfigurationError."""
    with pytest.raises(ConfigurationError, match="base_url"):
        check_base_url(url, example="https://api.example")
