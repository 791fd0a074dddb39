"""Which fault, if any, a request gets: rules tried in order, counts and chances kept here."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from uitpas_async.xml_api.sandbox.config import Endpoint, FaultKind, FaultRule

__all__ = ["FAULT_ENDPOINTS", "FaultPlan"]

_ALL: frozenset[Endpoint] = frozenset(("create", "status", "download", "periods", "price"))

#: Endpoints each kind can happen on; a rule for endpoint "*" only fires where it makes sense.
FAULT_ENDPOINTS: Mapping[FaultKind, frozenset[Endpoint]] = {
    "server_error": _ALL,
    "bad_gateway": _ALL,
    "unavailable": _ALL,
    "rate_limited": _ALL,
    "drop": _ALL,
    "truncate": _ALL,
    "slow": _ALL,
    "malformed_xml": _ALL - {"download"},
    "not_zip": frozenset(("download",)),
    "fail_generation": frozenset(("create",)),
    "forget_report": frozenset(("create", "status", "download")),
}


class FaultPlan:
    """The active fault rules and how many times each has fired."""

    __slots__ = ("_fired", "_rng", "_rules")

    def __init__(self, rules: Iterable[FaultRule], rng: random.Random) -> None:
        #: Rules in the order they are tried.
        self._rules: list[FaultRule] = list(rules)
        #: Times each rule (by position) has fired, to honour ``count``.
        self._fired: list[int] = [0] * len(self._rules)
        #: The sandbox's seeded RNG, shared so one seed fixes the whole run.
        self._rng = rng

    def add(self, rule: FaultRule) -> None:
        """Append a rule; it is tried after the existing ones."""
        self._rules.append(rule)
        self._fired.append(0)

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()
        self._fired.clear()

    def pick(self, endpoint: Endpoint, balie: str | None) -> FaultRule | None:
        """Return the first rule that fires for this request, counting it, or None."""
        for index, rule in enumerate(self._rules):
            if rule.endpoint not in ("*", endpoint):
                continue
            if endpoint not in FAULT_ENDPOINTS[rule.kind]:
                continue
            if rule.balie is not None and rule.balie != balie:
                continue
            if rule.count is not None and self._fired[index] >= rule.count:
                continue
            # Draw only for real chances, so certain rules leave the RNG sequence alone.
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            self._fired[index] += 1
            return rule
        return None
