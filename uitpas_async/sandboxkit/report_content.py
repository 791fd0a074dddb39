"""Deterministic content of a financial report: rows per government, zipped as .xlsx files."""

from __future__ import annotations

import io
import random
import uuid
import zipfile
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import attrs

from uitpas_async.reports.columns import REPORT_COLUMNS
from uitpas_async.sandboxkit.spreadsheet import Cell, ExcelDate, xlsx_bytes

__all__ = [
    "COLUMNS",
    "SHEET_NAME",
    "GovernmentSheet",
    "ReportRow",
    "generate_sheets",
    "report_zip",
    "sheet_rows",
]

COLUMNS = REPORT_COLUMNS
SHEET_NAME = "Overview"
_CENT = Decimal("0.01")
#: Municipalities whose local governments pay contributions (the fixture's five first).
_TOWNS = ("Aalst", "Tienen", "Holsbeek", "Brussel", "Petit-Fays", "Gent", "Leuven", "Ninove")
_CARD_SYSTEMS = ("UiTPAS Regio Aalst", "UiTPAS Leuven", "UiTPAS Dender")
_COUPONS = ("", "", "CC de Werf bon", "CC de Werf bon sept", "Kansentarief 50%")
_EVENTS = (
    "Gitaar op basis van akkoorden",
    "Sprookjes en zo",
    "Theater Malpertuis",
    "Raak",
    "Altijd open ",
    "Wijnproeven: Belgische wijn ",
    "Volgende 12 maanden",
    "Kamp Zomerpret",
    "Zwembeurt 10-rittenkaart",
)
#: Seconds after midnight between which tickets are sold (09:00 to 23:00).
_OPENING_SECONDS = (9 * 3600, 23 * 3600)
_PRICES = (Decimal(5), Decimal(10), Decimal(17), Decimal(20), Decimal(80), Decimal(100))
#: Share of the price the government pays back (the fixture shows 50%, 42.5%, ...).
_SHARES = (Decimal("0.5"), Decimal("0.425"), Decimal("0.4625"), Decimal("0.75"), Decimal("0.2"))
#: The fixed block between the title row and the table, as in the real "ONKOSTENNOTA"
#: sheets ("" is an empty row).
_HEADER_LINES = (
    "",
    "Hierbij vindt u de onkostennota met een overzicht van deelnames tegen kansentarief.",
    "We hebben onderstaande gegevens nagekeken en goedgekeurd.",
    "",
    "Naam vereniging: ",
    "Contactpersoon: ",
    "",
    "Te storten bedrag: ",
    "IBAN \u2013 Rekeningnummer: ",
    "Naam Rekeninghouder: ",
    "",
)


@attrs.frozen
class ReportRow:
    """One ticket sale at kansentarief, as a row of the report."""

    organiser: str
    government: str
    sold_at: datetime
    uid: str
    municipality: str
    card_system: str
    coupon: str
    event: str
    event_from: date | None
    event_to: date | None
    total_price: Decimal
    contribution: Decimal


@attrs.frozen
class GovernmentSheet:
    """The rows of one government, which become one workbook in the zip."""

    government: str
    rows: tuple[ReportRow, ...]

    @property
    def total(self) -> Decimal:
        """Return the sum of the contributions, the value of the Total row."""
        return sum((row.contribution for row in self.rows), Decimal("0.00"))


def _content_rng(seed: int, balie_key: str, start: date, end: date) -> random.Random:
    # Seeded from the request alone, so the same report has the same rows
    # whatever order requests arrive in.
    return random.Random(f"report:{seed}:{balie_key}:{start.isoformat()}:{end.isoformat()}")


def generate_sheets(
    seed: int, balie_key: str, balie_name: str, start: date, end: date
) -> tuple[GovernmentSheet, ...]:
    """Return the report's sheets; every sale lies within ``start``..``end``."""
    rng = _content_rng(seed, balie_key, start, end)
    days = (end - start).days + 1
    towns = rng.sample(_TOWNS, rng.randint(1, 5))
    sheets = []
    for town in towns:
        government = f"Lokale overheid {town}"
        rows = []
        for _ in range(rng.randint(1, 12)):
            # Sales happen during opening hours, on any day of the period.
            sold_at = datetime.combine(start, datetime.min.time()) + timedelta(
                days=rng.randrange(days), seconds=rng.randrange(*_OPENING_SECONDS)
            )
            event_from: date | None = None
            event_to: date | None = None
            if rng.random() < 0.7:  # "Altijd open" style events have no dates
                event_from = sold_at.date() + timedelta(days=rng.randint(0, 30))
                event_to = event_from + timedelta(days=rng.choice((0, 0, 1, 60)))
            price = rng.choice(_PRICES)
            rows.append(
                ReportRow(
                    organiser=balie_name,
                    government=government,
                    sold_at=sold_at,
                    uid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    municipality=town,
                    card_system=rng.choice(_CARD_SYSTEMS),
                    coupon=rng.choice(_COUPONS),
                    event=rng.choice(_EVENTS),
                    event_from=event_from,
                    event_to=event_to,
                    total_price=price,
                    contribution=(price * rng.choice(_SHARES)).quantize(_CENT),
                )
            )
        rows.sort(key=lambda row: (row.event, row.sold_at))
        sheets.append(GovernmentSheet(government, tuple(rows)))
    return tuple(sheets)


def _optional_date(value: date | None) -> Cell:
    return None if value is None else ExcelDate(value)


def sheet_rows(sheet: GovernmentSheet, made_on: date) -> list[list[Cell]]:
    """Return the cells of one ``Overview`` sheet: header block, table, Total row."""
    rows: list[list[Cell]] = [["ONKOSTENNOTA", None, None, f"Datum: {made_on:%d/%m/%Y}"]]
    rows.extend([[line] if line else [] for line in _HEADER_LINES])
    rows.append(list(COLUMNS))
    for row in sheet.rows:
        rows.append(
            [
                row.organiser,
                row.government,
                ExcelDate(row.sold_at),
                row.uid,
                row.municipality,
                row.card_system,
                row.coupon or None,
                None,  # GROUPPASS: empty in every real report seen
                row.event,
                _optional_date(row.event_from),
                _optional_date(row.event_to),
                row.total_price,
                row.contribution,
            ]
        )
    # The real Total row puts its label under OVERHEID and the sum under CONTRIBUTION.
    total: list[Cell] = [None] * len(COLUMNS)
    total[1] = f"Total {sheet.government}"
    total[-1] = sheet.total
    rows.append(total)
    return rows


def report_zip(sheets: Sequence[GovernmentSheet], completed: datetime) -> bytes:
    """Return the download: one ``{government}_{YYYYMMDD}_{HHMM}.xlsx`` per sheet."""
    stamp = f"{completed:%Y%m%d_%H%M}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for sheet in sheets:
            info = zipfile.ZipInfo(
                f"{sheet.government}_{stamp}.xlsx", date_time=completed.timetuple()[:6]
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, xlsx_bytes(SHEET_NAME, sheet_rows(sheet, completed.date())))
    return buffer.getvalue()
