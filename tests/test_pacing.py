"""PriorityPacer in virtual time: requests 1/rate apart, the most urgent waiting one first."""

from __future__ import annotations

import asyncio
import itertools

from virtual_time import VirtualClock

from uitpas_async.engine.pacing import PriorityPacer


def _pacer(clock: VirtualClock, rate: float) -> PriorityPacer:
    return PriorityPacer(rate, clock=clock, sleep=clock.sleep)


async def test_requests_leave_at_most_rate_per_second() -> None:
    """Ten requests at once at 5 per second leave 0.2 s apart, the first at once."""
    clock = VirtualClock()
    pacer = _pacer(clock, 5.0)
    released: list[float] = []

    async def request() -> None:
        await pacer.acquire()
        released.append(clock.now)

    await clock.run(asyncio.gather(*(request() for _ in range(10))))
    assert released[0] == 0.0
    gaps = [later - earlier for earlier, later in itertools.pairwise(released)]
    assert all(abs(gap - 0.2) < 1e-9 for gap in gaps)


async def test_urgent_requests_overtake_waiting_ones() -> None:
    """A create (urgency 0) queued behind polls (urgency 3) leaves next; equals keep order."""
    clock = VirtualClock()
    pacer = _pacer(clock, 1.0)
    order: list[str] = []

    async def request(name: str, urgency: int, arrive: float) -> None:
        await clock.sleep(arrive)
        await pacer.acquire(urgency)
        order.append(name)

    requests = [request(f"poll{i}", 3, 0.0) for i in range(4)]
    requests.append(request("create", 0, 0.5))
    await clock.run(asyncio.gather(*requests))
    assert order == ["poll0", "create", "poll1", "poll2", "poll3"]


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    """A request cancelled while waiting neither blocks the others nor takes a turn."""
    clock = VirtualClock()
    pacer = _pacer(clock, 2.0)
    released: dict[str, float] = {}

    async def request(name: str) -> None:
        await pacer.acquire()
        released[name] = clock.now

    async def scenario() -> None:
        first = asyncio.ensure_future(request("first"))
        doomed = asyncio.ensure_future(request("doomed"))
        last = asyncio.ensure_future(request("last"))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.gather(first, last, return_exceptions=True)

    await clock.run(scenario())
    assert set(released) == {"first", "last"}
    assert released["last"] == 0.5


async def test_close_cancels_the_requests_still_waiting() -> None:
    """Closing the pacer (the client closing) cancels waiting requests instead of stranding them."""
    clock = VirtualClock()
    pacer = _pacer(clock, 1.0)

    async def scenario() -> list[object]:
        await pacer.acquire()
        waiting = [asyncio.ensure_future(pacer.acquire()) for _ in range(3)]
        await asyncio.sleep(0)
        await pacer.close()
        return await asyncio.gather(*waiting, return_exceptions=True)

    outcomes = await clock.run(scenario())
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
