"""Frozen configuration of the sandbox server: balies, fault rules and tunables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, get_args

import attrs

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

#: Every kind of fault the sandbox can inject.
FaultKind = Literal[
    "server_error",
    "bad_gateway",
    "unavailable",
    "rate_limited",
    "drop",
    "truncate",
    "not_zip",
    "slow",
    "fail_generation",
    "forget_report",
    "malformed_xml",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

#: How a balie's downloads name their file in ``Content-Disposition``.
#: ``unquoted`` is what the real server sends; ``none`` sends no header at all.
DispositionStyle = Literal["unquoted", "quoted", "rfc6266", "none"]
DISPOSITION_STYLES: tuple[DispositionStyle, ...] = ("unquoted", "quoted", "rfc6266", "none")

#: The path every endpoint lives under, like the real ``https://test.uitid.be/uitid/rest``.
DEFAULT_PREFIX = "/uitid/rest"
#: Server seconds a report takes to generate when nothing else is said.
DEFAULT_GENERATION_MEDIAN = 2.0
#: How far (seconds) an ``oauth_timestamp`` may be from the server's clock.
DEFAULT_TIMESTAMP_WINDOW = 300.0
#: Token-bucket capacity of the rate limit: 1 means no burst at all.
DEFAULT_RATE_BURST = 1.0
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


def _check_endpoint(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value != "*" and value not in ENDPOINTS:
        raise ValueError(f"{attribute.name} must be '*' or one of {ENDPOINTS}, not {value!r}")


def _check_probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must lie in [0, 1], not {value!r}")


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
class FaultRule:
    """Inject one kind of fault into matching requests."""

    kind: FaultKind = attrs.field(validator=attrs.validators.in_(FAULT_KINDS))
    #: Endpoint name, or "*" for every endpoint the kind makes sense on.
    endpoint: str = attrs.field(default="*", validator=_check_endpoint)
    #: Chance that a matching request gets the fault (drawn from the seeded RNG).
    probability: float = attrs.field(default=1.0, validator=_check_probability)
    #: Apply to at most this many requests; None means no limit.
    count: int | None = None
    #: Server seconds for "slow" (delay) and "unavailable" (Retry-After); scaled by time_scale.
    delay: float = 0.0
    #: Only requests acting for this balie key; None means any balie.
    balie: str | None = None
    #: On "create": True creates the report before answering with the fault.
    after_effect: bool = False


def _to_balies(value: int | Sequence[SandboxBalie]) -> int | tuple[SandboxBalie, ...]:
    if isinstance(value, int):
        if value < 1:
            raise ValueError("balies must be at least 1")
        return value
    balies = tuple(value)
    if not balies:
        raise ValueError("balies must not be empty")
    return balies


def _to_faults(value: Iterable[FaultRule]) -> tuple[FaultRule, ...]:
    return tuple(value)


def _to_prefix(value: str) -> str:
    # "/uitid/rest/" and "uitid/rest" both mean "/uitid/rest"; "" means the root.
    stripped = value.strip("/")
    return "/" + stripped if stripped else ""


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _positive_or_none(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive or None, not {value!r}")


@attrs.frozen
class SandboxConfig:
    """Everything that shapes how the sandbox behaves; all durations are server seconds."""

    #: How many balies to generate, or the balies themselves.
    balies: int | tuple[SandboxBalie, ...] = attrs.field(
        default=DEFAULT_BALIE_COUNT, converter=_to_balies
    )
    #: Median seconds a report takes to generate.
    generation_median: float = attrs.field(
        default=DEFAULT_GENERATION_MEDIAN, validator=_non_negative
    )
    #: Lognormal sigma of generation times; 0 makes every report take exactly the median.
    generation_sigma: float = attrs.field(default=0.0, validator=_non_negative)
    #: Multiplies every server-side duration (generation, slow answers, Retry-After).
    time_scale: float = attrs.field(default=1.0, validator=_non_negative)
    #: Seeds every random choice: keys, generation times, faults, report content.
    seed: int = 0
    #: Requests per real second the token bucket admits; None disables the limit.
    rate_limit: float | None = attrs.field(default=None, validator=_positive_or_none)
    #: Token-bucket capacity (requests admitted back to back after a quiet spell).
    rate_burst: float = attrs.field(default=DEFAULT_RATE_BURST, validator=_positive)
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
    timestamp_window: float = attrs.field(default=DEFAULT_TIMESTAMP_WINDOW, validator=_positive)
    #: Seconds (real, not scaled) a login's request token stays valid for authorize and exchange.
    request_token_lifetime: float = attrs.field(
        default=DEFAULT_REQUEST_TOKEN_LIFETIME, validator=_positive
    )
    #: Who the authorize page logs in: the ``userId`` the access token answer names.
    user_id: str = SANDBOX_USER_ID
    user_name: str = SANDBOX_USER_NAME

    def scaled(self, seconds: float) -> float:
        """Return ``seconds`` of server time in real seconds."""
        return seconds * self.time_scale
