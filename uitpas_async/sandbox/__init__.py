"""The UiTPAS XML API's sandbox, under its first name (``uitpas_async.sandbox``).

It lives in :mod:`uitpas_async.xml_api.sandbox`; this name stays for the README's
``python -m uitpas_async.sandbox`` and for code that imports it.
"""

from __future__ import annotations

from uitpas_async.xml_api.sandbox import (
    ENDPOINTS,
    FAULT_KINDS,
    SANDBOX_CREDENTIALS,
    FaultRule,
    Sandbox,
    SandboxBalie,
    SandboxConfig,
    SandboxReport,
    SandboxStats,
    serve,
)

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
