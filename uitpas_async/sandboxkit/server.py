"""Bring a sandbox up: config, seeded RNG, pipeline, loopback server, and ``serve``."""

from __future__ import annotations

import abc
import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from aiohttp import web

from uitpas_async.sandboxkit.config import BaseSandboxConfig, SandboxSetup
from uitpas_async.sandboxkit.faults import BaseFaultRule
from uitpas_async.sandboxkit.loopback import DEFAULT_HOST, LoopbackServer
from uitpas_async.sandboxkit.pipeline import RequestPipeline

__all__ = ["DEFAULT_HOST", "SandboxServer", "serve_until_cancelled"]

_Config = TypeVar("_Config", bound=BaseSandboxConfig)
_Rule = TypeVar("_Rule", bound=BaseFaultRule[Any])
_Server = TypeVar("_Server", bound=LoopbackServer)


class SandboxServer(LoopbackServer, abc.ABC, Generic[_Config, _Rule]):
    """Serves a provider's ``RequestPipeline`` on loopback; use ``async with``.

    A provider's sandbox subclasses it with ``default_config`` and ``build``;
    ``build`` runs once, here, with the RNG every random choice draws from.
    """

    def __init__(
        self,
        config: _Config | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.config: _Config = config if config is not None else self.default_config()
        # One RNG for everything random: one seed, one run.
        rng = random.Random(self.config.seed)
        self._pipeline = self.build(SandboxSetup(self.config, rng, clock, wall_clock))

    @abc.abstractmethod
    def default_config(self) -> _Config:
        """Return the config to run with when none is given."""

    @abc.abstractmethod
    def build(self, setup: SandboxSetup[_Config]) -> RequestPipeline[_Rule, Any, Any]:
        """Make the provider's state and the pipeline that serves it."""

    @property
    def app(self) -> web.Application:
        """Return the aiohttp application (to mount it in a test server of your own)."""
        return self._pipeline.app

    def _application(self) -> web.Application:
        return self._pipeline.app

    def add_fault(self, rule: _Rule) -> None:
        """Add a fault rule while running; it is tried after the existing ones."""
        self._pipeline.faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._pipeline.faults.clear()


async def serve_until_cancelled(
    server: _Server, ready: Callable[[_Server], None] | None = None
) -> None:
    """Run ``server`` until cancelled, calling ``ready`` once it listens."""
    async with server:
        if ready is not None:
            ready(server)
        await asyncio.Event().wait()  # only cancellation ends this
