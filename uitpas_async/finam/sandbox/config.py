"""Frozen configuration of the Finam sandbox: endpoints, fault kinds and rules, tunables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, get_args

import attrs

from uitpas_async.sandboxkit.config import (
    DEFAULT_GENERATION_MEDIAN,
    BaseSandboxConfig,
    check_non_negative,
    count_or_items,
)
from uitpas_async.sandboxkit.faults import (
    AnywhereFaultKind,
    BaseFaultRule,
    ReportFaultKind,
    fault_endpoints,
)

__all__ = [
    "DEFAULT_ACCOUNT_COUNT",
    "DEFAULT_GENERATION_MEDIAN",
    "DEFAULT_TOKEN_LIFETIME",
    "FAULT_ENDPOINTS",
    "FINAM_ENDPOINTS",
    "FINAM_FAULT_KINDS",
    "SANDBOX_SECRET",
    "FinamEndpoint",
    "FinamFaultKind",
    "FinamFaultRule",
    "FinamSandboxConfig",
    "JsonStyle",
]

#: Endpoints a fault rule can target ("*" targets all of them).
FinamEndpoint = Literal["auth", "details", "create", "info", "download"]
FINAM_ENDPOINTS: tuple[FinamEndpoint, ...] = get_args(FinamEndpoint)
#: Every kind of fault the Finam sandbox can inject: the kit's, an answer that
#: is not JSON, and a valid token refused as if revoked.
FinamFaultKind = Literal[AnywhereFaultKind, ReportFaultKind, "malformed_json", "unauthorized"]
FINAM_FAULT_KINDS: tuple[FinamFaultKind, ...] = get_args(FinamFaultKind)
#: Endpoints each kind can happen on; a rule for "*" only fires where it makes sense.
FAULT_ENDPOINTS: Mapping[str, frozenset[str]] = fault_endpoints(
    FINAM_ENDPOINTS,
    malformed_json=set(FINAM_ENDPOINTS) - {"download"},
    fail_generation=("create",),
    forget_report=("create", "info", "download"),
    unauthorized=set(FINAM_ENDPOINTS) - {"auth", "details"},
)
#: The one API secret the sandbox accepts; public on purpose (loopback only).
SANDBOX_SECRET = "finam-sandbox-secret-6d0c"  # noqa: S105
#: Finam's JWTs live about 15 minutes.
DEFAULT_TOKEN_LIFETIME = 15 * 60.0
DEFAULT_ACCOUNT_COUNT = 20
#: How ``info`` answers are written: REST names and RFC 3339, gRPC numbers, or by turns.
JsonStyle = Literal["rest", "grpc", "mixed"]


@attrs.frozen
class FinamFaultRule(
    BaseFaultRule[FinamFaultKind],
    endpoints=FINAM_ENDPOINTS,
    kinds=FINAM_FAULT_KINDS,
    subject="account",
):
    """Inject one kind of fault into requests, of one account or of any."""

    #: Only requests about this account; None means any.
    account: str | None = None


def _to_accounts(value: int | Sequence[str]) -> int | tuple[str, ...]:
    count_or_ids = count_or_items(value, "accounts")
    return count_or_ids if isinstance(count_or_ids, int) else tuple(map(str, count_or_ids))


def _to_faults(value: Iterable[FinamFaultRule]) -> tuple[FinamFaultRule, ...]:
    return tuple(value)


@attrs.frozen
class FinamSandboxConfig(BaseSandboxConfig):
    """Everything that shapes the Finam sandbox; durations are server seconds.

    ``generation_median``, ``generation_sigma``, ``time_scale`` (tokens included),
    ``seed``, ``rate_limit`` (requests per real second per endpoint) and
    ``rate_burst`` come from the kit's ``BaseSandboxConfig``, keyword-only.
    """

    #: How many accounts to generate, or their ids.
    accounts: int | tuple[str, ...] = attrs.field(
        default=DEFAULT_ACCOUNT_COUNT, converter=_to_accounts
    )
    #: Seconds a JWT stays valid.
    token_lifetime: float = attrs.field(
        default=DEFAULT_TOKEN_LIFETIME, validator=check_non_negative
    )
    #: Seconds after a create during which info still says NOT_FOUND (lagging status store).
    not_found_lag: float = attrs.field(default=0.0, validator=check_non_negative)
    faults: tuple[FinamFaultRule, ...] = attrs.field(default=(), converter=_to_faults)
    secret: str = SANDBOX_SECRET
    json_style: JsonStyle = attrs.field(
        default="rest", validator=attrs.validators.in_(get_args(JsonStyle))
    )
