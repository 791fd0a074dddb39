"""The sandbox kit on its own: config checks, fault rules and plan, rate limit, pipeline, server."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal, get_args

import aiohttp
import attrs
import pytest

from uitpas_async.finam.sandbox import FinamSandbox, FinamSandboxConfig
from uitpas_async.sandboxkit.config import BaseSandboxConfig, SandboxSetup, count_or_items
from uitpas_async.sandboxkit.faults import (
    ANYWHERE_FAULT_KINDS,
    AnywhereFaultKind,
    BaseFaultRule,
    FaultPlan,
    ReportFaultKind,
    fault_endpoints,
)
from uitpas_async.sandboxkit.pipeline import STATS_PATH, Call, RequestPipeline, Route
from uitpas_async.sandboxkit.ratelimit import RateLimit
from uitpas_async.sandboxkit.server import SandboxServer, serve_until_cancelled
from uitpas_async.sandboxkit.stats import RequestStats
from uitpas_async.sandboxkit.wire import Answer, bearer_token, json_answer, json_object

# -- a toy provider: the least a sandbox built on the kit needs -----------------------

ToyEndpoint = Literal["create", "show"]
TOY_ENDPOINTS: tuple[ToyEndpoint, ...] = get_args(ToyEndpoint)
ToyKind = Literal[AnywhereFaultKind, ReportFaultKind, "teapot"]
TOY_KINDS: tuple[ToyKind, ...] = get_args(ToyKind)
TOY_WHERE = fault_endpoints(
    TOY_ENDPOINTS, fail_generation=("create",), forget_report=TOY_ENDPOINTS, teapot=("show",)
)
PROBLEM_TYPE = "application/problem+json"


@attrs.frozen
class ToyRule(BaseFaultRule[ToyKind], endpoints=TOY_ENDPOINTS, kinds=TOY_KINDS, subject="owner"):
    """A toy fault rule, limited to one owner or not."""

    owner: str | None = None


@attrs.frozen
class ToyConfig(BaseSandboxConfig):
    """A toy config: only its fault rules are its own."""

    faults: tuple[ToyRule, ...] = ()


@attrs.define
class ToyStats(RequestStats):
    """The kit's counters under the toy names, plus one of the toy's own."""

    ENDPOINTS = TOY_ENDPOINTS
    FAULT_KINDS = TOY_KINDS

    teapots: int = 0


@attrs.define
class ToyState:
    """Reports by id, each with its owner and whether it failed."""

    stats: ToyStats = attrs.Factory(ToyStats)
    reports: dict[str, tuple[str, bool]] = attrs.Factory(dict)


def _problem(status: int, title: str) -> Answer:
    return Answer(status, json.dumps({"status": status, "title": title}).encode(), PROBLEM_TYPE)


class ToyApp(RequestPipeline[ToyRule, Mapping[str, Any], ToyState]):
    """A JSON API: POST /reports (owner in the body), GET /reports/{report_id}."""

    FAULT_ANSWERS: ClassVar[Mapping[str, Answer]] = {
        "server_error": _problem(500, "Internal Server Error"),
        "bad_gateway": Answer(502, b"", None),
    }

    def routes(self) -> list[Route]:
        """Return the two routes."""
        return [Route("POST", "/reports", "create"), Route("GET", "/reports/{report_id}", "show")]

    def admit(self, request: Any, endpoint: str, body: bytes) -> Mapping[str, Any] | Answer:
        """Want the bearer token "t", then a JSON object."""
        if bearer_token(request.headers) != "t":
            self.stats.auth_failures += 1
            return _problem(401, "Unauthorized")
        parsed = json_object(body)
        return _problem(400, parsed) if isinstance(parsed, str) else parsed

    def subject(self, call: Call[Mapping[str, Any]]) -> str | None:
        """Return the owner the body names, or the report's."""
        if call.endpoint == "create":
            return str(call.payload.get("owner"))
        report = self.state.reports.get(call.report_id or "")
        return report[0] if report else None

    def handle(self, call: Call[Mapping[str, Any]], *, fail: bool = False) -> Answer:
        """Create a report, or show one."""
        if call.endpoint == "create":
            report_id = str(len(self.state.reports) + 1)
            self.state.reports[report_id] = (str(call.payload.get("owner")), fail)
            self.stats.reports_created += 1
            return json_answer({"id": report_id})
        report = self.state.reports.get(call.report_id or "")
        if report is None:
            return _problem(404, "Not Found")
        return json_answer({"owner": report[0], "failed": report[1]})

    def forget(self, call: Call[Mapping[str, Any]]) -> None:
        """Lose the report named, or the latest one."""
        latest = str(len(self.state.reports))
        self.state.reports.pop(call.report_id or latest, None)

    def refusal(self, status: int) -> Answer:
        """Say 429 and 503 as problem+json."""
        return _problem(status, "Too Many Requests" if status == 429 else "Service Unavailable")

    def own_fault(self, rule: ToyRule, call: Call[Mapping[str, Any]]) -> Answer | None:
        """Carry out "teapot"."""
        if rule.kind != "teapot":
            return None
        self.stats.teapots += 1
        return _problem(418, "I'm a teapot")


