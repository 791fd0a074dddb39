"""Run the Finam sandbox: the ``FinamSandbox`` context manager."""

from __future__ import annotations

from uitpas_async.finam.sandbox.app import FinamApp
from uitpas_async.finam.sandbox.config import FAULT_ENDPOINTS, FinamFaultRule, FinamSandboxConfig
from uitpas_async.finam.sandbox.state import FinamSandboxReport, FinamSandboxStats, FinamState
from uitpas_async.sandboxkit.config import SandboxSetup
from uitpas_async.sandboxkit.faults import FaultPlan
from uitpas_async.sandboxkit.server import SandboxServer

__all__ = ["FinamSandbox"]


class FinamSandbox(SandboxServer[FinamSandboxConfig, FinamFaultRule]):
    """A running imitation of Finam's report API; use ``async with``.

    ``FinamSandbox(config=None, *, host, port, clock, wall_clock)``: the kit's ``SandboxServer``.
    """

    label = "Finam sandbox"

    def default_config(self) -> FinamSandboxConfig:
        """Return the default configuration."""
        return FinamSandboxConfig()

    def build(self, setup: SandboxSetup[FinamSandboxConfig]) -> FinamApp:
        """Make the accounts, the API's state and its routes."""
        self._state = FinamState(setup, base_url=lambda: self.base_url)
        faults = FaultPlan(setup.config.faults, setup.rng, where=FAULT_ENDPOINTS)
        self._app = FinamApp(setup, self._state, faults)
        return self._app

    @property
    def base_url(self) -> str:
        """Return ``http://127.0.0.1:PORT``: Finam's REST paths start at the root."""
        return self.root_url

    @property
    def secret(self) -> str:
        """Return the API secret the sandbox accepts."""
        return self.config.secret

    @property
    def accounts(self) -> list[str]:
        """Return the accounts the sandbox knows (the token's ``account_ids``)."""
        return self._state.accounts

    @property
    def stats(self) -> FinamSandboxStats:
        """Return the live counters."""
        return self._state.stats

    @property
    def reports(self) -> dict[str, FinamSandboxReport]:
        """Return the live reports by id (forgotten ones are gone)."""
        return self._state.reports

    def forget_report(self, report_id: str) -> bool:
        """Make the server forget a report; return whether it knew it."""
        return self._state.forget(report_id)

    @property
    def issued_tokens(self) -> list[str]:
        """Return every token issued so far (so a test can search output for them)."""
        return list(self._state.tokens)

    def expire_tokens(self) -> int:
        """Expire every token issued so far; return how many."""
        return self._state.expire_tokens()

    def report_for(self, account: str) -> list[FinamSandboxReport]:
        """Return the live reports of one account."""
        return self._state.report_for(account)
