"""One report awaited alone: a resumable token, a client's memory, and the wait.

A web service may start a report in one request and finish it in another, in
another process: :class:`ReportToken` is what it keeps in between, a small
JSON-safe value (the provider, the report id, the balie, the period and when
the report was created), much like Azure's continuation tokens. A client's
``resume_*`` method takes one and waits for and downloads that report, polling
on the learned schedule from the report's true age. What a token's ``balie``
holds is the provider's: the XML API's balie consumer key, the 4.0 API's
organizer id, Finam's account id.

:class:`GenerationMemory` is a client's small in-memory history of the
generation times it observed; :func:`wait_until_ready` is the polling loop,
shared by every provider, on a :class:`~uitpas_async.engine.polling.SingleReportSchedule`.
Every client reaches both through
:class:`~uitpas_async.engine.client.PipelineClient`.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

import attrs

from uitpas_async.engine.config import PollPolicy
from uitpas_async.engine.errors import InvalidArgumentError, ReportTimeoutError
from uitpas_async.engine.polling import SINGLE_MIN_HISTORY, SingleReportSchedule

__all__ = ["GenerationMemory", "ReportToken", "accept_token", "wait_until_ready"]

log = logging.getLogger("uitpas_async")

#: Version of the token's JSON form.
TOKEN_VERSION = 1
#: Longest token text accepted, in characters: a token comes from outside.
MAX_TOKEN_CHARS = 1024
#: Longest provider, report id or balie accepted in a token.
MAX_TOKEN_FIELD = 200
#: What a token's text fields may hold: printable, no separators that could smuggle paths.
_FIELD = re.compile(rf"[A-Za-z0-9._:@+\-]{{1,{MAX_TOKEN_FIELD}}}")
#: The members of a token's JSON object besides its version.
_JSON_FIELDS = ("provider", "report_id", "balie", "start", "end", "created_at")
#: Samples a client remembers (newest first); a balie's own are used once it has this many.
DEFAULT_MEMORY_SIZE = 200


def _field(value: object, name: str) -> str:
    if not isinstance(value, str) or not _FIELD.fullmatch(value):
        raise InvalidArgumentError(f"report token: {name} is missing or not a plain identifier")
    return value


def _check_field(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    _field(value, attribute.name)


def _check_balie(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value != "":
        _field(value, attribute.name)


def _check_day(_: object, attribute: attrs.Attribute[date], value: date) -> None:
    # A datetime is a date too, but its JSON form would not read back as one.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidArgumentError(f"report token: {attribute.name} is not a date")


def _check_created(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(f"report token: {attribute.name} is not a number")


def _day(value: object, name: str) -> date:
    if not isinstance(value, str) or len(value) != len("2024-01-01"):
        raise InvalidArgumentError(f"report token: {name} is not an ISO date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"report token: {name} is not an ISO date") from exc


@attrs.frozen
class ReportToken:
    """A started report, as a service keeps it between two requests.

    A token is checked when it is made as when it is read, so every token a
    client hands out reads back from its JSON.

    Raises:
        InvalidArgumentError: a field a token cannot carry.
    """

    provider: str = attrs.field(validator=_check_field)
    report_id: str = attrs.field(validator=_check_field)
    #: Who the report is for: the XML API's balie consumer key, the 4.0 API's
    #: organizer id, Finam's account id; empty when not known.
    balie: str = attrs.field(validator=_check_balie)
    start: date = attrs.field(validator=_check_day)
    end: date = attrs.field(validator=_check_day)
    #: Wall-clock time (seconds since the epoch) the report was created.
    created_at: float = attrs.field(validator=_check_created)

    def __attrs_post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidArgumentError("report token: the period ends before it starts")

    @staticmethod
    def check_balie(balie: str) -> str:
        """Return ``balie`` if a token can carry it, so a report is not started unresumable.

        Raises:
            InvalidArgumentError: not a plain identifier.
        """
        return _field(balie, "balie")

    def age(self, now: float) -> float:
        """Return the report's age in seconds at wall-clock time ``now`` (never negative)."""
        return max(0.0, now - self.created_at)

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
        # Read as they are: the constructor checks the text fields, the number and the period.
        given: dict[str, Any] = {key: data.get(key) for key in _JSON_FIELDS}
        created = given["created_at"]
        if isinstance(created, int) and not isinstance(created, bool):
            created = float(created)
        return cls(
            given["provider"],
            given["report_id"],
            given["balie"],
            _day(given["start"], "start"),
            _day(given["end"], "end"),
            created,
        )


def accept_token(token: ReportToken | str, provider: str) -> ReportToken:
    """Return ``token`` (read from its JSON text if need be) if it is ``provider``'s.

    Raises:
        InvalidArgumentError: the token is malformed, or another provider's.
    """
    if isinstance(token, str):
        token = ReportToken.from_json(token)
    elif not isinstance(token, ReportToken):
        raise InvalidArgumentError("report token: not a ReportToken or its JSON text")
    if token.provider != provider:
        raise InvalidArgumentError(
            f"report token of provider {token.provider!r}, not this client's {provider!r}"
        )
    return token


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
