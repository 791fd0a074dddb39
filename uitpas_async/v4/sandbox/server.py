"""``V4Sandbox``: the 4.0 API on loopback, with counters that prove what happened."""

from __future__ import annotations

from collections import Counter

from uitpas_async.sandboxkit.config import SandboxSetup
from uitpas_async.sandboxkit.server import SandboxServer
from uitpas_async.v4.protocol import TOKEN_PATH
from uitpas_async.v4.sandbox.app import V4Pipeline, V4Stats
from uitpas_async.v4.sandbox.config import V4FaultRule, V4SandboxConfig

__all__ = ["V4Sandbox"]


class V4Sandbox(SandboxServer[V4SandboxConfig, V4FaultRule]):
    """Serves UiTPAS API 4.0 (and its token endpoint) on 127.0.0.1; use ``async with``."""

    label = "UiTPAS 4.0 sandbox"
    pipeline: V4Pipeline

    def default_config(self) -> V4SandboxConfig:
        """Five organizers with reports, one without."""
        return V4SandboxConfig()

    def build(self, setup: SandboxSetup[V4SandboxConfig]) -> V4Pipeline:
        """Make the 4.0 pipeline (its state lives in it)."""
        self.pipeline = V4Pipeline(setup, root_url=lambda: self.root_url)
        return self.pipeline

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self.root_url

    @property
    def token_url(self) -> str:
        """The full token endpoint URL."""
        return self.root_url + TOKEN_PATH

    @property
    def stats(self) -> V4Stats:
        """The counters (requests, faults, tokens issued, reports per period)."""
        return self.pipeline.v4_stats

    @property
    def created(self) -> Counter[str]:
        """Reports created per ``organizer|start|end``."""
        return self.pipeline.created

    def organizer_ids(self) -> list[str]:
        """Return the organizers with ORGANIZERS_REPORTS."""
        ids: list[str] = self.config.organizer_ids()
        return ids

    def expire_tokens(self) -> None:
        """Expire every issued token now."""
        self.pipeline.expire_tokens()
