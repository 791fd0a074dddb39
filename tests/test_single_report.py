"""One report alone: the resumable token, a client's memory of times, the wait loop."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timezone

import attrs
import pytest

from uitpas_async.engine.config import PollPolicy
from uitpas_async.engine.errors import InvalidArgumentError, ReportTimeoutError
from uitpas_async.engine.polling import SINGLE_BLIND_RATIO, SINGLE_FIRST_POLL
from uitpas_async.engine.single import (
    MAX_TOKEN_CHARS,
    GenerationMemory,
    ReportToken,
    accept_token,
    wait_until_ready,
)

TOKEN = ReportToken("uitpas-xml", "1234", "balie-key_1", date(2024, 1, 1), date(2024, 3, 31), 1.7e9)


def test_a_token_round_trips_through_compact_json() -> None:
    """to_json and from_json give back the same token; the text is small and plain."""
    text = TOKEN.to_json()
    assert ReportToken.from_json(text) == TOKEN
    assert len(text) < 200
    assert json.loads(text)["v"] == 1
    assert ReportToken.from_json(TOKEN.to_json().replace('"balie-key_1"', '""')).balie == ""


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"report_id": "../../etc/passwd"},
        {"report_id": ""},
        {"provider": 7},
        {"balie": "a b"},
        {"start": "2024-13-01"},
        {"end": "2023-12-31"},
        {"start": "20240101"},
        {"created_at": True},
        {"created_at": "1700000000"},
        {"created_at": float("inf")},
        {"report_id": "x" * 201},
    ],
)
def test_a_malformed_token_is_refused(change: dict[str, object]) -> None:
    """A token from outside with a wrong version, field, date or number is refused."""
    data = json.loads(TOKEN.to_json()) | change
    with pytest.raises(InvalidArgumentError):
        ReportToken.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["", "[]", "not json", "{" * 5000, " " * (MAX_TOKEN_CHARS + 1)])
def test_text_that_is_no_token_is_refused(text: str) -> None:
    """Empty, non-object, non-JSON and oversized texts are refused before parsing."""
    with pytest.raises(InvalidArgumentError):
        ReportToken.from_json(text)


def test_a_token_made_from_the_current_version_s_json_still_reads() -> None:
    """The JSON a token of this version wrote, byte for byte, reads back to the same token."""
    text = (
        '{"v":1,"provider":"uitpas","report_id":"42","balie":"b-1",'
        '"start":"2024-01-01","end":"2024-03-31","created_at":1700000000}'
    )
    token = ReportToken.from_json(text)
    assert token == ReportToken("uitpas", "42", "b-1", date(2024, 1, 1), date(2024, 3, 31), 1.7e9)
    assert isinstance(token.created_at, float)


@pytest.mark.parametrize(
    "fields",
    [
        {"report_id": "a/b"},
        {"balie": "org 1"},
        {"provider": ""},
        {"start": datetime(2024, 1, 1, tzinfo=timezone.utc)},
        {"end": date(2023, 1, 1)},
        {"created_at": float("nan")},
    ],
)
def test_a_token_that_could_not_be_read_back_is_not_made(fields: dict[str, object]) -> None:
    """The constructor refuses what from_json would: every token made reads back."""
    with pytest.raises(InvalidArgumentError):
        ReportToken(**(attrs.asdict(TOKEN, recurse=False) | fields))  # type: ignore[arg-type]


def test_check_balie_passes_plain_identifiers_only() -> None:
    """check_balie lets a client refuse, before creating, a balie no token can carry."""
    assert ReportToken.check_balie("org-0001") == "org-0001"
    for balie in ("", "a b", "x" * 201, "../x"):
        with pytest.raises(InvalidArgumentError):
            ReportToken.check_balie(balie)


def test_accept_token_takes_the_json_or_the_token_of_its_provider_only() -> None:
    """A token or its text of the right provider passes; another's, or no token, is refused."""
    assert accept_token(TOKEN.to_json(), "uitpas-xml") == TOKEN
    assert accept_token(TOKEN, "uitpas-xml") is TOKEN
    with pytest.raises(InvalidArgumentError, match="'uitpas-xml', not this client's 'finam'"):
        accept_token(TOKEN, "finam")
    with pytest.raises(InvalidArgumentError):
        accept_token(42, "uitpas-xml")  # type: ignore[arg-type]


def test_a_tokens_age_is_never_negative() -> None:
    """Age is now minus creation, 0 for a clock behind the creator's."""
    assert TOKEN.age(TOKEN.created_at + 12.5) == 12.5
    assert TOKEN.age(TOKEN.created_at - 60.0) == 0.0


def test_memory_prefers_the_balies_own_times_and_stays_bounded() -> None:
    """Three own samples make a balie's history; fewer fall back to all; size is capped."""
    memory = GenerationMemory(size=5)
    memory.record("A", 10.0)
    memory.record("B", 20.0)
    memory.record("B", float("nan"))
    assert sorted(memory.times("A")) == [10.0, 20.0]
    for seconds in (11.0, 12.0):
        memory.record("A", seconds)
    assert sorted(memory.times("A")) == [10.0, 11.0, 12.0]
    for seconds in range(10):
        memory.record("C", float(seconds + 1))
    assert len(memory) == 5


class _Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def wait(self, check: Callable[[], Awaitable[bool]], *, age: float) -> float:
        """Run wait_until_ready on this clock, without history, seed 1."""
        return await wait_until_ready(
            check,
            report_id="1",
            history=(),
            policy=PollPolicy(),
            age=age,
            clock=self,
            sleep=self.sleep,
            rng=random.Random(1),
        )


async def test_the_wait_polls_on_the_ladder_until_ready() -> None:
    """No history: the first poll is within a step of 0.12 s; a 5 s report is seen <= 25% late."""
    clock = _Clock()
    ready_at = clock.now + 5.0

    async def check() -> bool:
        return clock.now >= ready_at

    seen = await clock.wait(check, age=0.0)
    assert SINGLE_FIRST_POLL <= clock.sleeps[0] < SINGLE_FIRST_POLL * SINGLE_BLIND_RATIO
    # The estimate lies between the last two polls, one ratio apart, around 5 s.
    assert 5.0 / SINGLE_BLIND_RATIO <= seen <= 5.0 * SINGLE_BLIND_RATIO
    assert clock.now - 1000.0 >= 5.0


async def test_a_resumed_report_polls_from_its_true_age() -> None:
    """A report 30 s old when resumed: its first poll is one ladder step after 30 s."""
    clock = _Clock()

    async def check() -> bool:
        return True

    seen = await clock.wait(check, age=30.0)
    assert len(clock.sleeps) == 1
    assert 30.0 < clock.now - 1000.0 + 30.0 <= 30.0 * SINGLE_BLIND_RATIO
    # Between the resume's 30 s and the first poll.
    assert 30.0 < seen < 30.0 * SINGLE_BLIND_RATIO


async def test_the_wait_never_sleeps_past_the_deadline() -> None:
    """A report that never completes: REPORT_TIMEOUT, and the clock stays within the timeout."""
    clock = _Clock()
    start = clock.now

    async def check() -> bool:
        return False

    with pytest.raises(ReportTimeoutError):
        await wait_until_ready(
            check,
            report_id="1",
            history=(20.0, 21.0, 22.0),
            policy=PollPolicy(timeout=100.0),
            age=10.0,
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.now - start <= 90.0
