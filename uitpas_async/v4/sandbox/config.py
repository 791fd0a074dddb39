"""The 4.0 sandbox's frozen configuration and fault rules."""

from __future__ import annotations

from typing import Literal, get_args

import attrs

from uitpas_async.sandboxkit.config import BaseSandboxConfig, check_positive
from uitpas_async.sandboxkit.faults import (
    AnywhereFaultKind,
    BaseFaultRule,
    ReportFaultKind,
    fault_endpoints,
)

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "V4FaultRule",
    "V4SandboxConfig",
]

#: Well-known credentials: the sandbox listens on loopback only.
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 (public by design)

Endpoint = Literal[
    "token", "permissions", "periods", "create", "list", "status", "download_link", "download"
]
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)
#: The kit's kinds, and the 4.0 sandbox's own: a JSON body cut short, a download
#: that is not a zip, and a token the API refuses before it expires (a 401 mid-batch).
FaultKind = Literal[AnywhereFaultKind, ReportFaultKind, "malformed_json", "not_zip", "revoke_token"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
_API = tuple(name for name in ENDPOINTS if name != "token")
#: Where each kind makes sense.
FAULT_WHERE = fault_endpoints(
    ENDPOINTS,
    fail_generation=("create",),
    forget_report=("create", "status", "download_link", "download"),
    malformed_json=tuple(name for name in ENDPOINTS if name != "download"),
    not_zip=("download",),
    revoke_token=_API,
)


@attrs.frozen
class V4FaultRule(
    BaseFaultRule[FaultKind], endpoints=ENDPOINTS, kinds=FAULT_KINDS, subject="organizer"
):
    """Inject one kind of fault into matching requests; ``organizer`` limits it to one."""

    organizer: str | None = None


@attrs.frozen
class V4SandboxConfig(BaseSandboxConfig):
    """What the 4.0 sandbox serves; durations are server seconds (scaled by ``time_scale``)."""

    #: Organizers with ORGANIZERS_REPORTS, named ``org-0001``, ``org-0002``, ...
    organizers: int = 5
    #: Organizers listed in /permissions without ORGANIZERS_REPORTS (403 on reports).
    without_reports: tuple[str, ...] = ("org-noreports",)
    #: Organizers whose every report fails: no discounts in the period.
    empty_organizers: tuple[str, ...] = ()
    client_id: str = SANDBOX_CLIENT_ID
    client_secret: str = SANDBOX_CLIENT_SECRET
    #: Seconds an access token lives.
    token_lifetime: float = attrs.field(default=3600.0, validator=check_positive)
    faults: tuple[V4FaultRule, ...] = ()

    def organizer_ids(self) -> list[str]:
        """Return the ids of the organizers that may fetch reports."""
        return [f"org-{index:04d}" for index in range(1, self.organizers + 1)]
