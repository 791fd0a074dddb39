"""One report awaited alone: a resumable token, a client's memory, and the wait.

A web service may start a report in one request and finish it in another, in
another process: :class:`ReportToken` is what it keeps in between, a small
JSON-safe value (the provider, the report id, the balie, the period and when
the report was created), much like Azure's continuation tokens. A client's
``resume_*`` method takes one and waits for and downloads that report, polling
on the learned schedule from the report's true age.

:class:`GenerationMemory` is a client's small in-memory history of the
generation times it observed; :func:`wait_until_ready` is the polling loop,
shared by every provider, on a :class:`~uitpas_async.engine.polling.SingleReportSchedule`;
:func:`wait_with_policy` polls on a :class:`~uitpas_async.engine.config.PollPolicy`'s own
growing delays instead.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import attrs

from uitpas_async.engine.config import PollPolicy
from uitpas_async.engine.errors import InvalidArgumentError, ReportTimeoutError
from uitpas_async.engine.polling import SINGLE_MIN_HISTORY, SingleReportSchedule

__all__ = ["GenerationMemory", "ReportToken", "wait_until_ready", "wait_with_policy"]

_Answer = TypeVar("_Answer")

log = logging.getLogger("uitpas_async")

#: Version of the token's JSON form.
TOKEN_VERSION = 1
#: Longest token text accepted, in characters: a token comes from outside.
MAX_TOKEN_CHARS = 1024
#: Longest provider, report id or balie accepted in a token.
MAX_TOKEN_FIELD = 200
#: What a token's text fields may hold: printable, no separators that could smuggle paths.
_FIELD = re.compile(rf"[A-Za-z0-9._:@+\-]{{1,{MAX_TOKEN_FIELD}}}")
#: Samples a client remembers (newest first); a balie's own are used once it has this many.
DEFAULT_MEMORY_SIZE = 200


def _field(value: object, name: str) -> str:
    if not isinstance(value, str) or not _FIELD.fullmatch(value):
        raise InvalidArgumentError(f"report token: {name} is missing or not a plain identifier")
    return value


def _day(value: object, name: str) -> date:
    if not isinstance(value, str) or len(value) != len("2024-01-01"):
        raise InvalidArgumentError(f"report token: {name} is not an ISO date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"report token: {name} is not an ISO date") from exc


@attrs.frozen
class ReportToken:
    """A started report, as a service keeps it between two requests."""

    provider: str
    report_id: str
    #: The balie (UiTPAS: its consumer key); empty when the provider has none.
    balie: str
    start: date
    end: date
    #: Wall-clock time (seconds since the epoch) the report was created.
    created_at: float

    def to_json(self) -> str:
        """Return the token as compact JSON text (no secret is in it)."""
        return json.dumps(
            {
                "v": TOKEN_VERSION,
                "provider": self.provider,
                "report_id": self.report_id,
                "balie": self.balie,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "created_at": round(self.created_at, 3),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ReportToken:
        """Parse a token's JSON text, refusing anything malformed or oversized.

        Raises:
            InvalidArgumentError: not a token of this version, or a field is wrong.
        """
        if not isinstance(text, str) or len(text) > MAX_TOKEN_CHARS:
            raise InvalidArgumentError("report token: not text, or too long")
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise InvalidArgumentError("report token: not JSON") from exc
        if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
            raise InvalidArgumentError("report token: not a version-1 token")
        created = data.get("created_at")
        if (
            isinstance(created, bool)
            or not isinstance(created, (int, float))
            or not math.isfinite(created)
        ):
            raise InvalidArgumentError("report token: created_at is not a number")
        balie = data.get("balie")
        start, end = _day(data.get("start"), "start"), _day(data.get("end"), "end")
        if end < start:
            raise InvalidArgumentError("report token: the period ends before it starts")
        return cls(
            _field(data.get("provider"), "provider"),
            _field(data.get("report_id"), "report_id"),
            "" if balie == "" else _field(balie, "balie"),
            start,
            end,
            float(created),
        )


class GenerationMemory:
    """A client's bounded memory of observed generation times, per balie."""

    __slots__ = ("_samples",)

    def __init__(self, size: int = DEFAULT_MEMORY_SIZE) -> None:
        self._samples: collections.deque[tuple[str, float]] = collections.deque(maxlen=size)

    def record(self, balie: str, seconds: float) -> None:
        """Remember that a report of ``balie`` took ``seconds`` to be seen completed."""
        if math.isfinite(seconds) and seconds > 0:
            self._samples.appendleft((balie, seconds))

    def times(self, balie: str) -> tuple[float, ...]:
        """Return the balie's own times when it has enough, else every balie's."""
        own = tuple(seconds for key, seconds in self._samples if key == balie)
        if len(own) >= SINGLE_MIN_HISTORY:
            return own
        return tuple(seconds for _, seconds in self._samples)

    def __len__(self) -> int:
        return len(self._samples)


async def wait_until_ready(
    check: Callable[[], Awaitable[bool]],
    *,
    report_id: str,
    history: tuple[float, ...],
    policy: PollPolicy,
    age: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random | None = None,
) -> float:
    """Poll ``check`` on a single-report schedule until ready; return its generation time.

    That time is estimated between the last two polls (their geometric mean): the
    report completed after the one and before the other. Recorded in a history,
    it is unbiased, where the age at the ready poll is a step late.

    ``age`` is how old the report already is (0 for one just created, more for a
    resumed one); the deadline is ``policy.timeout`` after its creation, and no
    sleep is started that would end past it.

    Raises:
        ReportTimeoutError: the deadline would pass before the next poll.
    """
    schedule = SingleReportSchedule.for_report(history, rng=rng, max_interval=policy.max_interval)
    origin = clock() - max(age, 0.0)
    deadline = origin + policy.timeout
    polls = 0
    # Age at the last poll that found the report not ready (or when waiting began).
    before = max(age, 0.0)
    while True:
        now = clock()
        delay = schedule.delay(now - origin)
        if now + delay > deadline:
            raise ReportTimeoutError(
                f"report {report_id} not completed within {policy.timeout:g}s ({polls} polls)"
            )
        log.debug("report %s: poll %d in %.2fs", report_id, polls + 1, delay)
        await sleep(delay)
        polls += 1
        asked = clock() - origin
        if await check():
            return math.sqrt(max(before, schedule.first_poll / schedule.ratio) * asked)
        before = asked


async def wait_with_policy(
    poll: Callable[[], Awaitable[_Answer]],
    ready: Callable[[_Answer], bool],
    *,
    report_id: str,
    policy: PollPolicy,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> _Answer:
    """Poll on the policy's delays until ``ready`` accepts an answer; return that answer.

    ``ready`` may raise for a report that failed. No sleep is started that would
    end past ``policy.timeout`` from now.

    Raises:
        ReportTimeoutError: the timeout would pass before the next poll.
    """
    deadline = clock() + policy.timeout
    polls = 0
    while True:
        delay = policy.delay(polls)
        if clock() + delay > deadline:
            raise ReportTimeoutError(
                f"report {report_id} not ready within {policy.timeout:g}s ({polls} polls)"
            )
        await sleep(delay)
        answer = await poll()
        polls += 1
        if ready(answer):
            return answer
