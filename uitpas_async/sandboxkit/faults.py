"""Fault rules and the deterministic plan that picks which one, if any, a request gets.

Both are generic over a provider's endpoint names and fault kinds. A provider
spells its kinds as a ``Literal`` built on the kit's (``AnywhereFaultKind``,
``ReportFaultKind``, plus its own), subclasses ``BaseFaultRule`` naming its
endpoints, its kinds and the field that says what a request acts for (a balie,
an account), and gives ``FaultPlan`` the endpoints each kind makes sense on.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar, get_args

import attrs

from uitpas_async.sandboxkit.config import check_probability

__all__ = [
    "ANYWHERE_FAULT_KINDS",
    "REPORT_FAULT_KINDS",
    "AnywhereFaultKind",
    "BaseFaultRule",
    "FaultPlan",
    "ReportFaultKind",
    "fault_endpoints",
]

_Kind = TypeVar("_Kind", bound=str)
_Rule = TypeVar("_Rule", bound="BaseFaultRule[Any]")

#: Faults any endpoint can suffer, the server's and the network's; the pipeline carries
#: out all but server_error and bad_gateway, whose bodies the provider gives.
AnywhereFaultKind = Literal[
    "server_error",
    "bad_gateway",
    "unavailable",
    "rate_limited",
    "drop",
    "truncate",
    "slow",
]
ANYWHERE_FAULT_KINDS: tuple[AnywhereFaultKind, ...] = get_args(AnywhereFaultKind)
#: Faults in a report's life, which the pipeline carries out with the provider's hooks.
ReportFaultKind = Literal["fail_generation", "forget_report"]
REPORT_FAULT_KINDS: tuple[ReportFaultKind, ...] = get_args(ReportFaultKind)


def fault_endpoints(endpoints: Iterable[str], **only: Iterable[str]) -> dict[str, frozenset[str]]:
    """Return where each kind can happen: anywhere kinds everywhere, the rest as ``only`` says."""
    everywhere = frozenset(endpoints)
    table: dict[str, frozenset[str]] = dict.fromkeys(ANYWHERE_FAULT_KINDS, everywhere)
    table.update({kind: frozenset(names) for kind, names in only.items()})
    return table


def _check_kind(rule: BaseFaultRule[Any], attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in rule.KINDS:
        raise ValueError(f"{attribute.name} must be one of {rule.KINDS}, not {value!r}")


def _check_endpoint(rule: BaseFaultRule[Any], attribute: attrs.Attribute[str], value: str) -> None:
    if value != "*" and value not in rule.ENDPOINTS:
        raise ValueError(f"{attribute.name} must be '*' or one of {rule.ENDPOINTS}, not {value!r}")


@attrs.frozen
class BaseFaultRule(Generic[_Kind]):
    """Inject one kind of fault into matching requests; a provider subclasses it.

    The subclass names its endpoints, kinds and subject field as class keywords::

        @attrs.frozen
        class FaultRule(BaseFaultRule[FaultKind], endpoints=ENDPOINTS, kinds=FAULT_KINDS,
                        subject="balie"):
            balie: str | None = None
    """

    #: The endpoint names a rule may target.
    ENDPOINTS: ClassVar[tuple[str, ...]] = ()
    #: The fault kinds a rule may name.
    KINDS: ClassVar[tuple[str, ...]] = ()
    #: The subclass's field that limits a rule to one subject, if it has one.
    SUBJECT: ClassVar[str | None] = None

    kind: _Kind = attrs.field(validator=_check_kind)
    #: Endpoint name, or "*" for every endpoint the kind makes sense on.
    endpoint: str = attrs.field(default="*", validator=_check_endpoint)
    #: Chance that a matching request gets the fault (drawn from the seeded RNG).
    probability: float = attrs.field(default=1.0, validator=check_probability)
    #: Apply to at most this many requests; None means no limit.
    count: int | None = None
    #: Server seconds for "slow" (delay) and "unavailable"/"rate_limited" (Retry-After);
    #: scaled by time_scale.
    delay: float = 0.0
    #: On "create": True creates the report before answering with the fault.
    #: Keyword-only, so the subclass's subject field comes right after ``delay``.
    after_effect: bool = attrs.field(default=False, kw_only=True)

    def __init_subclass__(
        cls,
        *,
        endpoints: tuple[str, ...] | None = None,
        kinds: tuple[str, ...] | None = None,
        subject: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        # attrs rebuilds a slotted class without the keywords: keep what the first pass set.
        if endpoints is not None:
            cls.ENDPOINTS = endpoints
        if kinds is not None:
            cls.KINDS = kinds
        if subject is not None:
            cls.SUBJECT = subject

    @property
    def subject(self) -> str | None:
        """Return what the rule is limited to (a balie, an account), or None for any."""
        if self.SUBJECT is None:
            return None
        value: str | None = getattr(self, self.SUBJECT)
        return value


class FaultPlan(Generic[_Rule]):
    """The active fault rules and how many times each has fired."""

    __slots__ = ("_fired", "_rng", "_rules", "_where")

    def __init__(
        self,
        rules: Iterable[_Rule],
        rng: random.Random,
        *,
        where: Mapping[str, frozenset[str]],
    ) -> None:
        #: Rules in the order they are tried.
        self._rules: list[_Rule] = list(rules)
        #: Times each rule (by position) has fired, to honour ``count``.
        self._fired: list[int] = [0] * len(self._rules)
        #: The sandbox's seeded RNG, shared so one seed fixes the whole run.
        self._rng = rng
        #: Endpoints each kind can happen on; a rule for "*" only fires where it makes sense.
        self._where = where

    @property
    def rules(self) -> tuple[_Rule, ...]:
        """Return the rules in the order they are tried."""
        return tuple(self._rules)

    def add(self, rule: _Rule) -> None:
        """Append a rule; it is tried after the existing ones."""
        self._rules.append(rule)
        self._fired.append(0)

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()
        self._fired.clear()

    def pick(self, endpoint: str, subject: str | None) -> _Rule | None:
        """Return the first rule that fires for this request, counting it, or None."""
        for index, rule in enumerate(self._rules):
            if rule.endpoint not in ("*", endpoint):
                continue
            if endpoint not in self._where[rule.kind]:
                continue
            if rule.subject is not None and rule.subject != subject:
                continue
            if rule.count is not None and self._fired[index] >= rule.count:
                continue
            # Draw only for real chances, so certain rules leave the RNG sequence alone.
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            self._fired[index] += 1
            return rule
        return None
