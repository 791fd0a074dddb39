"""The tables of ``reports summarize``, as typed rows: one model for the CSVs and the workbook.

Pure: the reports read into memory go in, tables of typed cells (text, whole numbers,
euro amounts, dates) come out. :mod:`uitpas_async.cli.summary_files` renders the same
tables as RFC 4180 (or Belgian Excel) CSVs and as ``summary.xlsx``, so the two can never
disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import attrs

from uitpas_async.engine.periods import period_label as engine_period_label
from uitpas_async.reports.reader import FinancialReport, GovernmentTotal, aggregate_reports

__all__ = [
    "BALIE_COLUMNS",
    "GOVERNMENT_COLUMNS",
    "LINE_COLUMNS",
    "PROBLEM_COLUMNS",
    "TOTAL_COLUMNS",
    "ALL_BALIES",
    "Cell",
    "Column",
    "Kind",
    "SummaryEntry",
    "SummaryProblem",
    "SummaryTables",
    "Table",
    "build_tables",
    "period_label",
]

_ZERO = Decimal("0.00")
#: The balie name of a government's total row in totals.csv.
ALL_BALIES = "all balies"

#: One cell: text, a count, an amount in euro, a date, a date-time, or empty.
Cell = str | int | Decimal | date | datetime | None


class Kind(enum.Enum):
    """What a column holds, which decides its CSV text and its workbook number format."""

    TEXT = "text"
    COUNT = "count"
    EURO = "euro"
    DATE = "date"
    DATETIME = "datetime"


@attrs.frozen
class Column:
    """One column of a table: its CSV name, its workbook heading and its kind."""

    name: str
    title: str
    kind: Kind = Kind.TEXT


@attrs.frozen
class Table:
    """A named table of typed rows."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]

    @property
    def header(self) -> tuple[str, ...]:
        """Return the CSV column names."""
        return tuple(column.name for column in self.columns)


@attrs.frozen
class SummaryEntry:
    """One done report of the manifest, read."""

    balie: str
    name: str
    start: str
    end: str
    path: Path
    report: FinancialReport


@attrs.frozen
class SummaryProblem:
    """Something that keeps the summary from being complete and correct."""

    #: ``mismatch``, ``unreadable``, ``not-fetched`` or ``manifest``.
    kind: str
    balie: str
    report: str
    detail: str


@attrs.frozen
class PeriodTotal:
    """What one government is owed for one period, over all balies."""

    government: str
    start: date | None
    end: date | None
    #: Balies with a sheet for this government in this period.
    balies: int
    #: The sums (its ``balie`` is empty).
    total: GovernmentTotal


@attrs.frozen
class SummaryTables:
    """Everything ``reports summarize`` writes, as tables."""

    #: Per government and period: balies, lines, total price, contribution (workbook only).
    governments: Table
    #: Per balie, government and period (the workbook's "Per balie" sheet).
    balies: Table
    #: totals.csv: the per-balie rows of each government and period, then its total row.
    totals: Table
    #: Every line, with its balie and period.
    lines: Table
    problems: Table
    #: Contribution per government (rows) and period (columns), for the chart.
    chart_periods: tuple[str, ...]
    chart_rows: tuple[tuple[str, tuple[Decimal, ...]], ...]
    #: The rows of ``governments``, typed, in the same order.
    government_totals: tuple[PeriodTotal, ...]
    #: Every government and period summed (its ``balie`` and ``government`` are empty).
    grand_total: GovernmentTotal
    #: Balies with at least one sheet.
    balie_count: int


def _columns(*spec: tuple[str, str, Kind]) -> tuple[Column, ...]:
    return tuple(Column(name, title, kind) for name, title, kind in spec)


