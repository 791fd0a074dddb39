"""Requests spread evenly under a rate limit, the most urgent first.

Moved to :mod:`uitpas_async.engine.pacing`; this name stays for code that imports it.
"""

from __future__ import annotations

from uitpas_async.engine.pacing import (
    PriorityPacer,
)

__all__ = [
    "PriorityPacer",
]
