"""When to poll next: the batch scheduler and the single-report schedule.

Moved to :mod:`uitpas_async.engine.polling`; this name stays for code that imports it.
"""

from __future__ import annotations

from uitpas_async.engine.polling import (
    BatchPollScheduler,
    GenerationHistory,
    GenerationSample,
    PollRole,
    SingleReportSchedule,
)

__all__ = [
    "BatchPollScheduler",
    "GenerationHistory",
    "GenerationSample",
    "PollRole",
    "SingleReportSchedule",
]
