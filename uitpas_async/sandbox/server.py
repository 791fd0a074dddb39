"""Run the sandbox: the ``Sandbox`` context manager and the ``serve`` coroutine."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from ..models import Credentials
from .app import SandboxApp
from .balies import default_balies
from .config import FaultRule, SandboxBalie, SandboxConfig
from .faults import FaultPlan
from .state import SandboxReport, SandboxState, SandboxStats

__all__ = ["DEFAULT_HOST", "Sandbox", "serve"]

logger = logging.getLogger(__name__)

#: Loopback only: the sandbox accepts one well-known token and must not face a network.
DEFAULT_HOST = "127.0.0.1"


class Sandbox:
    """A running local imitation of the UiTPAS XML API; use ``async with``."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else SandboxConfig()
        self._host = host
        self._port = port
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
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    @property
    def app(self) -> web.Application:
        """Return the aiohttp application (to mount it in a test server of your own)."""
        return self._app.app

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        if self._bound_port is None:
            raise RuntimeError("the sandbox is not running")
        return self._bound_port

    @property
    def root_url(self) -> str:
        """Return ``http://127.0.0.1:PORT`` (no prefix; the stats endpoint lives here)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Return the API base URL, prefix included, like ``https://test.uitid.be/uitid/rest``."""
        return self.root_url + self.config.prefix

    @property
    def credentials(self) -> Credentials:
        """Return the credentials the server accepts."""
        return self.config.credentials

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

    async def start(self) -> None:
        """Start listening."""
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        # No access log: it would print signed URLs (signatures, nonces) for every request.
        runner = web.AppRunner(self._app.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = runner.addresses[0][1]
        logger.info("UiTPAS sandbox listening on %s", self.base_url)

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


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
