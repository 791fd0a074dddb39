"""A local imitation of Finam's report REST API on loopback, for tests, the CLI and demos.

::

    async with FinamSandbox(FinamSandboxConfig(accounts=5, generation_median=0.05)) as sb:
        async with FinamClient(sb.secret, base_url=sb.base_url) as finam:
            ...

It trades the secret for JWT-like tokens that expire after ``token_lifetime``
and refuses missing, unknown or expired ones with 401; generates reports that
take a lognormal time; answers ``info`` in REST style (names, RFC 3339, int64
strings), gRPC style (numbers, ``{seconds, nanos}``, ``{"value": url}``) or
both by turns; serves each report file (a small PDF or XML, any bytes) at the
link it returns; and injects the faults that ``FinamFaultRule`` objects
describe, like the UiTPAS sandbox and deterministic from one seed. Rate limit,
fault injection and counters are the sandbox kit's (:mod:`uitpas_async.sandboxkit`).
"""

from __future__ import annotations

from uitpas_async.finam.sandbox.config import (
    DEFAULT_ACCOUNT_COUNT,
    DEFAULT_GENERATION_MEDIAN,
    DEFAULT_TOKEN_LIFETIME,
    FAULT_ENDPOINTS,
    FINAM_ENDPOINTS,
    FINAM_FAULT_KINDS,
    SANDBOX_SECRET,
    FinamEndpoint,
    FinamFaultKind,
    FinamFaultRule,
    FinamSandboxConfig,
    JsonStyle,
)
from uitpas_async.finam.sandbox.server import FinamSandbox
from uitpas_async.finam.sandbox.state import (
    FILES_PATH,
    FinamSandboxReport,
    FinamSandboxStats,
    default_accounts,
)

__all__ = [
    "DEFAULT_ACCOUNT_COUNT",
    "DEFAULT_GENERATION_MEDIAN",
    "DEFAULT_TOKEN_LIFETIME",
    "FAULT_ENDPOINTS",
    "FILES_PATH",
    "FINAM_ENDPOINTS",
    "FINAM_FAULT_KINDS",
    "SANDBOX_SECRET",
    "FinamEndpoint",
    "FinamFaultKind",
    "FinamFaultRule",
    "FinamSandbox",
    "FinamSandboxConfig",
    "FinamSandboxReport",
    "FinamSandboxStats",
    "JsonStyle",
    "default_accounts",
]