class ToySandbox(SandboxServer[ToyConfig, ToyRule]):
    """The toy API on loopback."""

    def __init__(self, config: ToyConfig | None = None, *, app: type[ToyApp] = ToyApp) -> None:
        self._app_type = app
        super().__init__(config)

    def default_config(self) -> ToyConfig:
        """Return the default config."""
        return ToyConfig()

    def build(self, setup: SandboxSetup[ToyConfig]) -> ToyApp:
        """Make the state and the pipeline."""
        self.state = ToyState()
        faults = FaultPlan(setup.config.faults, setup.rng, where=TOY_WHERE)
        return self._app_type(setup, self.state, faults)


@pytest.fixture
async def toy() -> AsyncIterator[ToySandbox]:
    """Yield a running toy sandbox."""
    async with ToySandbox() as sandbox:
        yield sandbox


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Yield a client session that sends the toy's bearer token."""
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as session:
        yield session


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"generation_median": -1.0},
        {"generation_sigma": -0.1},
        {"time_scale": -2.0},
        {"rate_limit": 0.0},
        {"rate_burst": 0.0},
    ],
)
def test_config_refuses_impossible_numbers(fields: dict[str, float]) -> None:
    """Negative durations, a zero rate and an empty bucket are refused, naming the field."""
    with pytest.raises(ValueError, match=next(iter(fields))):
        ToyConfig(**fields)  # type: ignore[arg-type]


def test_config_fields_are_keyword_only() -> None:
    """The kit's fields are keyword-only, so a provider's own keep their positions."""
    with pytest.raises(TypeError):
        BaseSandboxConfig(1.0)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3), (["a", "b"], ("a", "b")), (("x",), ("x",))]
)
def test_count_or_items(value: int | list[str] | tuple[str, ...], expected: object) -> None:
    """A count stays a count; given items become a tuple."""
    assert count_or_items(value, "things") == expected


@pytest.mark.parametrize("value", [0, -1, []])
def test_count_or_items_refuses_nothing(value: int | list[str]) -> None:
    """Zero things, or an empty list of them, is refused by name."""
    with pytest.raises(ValueError, match="things"):
        count_or_items(value, "things")


def test_generation_seconds_is_the_scaled_median_without_spread() -> None:
    """With sigma 0 a report takes the median, scaled, and leaves the RNG untouched."""
    rng = random.Random(7)
    config = BaseSandboxConfig(generation_median=2.0, time_scale=0.5)
    assert config.generation_seconds(rng) == 1.0
    assert rng.random() == random.Random(7).random()


def test_generation_seconds_is_lognormal_and_seeded() -> None:
    """With spread, generation times vary around the median, the same for the same seed."""
    config = BaseSandboxConfig(generation_median=1.0, generation_sigma=0.8)
    first = [config.generation_seconds(random.Random(3)) for _ in range(2)]
    drawn = [config.generation_seconds(rng) for rng in [random.Random(4)] for _ in range(50)]
    assert first[0] == first[1]
    assert len(set(drawn)) == 50
    assert all(seconds > 0 for seconds in drawn)


def test_zero_median_generates_at_once() -> None:
    """A zero median makes every report ready at once, spread or not."""
    config = BaseSandboxConfig(generation_median=0.0, generation_sigma=1.0)
    assert config.generation_seconds(random.Random(0)) == 0.0


