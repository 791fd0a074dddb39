"""An aiohttp application served on loopback: the lifecycle both sandboxes share."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TypeVar

from aiohttp import web

from uitpas_async.engine.errors import ConfigurationError

__all__ = ["DEFAULT_HOST", "LoopbackServer"]

logger = logging.getLogger(__name__)

#: Loopback only: a sandbox accepts well-known credentials and must not face a network.
DEFAULT_HOST = "127.0.0.1"

_Server = TypeVar("_Server", bound="LoopbackServer")


class LoopbackServer:
    """Serves the subclass's application on a host and port; use ``async with``."""

    #: Names the server in log lines.
    label = "sandbox"

    def __init__(self, *, host: str = DEFAULT_HOST, port: int = 0) -> None:
        # Where to listen; port 0 asks the system for a free one.
        self._host = host
        self._port = port
        # Set while running: the aiohttp runner and the port it got.
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    def _application(self) -> web.Application:
        """Return the aiohttp application to serve."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        if self._bound_port is None:
            raise RuntimeError(f"the {self.label} is not running")
        return self._bound_port

    @property
    def root_url(self) -> str:
        """Return ``http://127.0.0.1:PORT``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Start listening."""
        if self._runner is not None:
            raise RuntimeError(f"the {self.label} is already running")
        # No access log: it would print signed URLs and report links for every request.
        runner = web.AppRunner(self._application(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            # A busy port is a setup problem with an obvious fix, not a crash.
            raise ConfigurationError(
                f"the {self.label} cannot listen on {self._host}:{self._port}: "
                f"{exc.strerror or exc} (choose another port with --port)"
            ) from None
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = runner.addresses[0][1]
        logger.info("%s listening on %s", self.label, self.root_url)

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self: _Server) -> _Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
