"""Run the sandbox: the ``Sandbox`` context manager and the ``serve`` coroutine."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from aiohttp import web

from uitpas_async.sandboxkit.loopback import DEFAULT_HOST, LoopbackServer
from uitpas_async.xml_api.models import Credentials
from uitpas_async.xml_api.sandbox.app import SandboxApp
from uitpas_async.xml_api.sandbox.balies import default_balies
from uitpas_async.xml_api.sandbox.config import FaultRule, SandboxBalie, SandboxConfig
from uitpas_async.xml_api.sandbox.faults import FaultPlan
from uitpas_async.xml_api.sandbox.state import SandboxReport, SandboxState, SandboxStats
from uitpas_async.xml_api.sandbox.tokens import TokenRegistry

__all__ = ["DEFAULT_HOST", "Sandbox", "serve"]


class Sandbox(LoopbackServer):
    """A running local imitation of the UiTPAS XML API; use ``async with``."""

    label = "UiTPAS sandbox"

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.config = config if config is not None else SandboxConfig()
        balies = (
            default_balies(self.config.balies, self.config.seed)
            if isinstance(self.config.balies, int)
            else self.config.balies
        )
        # One RNG for generation times and fault chances: one seed, one run.
        rng = random.Random(self.config.seed)
        self._state = SandboxState(self.config, balies, rng, clock=clock, wall_clock=wall_clock)
        self._faults = FaultPlan(self.config.faults, rng)
        self._app = SandboxApp(
            self.config, self._state, self._faults, clock=clock, wall_clock=wall_clock
        )

    @property
    def app(self) -> web.Application:
        """Return the aiohttp application (to mount it in a test server of your own)."""
        return self._app.app

    def _application(self) -> web.Application:
        return self._app.app

    @property
    def base_url(self) -> str:
        """Return the API base URL, prefix included, like ``https://test.uitid.be/uitid/rest``."""
        return self.root_url + self.config.prefix

    @property
    def credentials(self) -> Credentials:
        """Return the credentials the server accepts."""
        return self.config.credentials

    @property
    def tokens(self) -> TokenRegistry:
        """Return the login flow's request tokens and the access tokens the API accepts."""
        return self._app.tokens

    @property
    def balies(self) -> list[SandboxBalie]:
        """Return the balies the server knows; the first is the OAuth consumer's own."""
        return list(self._state.balies)

    @property
    def stats(self) -> SandboxStats:
        """Return the live counters."""
        return self._state.stats

    @property
    def reports(self) -> dict[str, SandboxReport]:
        """Return the live reports by id (forgotten ones are gone)."""
        return self._state.reports

    def add_fault(self, rule: FaultRule) -> None:
        """Add a fault rule while running; it is tried after the existing ones."""
        self._faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._faults.clear()

    def forget_report(self, report_id: str) -> bool:
        """Make the server forget a report; return whether it knew it."""
        return self._state.forget(report_id)


async def serve(
    config: SandboxConfig,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve the sandbox until cancelled, calling ``ready`` once it listens."""
    async with Sandbox(config, host=host, port=port) as sandbox:
        if ready is not None:
            ready(sandbox)
        await asyncio.Event().wait()  # only cancellation ends this