# -- fault rules and plan -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "melt"}, "kind must be one of"),
        ({"kind": "drop", "endpoint": "delete"}, "endpoint must be '\\*' or one of"),
        ({"kind": "drop", "probability": 1.5}, r"probability must lie in \[0, 1\]"),
    ],
)
def test_rule_refuses_what_the_provider_does_not_know(fields: dict[str, Any], message: str) -> None:
    """A rule names one of the provider's kinds and endpoints, and a real chance."""
    with pytest.raises(ValueError, match=message):
        ToyRule(**fields)


def test_rule_class_keywords_name_endpoints_kinds_and_subject() -> None:
    """The class keywords set what a rule may name, and which field is its subject."""
    assert (ToyRule.ENDPOINTS, ToyRule.KINDS, ToyRule.SUBJECT) == (
        TOY_ENDPOINTS,
        TOY_KINDS,
        "owner",
    )
    assert ToyRule("drop", owner="ann").subject == "ann"
    assert ToyRule("drop").subject is None


def test_fault_endpoints_puts_anywhere_kinds_everywhere() -> None:
    """Server and network faults fit every endpoint; the rest only where they are named."""
    assert all(TOY_WHERE[kind] == set(TOY_ENDPOINTS) for kind in ANYWHERE_FAULT_KINDS)
    assert TOY_WHERE["teapot"] == {"show"}
    assert set(TOY_WHERE) == set(TOY_KINDS)


def test_plan_fires_a_star_rule_only_where_its_kind_fits() -> None:
    """A rule for "*" skips endpoints its kind makes no sense on."""
    plan = FaultPlan([ToyRule("teapot")], random.Random(0), where=TOY_WHERE)
    assert plan.pick("create", None) is None
    assert plan.pick("show", None) == ToyRule("teapot")


def test_plan_honours_count_subject_and_order() -> None:
    """Rules are tried in order, each fires at most ``count`` times, and only for its subject."""
    rules = [ToyRule("slow", count=1, owner="ann"), ToyRule("drop", count=2)]
    plan = FaultPlan(rules, random.Random(0), where=TOY_WHERE)
    picks = [plan.pick("show", "ann"), plan.pick("show", "ann"), plan.pick("show", "bob")]
    assert [rule.kind if rule else None for rule in picks] == ["slow", "drop", "drop"]
    assert plan.pick("show", "ann") is None


def test_plan_is_deterministic_from_the_seed() -> None:
    """The same seed fires a chancy rule on the same requests."""

    def fired(seed: int) -> list[bool]:
        plan = FaultPlan([ToyRule("drop", probability=0.3)], random.Random(seed), where=TOY_WHERE)
        return [plan.pick("show", None) is not None for _ in range(40)]

    assert fired(5) == fired(5)
    assert fired(5) != fired(6)
    assert 0 < sum(fired(5)) < 40


def test_plan_add_and_clear() -> None:
    """Rules added later are tried after the others; clear removes them all."""
    plan = FaultPlan([], random.Random(0), where=TOY_WHERE)
    plan.add(ToyRule("drop", count=1))
    plan.add(ToyRule("slow"))
    assert [rule.kind for rule in plan.rules] == ["drop", "slow"]
    assert plan.pick("show", None) == ToyRule("drop", count=1)
    plan.clear()
    assert plan.pick("show", None) is None


# -- rate limit -----------------------------------------------------------------------


def test_rate_limit_shares_one_bucket_unless_per_endpoint() -> None:
    """One shared bucket refuses the second endpoint too; per-endpoint buckets do not."""
    clock = FakeClock()
    shared = RateLimit(1.0, 1.0, clock)
    separate = RateLimit(1.0, 1.0, clock, per_endpoint=True)
    assert shared.refuse("create") is None
    assert shared.refuse("show") is not None
    assert separate.refuse("create") is None
    assert separate.refuse("show") is None
    assert separate.refuse("show") is not None


