"""Where each fault kind can happen in the UiTPAS XML API, and its fault plan (the kit's)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from uitpas_async.sandboxkit.faults import FaultPlan, fault_endpoints
from uitpas_async.xml_api.sandbox.config import ENDPOINTS, FaultRule

__all__ = ["FAULT_ENDPOINTS", "FaultPlan", "fault_plan"]

#: Endpoints each kind can happen on; a rule for endpoint "*" only fires where it makes sense.
FAULT_ENDPOINTS: Mapping[str, frozenset[str]] = fault_endpoints(
    ENDPOINTS,
    malformed_xml=set(ENDPOINTS) - {"download"},
    not_zip=("download",),
    fail_generation=("create",),
    forget_report=("create", "status", "download"),
)


def fault_plan(rules: Iterable[FaultRule], rng: random.Random) -> FaultPlan[FaultRule]:
    """Return a plan that tries ``rules`` in order, drawing chances from ``rng``."""
    return FaultPlan(rules, rng, where=FAULT_ENDPOINTS)
