"""A faithful local imitation of the UiTPAS XML API, for tests, the CLI and benchmarks.

::

    async with Sandbox(SandboxConfig(balies=5, generation_median=0.05)) as sb:
        ...  # sign requests with sb.credentials and send them to sb.base_url

The server speaks real HTTP on loopback, verifies OAuth 1.0a HMAC-SHA1 signatures
(stale timestamps and replayed nonces included), generates financial reports that
take a lognormal time to complete, serves them as zips of .xlsx workbooks, and
injects the faults that ``FaultRule`` objects describe, all deterministic from one seed.
"""

from __future__ import annotations

from uitpas_async.xml_api.sandbox.config import (
    ENDPOINTS,
    FAULT_KINDS,
    SANDBOX_CREDENTIALS,
    FaultRule,
    SandboxBalie,
    SandboxConfig,
)
from uitpas_async.xml_api.sandbox.server import Sandbox, serve
from uitpas_async.xml_api.sandbox.state import SandboxReport, SandboxStats

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "SANDBOX_CREDENTIALS",
    "FaultRule",
    "Sandbox",
    "SandboxBalie",
    "SandboxConfig",
    "SandboxReport",
    "SandboxStats",
    "serve",
]