def test_rate_limit_asks_for_the_exact_wait_or_whole_server_seconds() -> None:
    """A refusal asks for the real wait, or whole scaled seconds but never less than the wait."""
    clock = FakeClock()
    exact = RateLimit(4.0, 1.0, clock)
    whole = RateLimit(4.0, 1.0, clock, server_second=0.5)
    assert (exact.refuse("x"), whole.refuse("x")) == (None, None)
    clock.now += 0.1  # 0.4 tokens back: 0.15 s to go
    assert exact.refuse("x") == pytest.approx(0.15)
    assert whole.refuse("x") == 0.5
    slow = RateLimit(0.1, 1.0, clock, server_second=0.01)
    assert slow.refuse("x") is None
    assert slow.refuse("x") == pytest.approx(10.0)  # 1 token at 0.1/s: never less than that


# -- wire helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("abc", "abc"), ("", "")],
)
def test_bearer_token(header: str, token: str) -> None:
    """The token is read from ``Bearer x`` in any case, or taken bare."""
    assert bearer_token({"Authorization": header} if header else {}) == token


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", {}),
        (b'{"a": 1}', {"a": 1}),
        (b"[1]", "body is not a JSON object"),
        (b"{", "body is not JSON"),
    ],
)
def test_json_object(raw: bytes, expected: object) -> None:
    """An empty body is ``{}``; anything but a JSON object says what is wrong."""
    assert json_object(raw) == expected


# -- the pipeline, over real HTTP -----------------------------------------------------


async def test_toy_answers_and_counts(toy: ToySandbox, http: aiohttp.ClientSession) -> None:
    """Admitted requests reach the provider, and 200s count as successes per endpoint."""
    async with http.post(toy.root_url + "/reports", json={"owner": "ann"}) as reply:
        assert (reply.status, await reply.json()) == (200, {"id": "1"})
    async with http.get(toy.root_url + "/reports/9") as reply:
        assert reply.status == 404
    assert toy.state.stats.requests == {"create": 1, "show": 1}
    assert toy.state.stats.successes == {"create": 1, "show": 0}


async def test_refused_admission_is_sent_as_is(toy: ToySandbox) -> None:
    """What ``admit`` refuses with goes out unchanged and is no success."""
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.post(toy.root_url + "/reports", json={}) as reply,
    ):
        assert reply.status == 401
        assert reply.content_type == PROBLEM_TYPE
    assert toy.state.stats.auth_failures == 1
    assert toy.state.stats.successes["create"] == 0


async def test_rate_limit_refusal_is_the_providers_body_with_retry_after(
    http: aiohttp.ClientSession,
) -> None:
    """Past the bucket, the 429 is the provider's ``refusal`` body plus a Retry-After."""
    async with ToySandbox(ToyConfig(rate_limit=0.5)) as toy:
        for _ in range(2):
            async with http.get(toy.root_url + "/reports/1") as reply:
                status, body, headers = reply.status, await reply.read(), reply.headers
    assert status == 429
    assert json.loads(body) == {"status": 429, "title": "Too Many Requests"}
    assert headers["Content-Type"] == PROBLEM_TYPE
    assert float(headers["Retry-After"]) > 0
    assert toy.state.stats.rate_limited == 1


async def test_injected_429s_alternate_retry_after_forms(
    toy: ToySandbox, http: aiohttp.ClientSession
) -> None:
    """Injected 429s take turns: delta-seconds, then an HTTP-date; 503s say seconds."""
    toy.add_fault(ToyRule("rate_limited", count=2, delay=3))
    toy.add_fault(ToyRule("unavailable", count=1))
    replies = []
    for _ in range(3):
        async with http.get(toy.root_url + "/reports/1") as reply:
            replies.append((reply.status, reply.headers["Retry-After"], await reply.json()))
    assert [(status, body["status"]) for status, _, body in replies] == [
        (429, 429),
        (429, 429),
        (503, 503),
    ]
    assert replies[0][1] == "3"
    assert email.utils.parsedate_to_datetime(replies[1][1]) is not None
    assert replies[2][1] == "1"
    assert toy.state.stats.faults["rate_limited"] == 2


async def test_own_fault_and_fixed_answers(toy: ToySandbox, http: aiohttp.ClientSession) -> None:
    """The provider's own kind and its fixed answers replace the answer, not counted as success."""
    toy.add_fault(ToyRule("teapot", count=1))
    toy.add_fault(ToyRule("bad_gateway", endpoint="show", count=1))
    statuses = []
    for _ in range(3):
        async with http.get(toy.root_url + "/reports/1") as reply:
            statuses.append((reply.status, await reply.read()))
    assert [status for status, _ in statuses] == [418, 502, 404]
    assert statuses[1][1] == b""
    assert toy.state.stats.teapots == 1
    assert toy.state.stats.faults["teapot"] == toy.state.stats.faults["bad_gateway"] == 1


