"""When to poll next: the batch scheduler.

Moved to :mod:`uitpas_async.engine.polling`; this name stays for code that imports it.
"""

from __future__ import annotations

from uitpas_async.engine.polling import (
    BatchPollScheduler,
    PollRole,
)

__all__ = [
    "BatchPollScheduler",
    "PollRole",
]