_T, _N, _E, _D, _DT = Kind.TEXT, Kind.COUNT, Kind.EURO, Kind.DATE, Kind.DATETIME
_PERIOD = (("period_start", "Period from", _D), ("period_end", "Period to", _D))
#: Who: the balie's name first, for people, then its key, for programs.
_BALIE = (("balie_name", "Balie", _T), ("balie", "Balie key", _T))
_SUMS = (
    ("lines", "Lines", _N),
    ("total_price", "Total price", _E),
    ("contribution", "Contribution", _E),
    ("stated_total", "Stated Total", _E),
    ("check", "Check", _T),
)
GOVERNMENT_COLUMNS = _columns(
    ("government", "Government", _T), *_PERIOD, ("balies", "Balies", _N), *_SUMS
)
BALIE_COLUMNS = _columns(
    *_BALIE,
    ("government", "Government", _T),
    *_PERIOD,
    *_SUMS,
)
TOTAL_COLUMNS = _columns(
    *_PERIOD,
    ("government", "Government", _T),
    *_BALIE,
    ("balies", "Balies", _N),
    *_SUMS,
)
#: Columns of lines.csv; ``uid`` only with include_uid.
LINE_COLUMNS = _columns(
    *_BALIE,
    *_PERIOD,
    ("report", "Report file", _T),
    ("workbook", "Workbook", _T),
    ("government", "Government", _T),
    ("organiser", "Organiser", _T),
    ("sold_at", "Sold at", _DT),
    ("uid", "UID", _T),
    ("municipality", "Municipality", _T),
    ("card_system", "Card system", _T),
    ("coupon", "Coupon", _T),
    ("group_pass", "Group pass", _T),
    ("event", "Event", _T),
    ("event_from", "Event from", _D),
    ("event_to", "Event to", _D),
    ("total_price", "Total price", _E),
    ("contribution", "Contribution", _E),
)
PROBLEM_COLUMNS = _columns(
    ("kind", "Kind", _T),
    *_BALIE,
    ("report", "Report", _T),
    ("detail", "Detail", _T),
)


def _day(text: str) -> date | None:
    """Return an ISO date of the manifest, or None when it is absent or not a date."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def period_label(start: date | None, end: date | None) -> str:
    """Return ``2024-Q1`` for a calendar quarter, else ``start..end`` (or "unknown period")."""
    if start is None or end is None:
        return "unknown period"
    return engine_period_label(start, end)


def _name_key(name: str, key: str) -> tuple[str, str]:
    """Sort balies by name as a reader would (case-insensitive), the key breaking ties."""
    return ((name or key).casefold(), key)


def _check(total: GovernmentTotal) -> str:
    return "ok" if total.balanced else "MISMATCH"


def _sums(total: GovernmentTotal) -> tuple[Cell, ...]:
    return (total.lines, total.total_price, total.contribution, total.stated_total, _check(total))


_Row = TypeVar("_Row")
#: A period as (start, end); either may be unknown.
_Period = tuple[date | None, date | None]


def _period_order(period: _Period) -> tuple[date, date]:
    return (period[0] or date.min, period[1] or date.min)


def _per_period(entries: Sequence[SummaryEntry]) -> dict[_Period, tuple[GovernmentTotal, ...]]:
    """Total each period's reports per balie and government."""
    groups: dict[_Period, list[SummaryEntry]] = {}
    for entry in entries:
        groups.setdefault((_day(entry.start), _day(entry.end)), []).append(entry)
    return {
        period: aggregate_reports((entry.balie, entry.report) for entry in group)
        for period, group in sorted(groups.items(), key=lambda item: _period_order(item[0]))
    }


def _government_total(government: str, totals: Iterable[GovernmentTotal]) -> GovernmentTotal:
    totals = tuple(totals)
    return GovernmentTotal(
        balie="",
        government=government,
        lines=sum(total.lines for total in totals),
        total_price=sum((total.total_price for total in totals), _ZERO),
        contribution=sum((total.contribution for total in totals), _ZERO),
        stated_total=sum((total.stated_total for total in totals), _ZERO),
    )