@pytest.mark.parametrize(("after_effect", "created"), [(False, 0), (True, 1)])
async def test_replacing_fault_after_effect(
    toy: ToySandbox, http: aiohttp.ClientSession, after_effect: bool, created: int
) -> None:
    """A replaced create took effect only if the rule says so, and never counts as a success."""
    toy.add_fault(ToyRule("server_error", endpoint="create", after_effect=after_effect))
    async with http.post(toy.root_url + "/reports", json={"owner": "ann"}) as reply:
        assert reply.status == 500
        assert (await reply.json())["title"] == "Internal Server Error"
    assert toy.state.stats.reports_created == created
    assert toy.state.stats.successes["create"] == 0


async def test_fault_for_one_subject_spares_the_others(
    toy: ToySandbox, http: aiohttp.ClientSession
) -> None:
    """A rule limited to one owner fires only on that owner's requests."""
    toy.add_fault(ToyRule("fail_generation", owner="ann"))
    for owner in ("bob", "ann"):
        async with http.post(toy.root_url + "/reports", json={"owner": owner}) as reply:
            assert reply.status == 200
    assert toy.state.reports == {"1": ("bob", False), "2": ("ann", True)}


async def test_forget_report_on_create_loses_the_new_report(
    toy: ToySandbox, http: aiohttp.ClientSession
) -> None:
    """ "forget_report" on a create answers it, then loses the report it made."""
    toy.add_fault(ToyRule("forget_report", endpoint="create", count=1))
    async with http.post(toy.root_url + "/reports", json={"owner": "ann"}) as reply:
        assert reply.status == 200
    assert toy.state.reports == {}
    assert toy.state.stats.successes["create"] == 1


class NoAnswersApp(ToyApp):
    """The toy API with its fixed fault answers forgotten: a provider's bug."""

    FAULT_ANSWERS: ClassVar[Mapping[str, Answer]] = {}


async def test_fault_kind_without_an_answer_is_a_server_bug(http: aiohttp.ClientSession) -> None:
    """A kind the provider gave no answer for fails loudly (aiohttp's 500), never silently."""
    config = ToyConfig(faults=(ToyRule("bad_gateway"),))
    async with (
        ToySandbox(config, app=NoAnswersApp) as toy,
        http.get(toy.root_url + "/reports/1") as reply,
    ):
        assert reply.status == 500
        assert await reply.read() != b""


async def test_stats_endpoint_shows_the_counters_and_the_clock(
    toy: ToySandbox, http: aiohttp.ClientSession
) -> None:
    """``GET /_sandbox/stats`` shows every counter, the provider's own too, and ``now``."""
    async with http.get(toy.root_url + "/reports/1"):
        pass
    async with http.get(toy.root_url + STATS_PATH) as reply:
        data = await reply.json()
    assert data == {**toy.state.stats.as_dict(), "now": data["now"]}
    assert data["requests"]["show"] == 1
    assert data["teapots"] == 0


async def test_finam_sandbox_serves_stats_too() -> None:
    """The Finam sandbox gets the kit's stats endpoint, its own counters included."""
    async with (
        FinamSandbox(FinamSandboxConfig(accounts=1)) as sandbox,
        aiohttp.ClientSession() as session,
        session.get(sandbox.root_url + STATS_PATH) as reply,
    ):
        data = await reply.json()
    assert data["sessions_created"] == 0
    assert set(data["requests"]) == {"auth", "details", "create", "info", "download"}


async def test_serve_until_cancelled_announces_then_stops() -> None:
    """``serve_until_cancelled`` calls ``ready`` once listening and closes on cancellation."""
    ready: asyncio.Queue[ToySandbox] = asyncio.Queue()
    task = asyncio.create_task(serve_until_cancelled(ToySandbox(), ready.put_nowait))
    sandbox = await asyncio.wait_for(ready.get(), timeout=30)
    async with (
        aiohttp.ClientSession() as session,
        session.get(sandbox.root_url + STATS_PATH) as reply,
    ):
        assert reply.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(sandbox.root_url + STATS_PATH)
