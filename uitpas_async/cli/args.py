"""What the commands read from their arguments: number and date types, periods, files of keys.

Every argument type raises :class:`argparse.ArgumentTypeError`, so argparse prints
its message and exits with status 2.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

from uitpas_async.engine.errors import ConfigurationError, InvalidArgumentError
from uitpas_async.engine.periods import validate_period

__all__ = [
    "iso_date",
    "parse_period",
    "positive_float",
    "positive_int",
    "positive_seconds",
    "read_balies",
    "read_key_file",
    "sandbox_count",
]

_QUARTER_RE = re.compile(r"^(?P<year>\d{4})-?Q(?P<quarter>[1-4])$", re.IGNORECASE)
#: First cells that mark the first row of a balies file as a header.
_BALIE_HEADERS = ("key", "balie", "balieconsumerkey")

_Number = TypeVar("_Number", int, float)


def _number(text: str, convert: Callable[[str], _Number], what: str) -> _Number:
    try:
        return convert(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from exc


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1."""
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str, *, what: str = "a number") -> float:
    """Parse a number above 0 (``what`` names it in the error)."""
    value = _number(text, float, what)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError("must be positive")
    return value


def positive_seconds(text: str) -> float:
    """Parse a number of seconds above 0."""
    return positive_float(text, what="a number of seconds")


def sandbox_count(text: str) -> int:
    """Parse the number of balies (or accounts) of a sandbox: at least 1."""
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError("the sandbox needs at least one balie")
    return value


def iso_date(text: str) -> date:
    """Parse a ``YYYY-MM-DD`` date."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def parse_period(text: str) -> tuple[date, date] | None:
    """Parse ``latest`` (None), ``2024-Q1`` or ``2024-01-01..2024-03-31``.

    Raises:
        InvalidArgumentError: none of those forms, or end before start.
    """
    value = text.strip()
    if value.lower() == "latest":
        return None
    quarter = _QUARTER_RE.match(value)
    if quarter:
        year, number = int(quarter["year"]), int(quarter["quarter"])
        start = date(year, 3 * number - 2, 1)
        end = (date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)) - timedelta(
            days=1
        )
        return start, end
    first, separator, last = value.partition("..")
    if separator:
        try:
            start, end = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
        except ValueError as exc:
            raise InvalidArgumentError(f"not a date range: {text!r} ({exc})") from exc
        return validate_period(start, end)
    raise InvalidArgumentError(
        f"unknown period {text!r}: use latest, 2024-Q1 or 2024-01-01..2024-03-31"
    )


def read_key_file(path: Path, *, kind: str, noun: str, headers: tuple[str, ...]) -> list[list[str]]:
    """Read the rows of a file of keys: one a line, or CSV with the key first; ``#`` comments.

    Rows come back as stripped cells, each with a key first; a first row whose key is
    one of ``headers`` (any case) is a header and left out.

    Raises:
        ConfigurationError: the ``kind`` file cannot be read, or holds no ``noun``.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {kind} file {path}: {exc.strerror}") from exc
    rows: list[list[str]] = []
    for row in csv.reader(line for line in text.splitlines() if not line.lstrip().startswith("#")):
        cells = [cell.strip() for cell in row]
        if not cells or not cells[0]:
            continue
        if not rows and cells[0].lower() in headers:
            continue  # a header row
        rows.append(cells)
    if not rows:
        raise ConfigurationError(f"no {noun} in {path}")
    return rows


def read_balies(path: Path) -> list[tuple[str, str | None]]:
    """Read balie keys from a file: one key a line, or CSV ``key,name``; ``#`` starts a comment.

    Raises:
        ConfigurationError: the file cannot be read or holds no keys.
    """
    rows = read_key_file(path, kind="balies", noun="balie keys", headers=_BALIE_HEADERS)
    return [(cells[0], cells[1] if len(cells) > 1 and cells[1] else None) for cells in rows]
