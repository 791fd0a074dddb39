"""Run the sandbox: the ``Sandbox`` context manager and the ``serve`` coroutine."""

from __future__ import annotations

from collections.abc import Callable

from uitpas_async.sandboxkit.config import SandboxSetup
from uitpas_async.sandboxkit.server import DEFAULT_HOST, SandboxServer, serve_until_cancelled
from uitpas_async.xml_api.models import Credentials
from uitpas_async.xml_api.sandbox.app import SandboxApp
from uitpas_async.xml_api.sandbox.balies import default_balies
from uitpas_async.xml_api.sandbox.config import FaultRule, SandboxBalie, SandboxConfig
from uitpas_async.xml_api.sandbox.faults import fault_plan
from uitpas_async.xml_api.sandbox.state import SandboxReport, SandboxState, SandboxStats
from uitpas_async.xml_api.sandbox.tokens import TokenRegistry

__all__ = ["DEFAULT_HOST", "Sandbox", "serve"]


class Sandbox(SandboxServer[SandboxConfig, FaultRule]):
    """A running local imitation of the UiTPAS XML API; use ``async with``.

    ``Sandbox(config=None, *, host, port, clock, wall_clock)``: the kit's ``SandboxServer``.
    """

    label = "UiTPAS sandbox"

    def default_config(self) -> SandboxConfig:
        """Return the default configuration."""
        return SandboxConfig()

    def build(self, setup: SandboxSetup[SandboxConfig]) -> SandboxApp:
        """Make the balies, the API's state and its routes."""
        config = setup.config
        balies = (
            default_balies(config.balies, config.seed)
            if isinstance(config.balies, int)
            else config.balies
        )
        self._state = SandboxState(
            config, balies, setup.rng, clock=setup.clock, wall_clock=setup.wall_clock
        )
        self._app = SandboxApp(setup, self._state, fault_plan(config.faults, setup.rng))
        return self._app

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
    await serve_until_cancelled(Sandbox(config, host=host, port=port), ready)
