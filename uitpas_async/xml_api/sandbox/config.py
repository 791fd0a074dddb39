"""Frozen configuration of the sandbox server: balies, fault rules and tunables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, get_args

import attrs

from uitpas_async.sandboxkit.config import (
    DEFAULT_GENERATION_MEDIAN,
    DEFAULT_RATE_BURST,
    BaseSandboxConfig,
    check_positive,
    count_or_items,
)
from uitpas_async.sandboxkit.faults import AnywhereFaultKind, BaseFaultRule, ReportFaultKind
from uitpas_async.xml_api.models import Credentials

__all__ = [
    "DEFAULT_GENERATION_MEDIAN",
    "DEFAULT_PREFIX",
    "DEFAULT_RATE_BURST",
    "DEFAULT_REQUEST_TOKEN_LIFETIME",
    "DEFAULT_TIMESTAMP_WINDOW",
    "DISPOSITION_STYLES",
    "ENDPOINTS",
    "FAULT_KINDS",
    "SANDBOX_CREDENTIALS",
    "SANDBOX_USER_ID",
    "DispositionStyle",
    "Endpoint",
    "FaultKind",
    "FaultRule",
    "SandboxBalie",
    "SandboxConfig",
]

#: The API endpoints a fault rule can target ("*" targets all of them).
Endpoint = Literal["create", "status", "download", "periods", "price"]
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)

#: Every kind of fault the sandbox can inject: the kit's, a download that is
#: no zip, and an answer that is not XML.
FaultKind = Literal[AnywhereFaultKind, ReportFaultKind, "not_zip", "malformed_xml"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

#: How a balie's downloads name their file in ``Content-Disposition``.
#: ``unquoted`` is what the real server sends; ``none`` sends no header at all.
DispositionStyle = Literal["unquoted", "quoted", "rfc6266", "none"]
DISPOSITION_STYLES: tuple[DispositionStyle, ...] = ("unquoted", "quoted", "rfc6266", "none")

#: The path every endpoint lives under, like the real ``https://test.uitid.be/uitid/rest``.
DEFAULT_PREFIX = "/uitid/rest"
#: How far (seconds) an ``oauth_timestamp`` may be from the server's clock.
DEFAULT_TIMESTAMP_WINDOW = 300.0
#: Seconds a login's request token may wait to be authorized and exchanged.
DEFAULT_REQUEST_TOKEN_LIFETIME = 600.0
#: The UiTiD user the sandbox's authorize page logs in (the access token's ``userId``).
SANDBOX_USER_ID = "5b7e4c1a-2d3f-4e6a-9b8c-0d1e2f3a4b5c"
SANDBOX_USER_NAME = "Sandbox Balie Medewerker"
#: How many balies a default configuration generates.
DEFAULT_BALIE_COUNT = 20

#: The one consumer and access token the sandbox accepts. Keys are UUIDs with dashes,
#: like real UiTiD keys, so that a validator with oauthlib's default charset would refuse them.
#: They are public on purpose: the sandbox only listens on loopback.
SANDBOX_CREDENTIALS = Credentials(
    consumer_key="76163fc7-7a3b-4f3c-8d1a-5e4c2b9f0a11",
    consumer_secret="sandbox-consumer-secret-4b9d2e",  # noqa: S106
    token="0f8e2c1d-3b4a-4c5d-9e6f-7a8b9c0d1e2f",  # noqa: S106
    token_secret="sandbox-token-secret-81c7a3",  # noqa: S106
)


@attrs.frozen
class SandboxBalie:
    """A balie (counter) the sandbox knows: its consumer key and display name."""

    key: str
    name: str
    #: How downloads for this balie name their file (names outside ASCII always use rfc6266).
    disposition: DispositionStyle = attrs.field(
        default="unquoted", validator=attrs.validators.in_(DISPOSITION_STYLES)
    )


@attrs.frozen
class FaultRule(BaseFaultRule[FaultKind], endpoints=ENDPOINTS, kinds=FAULT_KINDS, subject="balie"):
    """Inject one kind of fault into matching requests."""

    #: Only requests acting for this balie key; None means any balie.
    balie: str | None = None


def _to_balies(value: int | Sequence[SandboxBalie]) -> int | tuple[SandboxBalie, ...]:
    return count_or_items(value, "balies")


def _to_faults(value: Iterable[FaultRule]) -> tuple[FaultRule, ...]:
    return tuple(value)


def _to_prefix(value: str) -> str:
    # "/uitid/rest/" and "uitid/rest" both mean "/uitid/rest"; "" means the root.
    stripped = value.strip("/")
    return "/" + stripped if stripped else ""


@attrs.frozen
class SandboxConfig(BaseSandboxConfig):
    """Everything that shapes how the sandbox behaves; all durations are server seconds.

    ``generation_median``, ``generation_sigma``, ``time_scale``, ``seed``,
    ``rate_limit`` (requests per real second, one bucket for the whole API) and
    ``rate_burst`` come from the kit's ``BaseSandboxConfig``, keyword-only.
    """

    #: How many balies to generate, or the balies themselves.
    balies: int | tuple[SandboxBalie, ...] = attrs.field(
        default=DEFAULT_BALIE_COUNT, converter=_to_balies
    )
    #: Fault rules, tried in order; the first that fires wins.
    faults: tuple[FaultRule, ...] = attrs.field(default=(), converter=_to_faults)
    #: Path prefix of every API endpoint (and of nothing in ``<resource>``).
    prefix: str = attrs.field(default=DEFAULT_PREFIX, converter=_to_prefix)
    #: The only credentials whose signatures the server accepts.
    credentials: Credentials = SANDBOX_CREDENTIALS
    #: Query name the server writes into ``<resource>`` URLs; the real API uses both.
    resource_key_param: Literal["balieConsumerKey", "consumerKey"] = attrs.field(
        default="balieConsumerKey",
        validator=attrs.validators.in_(("balieConsumerKey", "consumerKey")),
    )
    #: Seconds an ``oauth_timestamp`` may differ from the server's wall clock.
    timestamp_window: float = attrs.field(
        default=DEFAULT_TIMESTAMP_WINDOW, validator=check_positive
    )
    #: Seconds (real, not scaled) a login's request token stays valid for authorize and exchange.
    request_token_lifetime: float = attrs.field(
        default=DEFAULT_REQUEST_TOKEN_LIFETIME, validator=check_positive
    )
    #: Who the authorize page logs in: the ``userId`` the access token answer names.
    user_id: str = SANDBOX_USER_ID
    user_name: str = SANDBOX_USER_NAME
