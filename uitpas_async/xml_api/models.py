"""Frozen value objects parsed from the API, and the credentials that sign calls."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import attrs

from uitpas_async.engine.config import credentials_from_env

__all__ = [
    "ENVIRONMENTS",
    "AgeRange",
    "CardSystem",
    "Consumer",
    "Credentials",
    "Period",
    "PriceReason",
    "ReportJob",
    "ReportStatus",
    "UitpasPrice",
    "VoucherType",
    "mask",
]


#: Environment variables that hold the four OAuth 1.0a credentials.
CREDENTIAL_VARIABLES = (
    "UITPAS_CONSUMER_KEY",
    "UITPAS_CONSUMER_SECRET",
    "UITPAS_TOKEN",
    "UITPAS_TOKEN_SECRET",
)


def mask(value: str, *, keep: int = 4) -> str:
    """Return ``value`` with all but its last ``keep`` characters hidden."""
    if len(value) <= keep * 2:
        return "***"
    return "***" + value[-keep:]


def _masked_repr(value: str) -> str:
    return "'***'" if value else "''"


@attrs.frozen(repr=False)
class Credentials:
    """OAuth 1.0a consumer and user-access-token credentials of a balie employee."""

    consumer_key: str
    consumer_secret: str = attrs.field()
    token: str
    token_secret: str = attrs.field()

    def __repr__(self) -> str:
        return (
            f"Credentials(consumer_key={mask(self.consumer_key)!r}, consumer_secret="
            f"{_masked_repr(self.consumer_secret)}, token={mask(self.token)!r}, "
            f"token_secret={_masked_repr(self.token_secret)})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read the four ``UITPAS_*`` variables.

        Raises:
            ConfigurationError: one or more variables are missing or empty.
        """
        key, secret, token, token_secret = credentials_from_env(CREDENTIAL_VARIABLES, environ)
        return cls(key, secret, token, token_secret)


@attrs.frozen(repr=False)
class Consumer:
    """The OAuth consumer (the application): its key and secret, with no user token yet."""

    key: str
    secret: str

    def __repr__(self) -> str:
        return f"Consumer(key={mask(self.key)!r}, secret={_masked_repr(self.secret)})"

    __str__ = __repr__

    def credentials(self, token: str = "", token_secret: str = "") -> Credentials:
        """Return credentials for signing as this consumer, with a token or (empty) without."""
        return Credentials(self.key, self.secret, token, token_secret)


@attrs.frozen
class ReportJob:
    """A financial report the server has started generating."""

    report_id: str
    balie_consumer_key: str | None = None


@attrs.frozen
class ReportStatus:
    """The generation status of a financial report."""

    report_id: str
    completed: bool
    message: str
    #: Absolute URL to download the report once completed (unsigned; no secret in it).
    download_url: str | None = None


@attrs.frozen
class Period:
    """A past financial reporting period of a balie; both ends are aware datetimes."""

    start: datetime
    end: datetime


class PriceReason(str, enum.Enum):
    """Why a UiTPAS card is being sold."""

    FIRST_CARD = "FIRST_CARD"
    CARD_UPGRADE = "CARD_UPGRADE"
    EXTRA_CARD = "EXTRA_CARD"
    LOSS_THEFT = "LOSS_THEFT"
    REMOVAL = "REMOVAL"
    LOSS_KANSENSTATUUT = "LOSS_KANSENSTATUUT"
    OBTAIN_KANSENSTATUUT = "OBTAIN_KANSENSTATUUT"

    @classmethod
    def parse(cls, value: str) -> PriceReason | str:
        """Return the enum member, or the raw string for a reason this version does not know."""
        try:
            return cls(value)
        except ValueError:
            return value


@attrs.frozen
class AgeRange:
    """Ages a price applies to; either end may be open (``None``)."""

    age_from: int | None = None
    age_to: int | None = None


@attrs.frozen
class CardSystem:
    """A UiTPAS card system (a region or organisation running UiTPAS)."""

    id: str
    name: str


@attrs.frozen
class VoucherType:
    """A voucher type that changes the price."""

    name: str
    prefix: str | None = None


@attrs.frozen
class UitpasPrice:
    """The price of a UiTPAS card for one reason and kind of passholder."""

    id: str
    reason: PriceReason | str
    price: Decimal
    kansenstatuut: bool
    card_system: CardSystem | None
    age_range: AgeRange = AgeRange()
    card_type: str | None = None
    use_when_age_unknown: bool | None = None
    voucher_type: VoucherType | None = None


#: Base URLs (prefixes) of the public UiTPAS environments.
ENVIRONMENTS = {
    "test": "https://test.uitid.be/uitid/rest",
    "prod": "https://www.uitid.be/uitid/rest",
    "acc": "https://acc.uitid.be/uitid/rest",
}
