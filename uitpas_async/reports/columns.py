"""The layout of a UiTPAS financial report, as both UiTPAS APIs serve it."""

from __future__ import annotations

__all__ = ["REPORT_COLUMNS"]


#: The table columns of a financial report's sheets, in order (real server and sandbox).
REPORT_COLUMNS = (
    "INRICHTER",
    "OVERHEID",
    "DATUM",
    "UID",
    "GEMEENTE",
    "KANSENSTATUUT",
    "TICKETSALECOUPON",
    "GROUPPASS",
    "EVENT",
    "DATE_FROM",
    "DATE_TO",
    "TOTALPRICE",
    "CONTRIBUTION",
)