def _line_rows(entries: Sequence[SummaryEntry], include_uid: bool) -> Iterable[tuple[Cell, ...]]:
    ordered = sorted(
        entries, key=lambda e: (_name_key(e.name, e.balie), e.start, e.end, e.path.name)
    )
    for entry in ordered:
        head: tuple[Cell, ...] = (
            entry.name,
            entry.balie,
            _day(entry.start),
            _day(entry.end),
            entry.path.name,
        )
        for sheet in entry.report.sheets:
            for line in sheet.lines:
                yield (
                    *head,
                    sheet.member,
                    line.government,
                    line.organiser,
                    line.sold_at,
                    *((line.uid,) if include_uid else ()),
                    line.municipality,
                    line.card_system,
                    line.coupon,
                    line.group_pass,
                    line.event,
                    line.event_from,
                    line.event_to,
                    line.total_price,
                    line.contribution,
                )


def _sorted_rows(keyed: list[tuple[Any, _Row]]) -> tuple[_Row, ...]:
    return tuple(row for _, row in sorted(keyed, key=lambda item: item[0]))


def build_tables(
    entries: Sequence[SummaryEntry],
    problems: Sequence[SummaryProblem],
    *,
    include_uid: bool = False,
    names: dict[str, str] | None = None,
) -> SummaryTables:
    """Return every table of the summary of ``entries`` and ``problems``."""
    names = dict(names or {})
    for entry in entries:
        if entry.name:
            names.setdefault(entry.balie, entry.name)
    per_period = _per_period(entries)

    # Each row goes in with its sort key: names as a reader sorts them, then the period.
    government_totals: list[tuple[Any, PeriodTotal]] = []
    balie_rows: list[tuple[Any, tuple[Cell, ...]]] = []
    total_rows: list[tuple[Cell, ...]] = []
    for (start, end), totals in per_period.items():
        order = _period_order((start, end))
        by_government: dict[str, list[GovernmentTotal]] = {}
        for total in totals:
            by_government.setdefault(total.government, []).append(total)
        for government in sorted(by_government, key=lambda g: (g.casefold(), g)):
            group = sorted(
                by_government[government],
                key=lambda t: _name_key(names.get(t.balie, ""), t.balie),
            )
            overall = _government_total(government, group)
            government_totals.append(
                (
                    (government.casefold(), order),
                    PeriodTotal(government, start, end, len(group), overall),
                )
            )
            for total in group:
                name = names.get(total.balie, "")
                balie_rows.append(
                    (
                        (_name_key(name, total.balie), government.casefold(), order),
                        (name, total.balie, government, start, end, *_sums(total)),
                    )
                )
                total_rows.append((start, end, government, name, total.balie, 1, *_sums(total)))
            total_rows.append((start, end, government, ALL_BALIES, "", len(group), *_sums(overall)))

    periods = [period_label(start, end) for start, end in per_period]
    contributions: dict[str, list[Decimal]] = {}
    for index, totals in enumerate(per_period.values()):
        for total in totals:
            row = contributions.setdefault(total.government, [_ZERO] * len(periods))
            row[index] += total.contribution

    ordered = _sorted_rows(government_totals)
    line_columns = tuple(c for c in LINE_COLUMNS if include_uid or c.name != "uid")
    return SummaryTables(
        governments=Table(
            "Per government",
            GOVERNMENT_COLUMNS,
            tuple((t.government, t.start, t.end, t.balies, *_sums(t.total)) for t in ordered),
        ),
        balies=Table("Per balie", BALIE_COLUMNS, _sorted_rows(balie_rows)),
        totals=Table("Totals", TOTAL_COLUMNS, tuple(total_rows)),
        lines=Table("Lines", line_columns, tuple(_line_rows(entries, include_uid))),
        problems=Table(
            "Problems",
            PROBLEM_COLUMNS,
            tuple((p.kind, names.get(p.balie, ""), p.balie, p.report, p.detail) for p in problems),
        ),
        chart_periods=tuple(periods),
        chart_rows=tuple(
            (government, tuple(values))
            for government, values in sorted(contributions.items(), key=lambda i: i[0].casefold())
        ),
        government_totals=ordered,
        grand_total=_government_total("", (t.total for t in ordered)),
        balie_count=len({entry.balie for entry in entries if entry.report.sheets}),
    )
