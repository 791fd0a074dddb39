"""A small price table for ``GET /uitpas/price``, shaped like seed 004 and the fixtures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

import attrs

from uitpas_async.xml_api.sandbox.xmlbodies import xml_element

__all__ = [
    "KNOWN_CARDS",
    "PRICE_REASONS",
    "PriceError",
    "PriceRule",
    "SandboxCard",
    "price_body",
    "quote_price",
]

#: The reasons the docs list; anything else is PARSE_INVALID_UITPAS_STATUS_CHANGE_REASON.
PRICE_REASONS = (
    "FIRST_CARD",
    "CARD_UPGRADE",
    "EXTRA_CARD",
    "LOSS_THEFT",
    "REMOVAL",
    "LOSS_KANSENSTATUUT",
    "OBTAIN_KANSENSTATUUT",
)
_UITPAS_NUMBER = re.compile(r"\d{13}")
_VOUCHER_NUMBER = re.compile(r"[A-Z]{2,10}-\d{4}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@attrs.frozen
class SandboxCard:
    """A UiTPAS card the sandbox knows."""

    card_system_id: str
    card_system_name: str
    kansenstatuut: bool = False
    #: True for a card the acting balie may not sell (BALIE_NOT_AUTHORIZED).
    foreign: bool = False


@attrs.frozen
class PriceRule:
    """One row of the price table: the first rule matching reason, status and age wins."""

    id: str
    reason: str
    price: str
    kansenstatuut: bool = False
    age_from: int | None = None
    age_to: int | None = None
    card_type: str | None = "CARD"
    use_when_age_unknown: bool | None = None

    @property
    def has_ages(self) -> bool:
        """Say whether the rule is limited to an age range."""
        return self.age_from is not None or self.age_to is not None

    def matches(self, reason: str, kansenstatuut: bool, age: int | None) -> bool:
        """Say whether this rule prices this reason, status and (known) age."""
        if self.reason != reason or self.kansenstatuut != kansenstatuut:
            return False
        if age is None:
            return True
        if self.age_from is not None and age < self.age_from:
            return False
        return self.age_to is None or age <= self.age_to


@attrs.frozen
class PriceError:
    """Why a price could not be given: the API error code and message."""

    code: str
    message: str


#: Cards the sandbox knows; 0934000185108 is the docs' example card.
KNOWN_CARDS: Mapping[str, SandboxCard] = {
    "0934000185108": SandboxCard("1", "UiTPAS Regio Aalst"),
    "0934000185116": SandboxCard("1", "UiTPAS Regio Aalst", kansenstatuut=True),
    "0930000420206": SandboxCard("5", "Test"),
    "0930000420214": SandboxCard("5", "Test", kansenstatuut=True),
    "0941000000104": SandboxCard("7", "UiTPAS Dender", foreign=True),
}

#: Voucher number -> (voucher type name, prefix, still usable).
_VOUCHERS: Mapping[str, tuple[str, str, bool]] = {
    "AALST-0001": ("Gratis UiTPAS", "AALST", True),
    "AALST-0002": ("Gratis UiTPAS", "AALST", False),
}

#: Prices by reason and age, with decimals written the ways the real server writes them.
_RULES: tuple[PriceRule, ...] = (
    PriceRule("148", "FIRST_CARD", "2.00", age_to=17),
    PriceRule("149", "FIRST_CARD", "5.00", age_from=18, use_when_age_unknown=True),
    PriceRule("150", "FIRST_CARD", "1.5", kansenstatuut=True, card_type=None),
    PriceRule("151", "CARD_UPGRADE", "2.50", age_from=12, age_to=25),
    PriceRule("152", "CARD_UPGRADE", "5.00"),
    PriceRule("153", "EXTRA_CARD", "5.00"),
    PriceRule("153", "EXTRA_CARD", "1.00", kansenstatuut=True),
    PriceRule("3", "LOSS_THEFT", "20.5", card_type=None),
    PriceRule("4", "LOSS_THEFT", "5.0", kansenstatuut=True, card_type=None),
    PriceRule("154", "REMOVAL", "2.00", age_to=11),
    PriceRule("155", "REMOVAL", "10", age_from=12),
    PriceRule("156", "REMOVAL", "1.00", kansenstatuut=True),
    PriceRule("157", "LOSS_KANSENSTATUUT", "5.00", kansenstatuut=True),
    PriceRule("157", "LOSS_KANSENSTATUUT", "5.00"),
    PriceRule("158", "OBTAIN_KANSENSTATUUT", "1.50"),
    PriceRule("158", "OBTAIN_KANSENSTATUUT", "1.50", kansenstatuut=True),
)


def _age(born: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (born.month, born.day)
    return today.year - born.year - before_birthday


def quote_price(params: Mapping[str, str], today: date) -> str | PriceError:
    """Return the price answer body for query ``params``, or the error to answer with."""
    number = params.get("uitpasNumber", "")
    reason = params.get("reason", "")
    if not number or not reason:
        return PriceError("MISSING_REQUIRED_FIELDS", "uitpasNumber and reason are required.")
    if not _UITPAS_NUMBER.fullmatch(number):
        return PriceError("PARSE_INVALID_UITPASNUMBER", f"Invalid uitpasNumber: {number}")
    if reason not in PRICE_REASONS:
        return PriceError("PARSE_INVALID_UITPAS_STATUS_CHANGE_REASON", f"Unknown reason: {reason}")
    age: int | None = None
    birth = params.get("dateOfBirth")
    if birth:
        try:
            if not _DATE.fullmatch(birth):
                raise ValueError(birth)
            age = _age(date.fromisoformat(birth), today)
        except ValueError:
            return PriceError("PARSE_INVALID_DATE", f"Invalid dateOfBirth: {birth}")
    voucher: tuple[str, str, bool] | None = None
    voucher_number = params.get("voucherNumber")
    if voucher_number:
        if not _VOUCHER_NUMBER.fullmatch(voucher_number):
            return PriceError("PARSE_INVALID_VOUCHERNUMBER", "Invalid voucherNumber.")
        voucher = _VOUCHERS.get(voucher_number)
        if voucher is None:
            return PriceError("UNKNOWN_VOUCHER", "Unknown voucher.")
        if not voucher[2]:
            return PriceError("INVALID_VOUCHER_STATUS", "The voucher was already used.")
    card = KNOWN_CARDS.get(number)
    if card is None:
        return PriceError("UNKNOWN_CARD", f"Unknown card: {number}")
    if card.foreign:
        return PriceError("BALIE_NOT_AUTHORIZED", "The card is not assigned to this balie.")
    rules = [rule for rule in _RULES if rule.matches(reason, card.kansenstatuut, age)]
    if age is None:
        # Without an age, the rule flagged useWhenAgeUnknown wins, then one without ages.
        rules.sort(key=lambda rule: (rule.use_when_age_unknown is not True, rule.has_ages))
    if not rules:
        return PriceError("ACTION_FAILED", "No price defined for this card and reason.")
    return price_body(rules[0], card, voucher)


def price_body(rule: PriceRule, card: SandboxCard, voucher: tuple[str, str, bool] | None) -> str:
    """Return the ``<uitpasPrice>`` answer in the element order of the real server."""
    children = [xml_element("id", rule.id, 2), xml_element("reason", rule.reason, 2)]
    if rule.card_type is not None:
        children.append(xml_element("cardType", rule.card_type, 2))
    ages: list[str] = []
    if rule.age_from is not None:
        ages.append(xml_element("ageFrom", str(rule.age_from), 3))
    if rule.age_to is not None:
        ages.append(xml_element("ageTo", str(rule.age_to), 3))
    if ages:
        children.append(xml_element("ageRange", ages, 2))
    children.append(xml_element("kansenstatuut", "true" if rule.kansenstatuut else "false", 2))
    if rule.use_when_age_unknown is not None:
        flag = "true" if rule.use_when_age_unknown else "false"
        children.append(xml_element("useWhenAgeUnknown", flag, 2))
    # A voucher makes the card free; the type says which voucher did it.
    children.append(xml_element("price", "0.00" if voucher else rule.price, 2))
    if voucher is not None:
        children.append(
            xml_element(
                "voucherType",
                [xml_element("name", voucher[0], 3), xml_element("prefix", voucher[1], 3)],
                2,
            )
        )
    children.append(
        xml_element(
            "cardSystem",
            [
                xml_element("id", card.card_system_id, 3),
                xml_element("name", card.card_system_name, 3),
            ],
            2,
        )
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<response>\n'
        + xml_element("uitpasPrice", children)
        + "</response>\n"
    )
