"""Client-side request pacing: at most ``rate`` requests per second, the most urgent first.

Under a server's rate limit every request waits its turn, and the order of the
queue decides how fast a batch ends: a create that waits behind polls delays
the start of a report's generation, while a poll that waits costs little. So
waiting requests leave in order of urgency (lower first), then of arrival.

Requests are spaced at least ``1 / rate`` apart, with no burst: a server that
admits ``rate`` requests per second sees no more, whatever it allows in bursts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable

__all__ = ["PriorityPacer"]


class PriorityPacer:
    """Releases one request every ``1 / rate`` seconds, the most urgent waiting one first."""

    __slots__ = ("_clock", "_interval", "_next", "_order", "_queue", "_release_task", "_sleep")

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        # Earliest clock reading at which the next request may leave.
        self._next = -math.inf
        # Waiting requests: (urgency, arrival, future resolved when it may leave).
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._release_task: asyncio.Task[None] | None = None

    async def acquire(self, urgency: int = 0) -> None:
        """Wait until this request may be sent; lower ``urgency`` values go first."""
        now = self._clock()
        if not self._queue and now >= self._next:
            self._next = now + self._interval
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (urgency, next(self._order), turn))
        if self._release_task is None or self._release_task.done():
            self._release_task = asyncio.ensure_future(self._release())
        # Cancelled while waiting, the future is cancelled too, and its turn passes on.
        await turn

    async def _release(self) -> None:
        """Hand out turns, one per interval, until nobody waits."""
        while self._queue:
            delay = self._next - self._clock()
            if delay > 0:
                await self._sleep(delay)
            while self._queue and self._queue[0][2].done():
                heapq.heappop(self._queue)
            if not self._queue:
                break
            turn = heapq.heappop(self._queue)[2]
            self._next = max(self._clock(), self._next) + self._interval
            turn.set_result(None)

    async def close(self) -> None:
        """Stop handing out turns; requests still waiting are cancelled."""
        task, self._release_task = self._release_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for _, _, turn in self._queue:
            turn.cancel()
        self._queue.clear()
