"""The job lifecycle as data: states, events and the transition table.

Moved to :mod:`uitpas_async.engine.jobs`; this name stays for code that imports it.
"""

from __future__ import annotations

from uitpas_async.engine.jobs import (
    TRANSITIONS,
    InvalidTransitionError,
    JobEvent,
    JobState,
    advance,
)

__all__ = [
    "TRANSITIONS",
    "InvalidTransitionError",
    "JobEvent",
    "JobState",
    "advance",
]
