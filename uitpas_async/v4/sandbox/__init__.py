"""A faithful local UiTPAS API 4.0: token endpoint, /permissions and the six report calls."""

from __future__ import annotations

from uitpas_async.v4.sandbox.config import (
    FAULT_KINDS,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    V4FaultRule,
    V4SandboxConfig,
)
from uitpas_async.v4.sandbox.server import V4Sandbox

__all__ = [
    "FAULT_KINDS",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "V4FaultRule",
    "V4Sandbox",
    "V4SandboxConfig",
]
