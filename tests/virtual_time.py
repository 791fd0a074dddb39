"""Virtual time for tests: sleeps are timers on a fake clock that jumps when every task waits."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class VirtualClock:
    """Fake monotonic time with real interleaving: sleeps are timers, time jumps when all wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def run(self, work: Awaitable[T]) -> T:
        """Run ``work`` to its end, firing timers in time order whenever everything waits."""
        task = asyncio.ensure_future(work)
        while True:
            # Let every job run until it blocks on a timer or an event.
            for _ in range(8):
                await asyncio.sleep(0)
            if task.done():
                return task.result()
            while self._timers and self._timers[0][2].cancelled():
                heapq.heappop(self._timers)
            assert self._timers, "every job waits, but on no timer"
            due = self._timers[0][0]
            self.now = max(self.now, due)
            while self._timers and self._timers[0][0] <= due:
                future = heapq.heappop(self._timers)[2]
                if not future.done():
                    future.set_result(None)
