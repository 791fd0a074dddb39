"""What the commands read from their arguments: numbers, dates, periods, files of keys.

Every argument type raises :class:`argparse.ArgumentTypeError`, so argparse prints
its message and exits with status 2. Files a user hands in are read as UTF-8 (with
or without a BOM), else as cp1252 (what Excel writes on Windows), with a bounded
size; a file of keys may be plain lines or CSV with ``,``, ``;`` or tabs.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs

from uitpas_async.cli.output import warn
from uitpas_async.engine.errors import ConfigurationError, InvalidArgumentError
from uitpas_async.engine.periods import validate_period

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_SANDBOX_SIZE",
    "CommandParser",
    "KeyRow",
    "add_command_group",
    "add_sandbox_option",
    "explicit_sandbox",
    "global_options",
    "iso_date",
    "non_negative_float",
    "parse_period",
    "period_request",
    "port_number",
    "positive_float",
    "positive_int",
    "positive_seconds",
    "read_balies",
    "read_key_file",
    "read_key_rows",
    "read_text_file",
    "rows_with_lines",
    "sandbox_count",
    "unique_keys",
]

_Request = TypeVar("_Request")

_QUARTER_RE = re.compile(r"^(?P<year>\d{4})-?Q(?P<quarter>[1-4])$", re.IGNORECASE)
#: First cells that mark the first row of a balies file as a header.
_BALIE_HEADERS = ("key", "balie", "balieconsumerkey", "balie key", "consumer key", "sleutel")
#: A file a user hands in (balies, accounts) is refused past this size: no such file
#: is near it, and reading is bounded.
MAX_INPUT_BYTES = 8 * 1024 * 1024
#: Encodings tried in turn: UTF-8 (a BOM, as Excel's "CSV UTF-8" writes, is dropped),
#: then cp1252, what Excel writes on Windows as plain "CSV".
_ENCODINGS = ("utf-8-sig", "cp1252")
#: Delimiters a CSV of keys may use: Belgian Excel writes ``;``.
_DELIMITERS = (",", ";", "\t")
#: The largest sandbox ``--sandbox N`` starts: enough for any demo, small enough to start.
MAX_SANDBOX_SIZE = 1000

_Number = TypeVar("_Number", int, float)
#: A number written right after ``--sandbox`` is its size when it has at most this many
#: digits; a longer one (a card number) is the next argument.
_SANDBOX_DIGITS = 4


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose paragraphs, keeps example lines as written, and shows every default."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            # Examples (indented) and headings ("examples:") keep their lines.
            if any(line.startswith("  ") or line.endswith(":") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS) and not isinstance(default, bool)
        if shown and "%(default)" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose help shows defaults and keeps line breaks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def add_command_group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    description: str,
    dest: str,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add a command that only groups subcommands (and prints its help when given none)."""
    group = commands.add_parser(name, help=help, description=description)
    subcommands = group.add_subparsers(dest=dest, metavar="COMMAND", title="commands")
    group.set_defaults(help_parser=group)
    return subcommands


def period_request(
    make: Callable[..., _Request], owner: str, period: tuple[date, date] | None
) -> _Request:
    """Return ``make``'s request for ``owner``: its latest period (``None``), or the dates."""
    return make(owner, period="latest") if period is None else make(owner, period[0], period[1])


def global_options(*, top: bool = False) -> argparse.ArgumentParser:
    """Return the parent parser of ``-v`` and ``-q``, which work before or after a command.

    The top parser holds the defaults; a command's copy leaves the value alone unless
    given (argparse lets a subparser's default overwrite what the top parser read).
    """
    options = argparse.ArgumentParser(add_help=False)
    default: Any = False if top else argparse.SUPPRESS
    output = options.add_argument_group("output")
    output.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log every request"
    )
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="print only results, warnings and errors: no progress, no notes",
    )
    return options


def _sandbox_size(default: int) -> Callable[[str], int]:
    """Return the type of ``--sandbox=N``; ``--sandbox=`` (a bare ``--sandbox``) is ``default``."""

    def size(text: str) -> int:
        return default if text == "" else sandbox_count(text)

    size.__name__ = "sandbox size"
    return size


def add_sandbox_option(group: Any, *, default: int, what: str) -> None:
    """Add ``--sandbox[=N]``: run against a local sandbox with N ``what`` (bounded)."""
    group.add_argument(
        "--sandbox",
        nargs="?",
        type=_sandbox_size(default),
        const=default,
        default=None,
        metavar="N",
        help=f"run against a local sandbox with N {what} (default {default}, at most "
        f"{MAX_SANDBOX_SIZE}) instead; needs no configuration",
    )


def explicit_sandbox(arguments: Sequence[str]) -> list[str]:
    """Return the arguments with every ``--sandbox`` written as ``--sandbox=N`` or ``--sandbox=``.

    ``--sandbox`` takes its size only from a short number right after it, so
    ``price --sandbox 0934000185108`` keeps the card number as the card number.
    """
    result: list[str] = []
    index = 0
    while index < len(arguments):
        word = arguments[index]
        if word == "--":
            result += arguments[index:]
            break
        if word == "--sandbox":
            following = arguments[index + 1] if index + 1 < len(arguments) else ""
            if following.isdigit() and len(following) <= _SANDBOX_DIGITS:
                result.append(f"--sandbox={following}")
                index += 2
                continue
            word = "--sandbox="
        result.append(word)
        index += 1
    return result


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
    if not value > 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("must be positive")
    return value


def non_negative_float(text: str) -> float:
    """Parse a number of at least 0."""
    value = _number(text, float, "a number")
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def positive_seconds(text: str) -> float:
    """Parse a number of seconds above 0."""
    return positive_float(text, what="a number of seconds")


def sandbox_count(text: str) -> int:
    """Parse the number of balies (or accounts) of a sandbox: 1 to :data:`MAX_SANDBOX_SIZE`."""
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError("the sandbox needs at least one balie")
    if value > MAX_SANDBOX_SIZE:
        raise argparse.ArgumentTypeError(f"the sandbox holds at most {MAX_SANDBOX_SIZE}")
    return value


def port_number(text: str) -> int:
    """Parse a TCP port: 1 to 65535."""
    value = _number(text, int, "a port number")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 1 to 65535")
    return value


def iso_date(text: str) -> date:
    """Parse a ``YYYY-MM-DD`` date."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _not_in_future(text: str, start: date, end: date, today: date) -> tuple[date, date]:
    if end >= today:
        raise InvalidArgumentError(
            f"period {text} ends {end.isoformat()}, not before today ({today.isoformat()}): "
            "a report covers a completed period"
        )
    return start, end


def parse_period(text: str, *, today: date | None = None) -> tuple[date, date] | None:
    """Parse ``latest`` (None), ``2024-Q1`` or ``2024-01-01..2024-03-31``; refuse the future.

    Raises:
        InvalidArgumentError: none of those forms, end before start, or a period that
            has not ended before ``today`` (default: the local date).
    """
    value = text.strip()
    today = today or date.today()
    if value.lower() == "latest":
        return None
    quarter = _QUARTER_RE.match(value)
    if quarter:
        year, number = int(quarter["year"]), int(quarter["quarter"])
        start = date(year, 3 * number - 2, 1)
        end = (date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)) - timedelta(
            days=1
        )
        return _not_in_future(value, start, end, today)
    first, separator, last = value.partition("..")
    if separator:
        try:
            start, end = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
        except ValueError as exc:
            raise InvalidArgumentError(f"not a date range: {text!r} ({exc})") from exc
        return _not_in_future(value, *validate_period(start, end), today)
    raise InvalidArgumentError(
        f"unknown period {text!r}: use latest, 2024-Q1 or 2024-01-01..2024-03-31"
    )


def read_text_file(path: Path, *, kind: str) -> str:
    """Read a text file a user hands in: UTF-8 (BOM or not), else cp1252, at most 8 MiB.

    Raises:
        ConfigurationError: cannot be read, too large, or text in neither encoding.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {kind} file {path}: {exc.strerror}") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise ConfigurationError(
            f"{kind} file {path} is over {MAX_INPUT_BYTES // (1024 * 1024)} MiB: not a {kind} file?"
        )
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ConfigurationError(
        f"cannot read {kind} file {path}: neither UTF-8 nor cp1252 text; save it as CSV UTF-8"
    )


@attrs.frozen
class KeyRow:
    """One row of a file of keys: its line number and stripped cells, the key first."""

    line: int
    cells: list[str]


def _sniff_delimiter(lines: Sequence[str]) -> str:
    """Return the delimiter that splits the most lines into the same number of cells."""
    best, best_score = ",", 0
    for delimiter in _DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        multi = [width for width in widths if width > 1]
        if not multi:
            continue
        common = max(set(multi), key=multi.count)
        score = multi.count(common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _is_header(first: Sequence[str], later: Iterable[KeyRow], headers: Sequence[str]) -> bool:
    """Whether the first row names columns: a known name, or words above keys with digits."""
    cell = first[0].lower()
    if cell in headers or cell.replace("_", " ") in headers:
        return True
    # Keys carry digits (UUID-like balie keys, account numbers); a column name has none.
    if any(character.isdigit() for character in cell):
        return False
    return any(any(c.isdigit() for c in row.cells[0]) for row in later)


def read_key_rows(path: Path, *, kind: str, noun: str, headers: Sequence[str]) -> list[KeyRow]:
    """Read the rows of a file of keys with their line numbers (see :func:`read_key_file`).

    Raises:
        ConfigurationError: the ``kind`` file cannot be read, or holds no ``noun``.
    """
    text = read_text_file(path, kind=kind)
    numbered = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    delimiter = _sniff_delimiter([line for _, line in numbered])
    rows: list[KeyRow] = []
    for number, line in numbered:
        cells = [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter), [])]
        if cells and cells[0]:
            rows.append(KeyRow(number, cells))
    if rows and _is_header(rows[0].cells, rows[1:], headers):
        rows = rows[1:]
    if not rows:
        raise ConfigurationError(f"no {noun} in {path}")
    return rows


def read_key_file(path: Path, *, kind: str, noun: str, headers: Sequence[str]) -> list[list[str]]:
    """Read the rows of a file of keys: one a line, or CSV with the key first; ``#`` comments.

    Rows come back as stripped cells, each with a key first. The delimiter (``,``,
    ``;`` or tab) is sniffed; a first row that names columns (one of ``headers`` in
    any case, or words above keys that carry digits) is a header and left out.

    Raises:
        ConfigurationError: the ``kind`` file cannot be read, or holds no ``noun``.
    """
    return [row.cells for row in read_key_rows(path, kind=kind, noun=noun, headers=headers)]


def unique_keys(named: Iterable[tuple[str, str]], *, noun: str) -> list[str]:
    """Return the keys of ``(key, where)`` pairs once each, in order; warn of each repeat."""
    first: dict[str, str] = {}
    for key, where in named:
        if key in first:
            warn(f"{noun} {key} is named again in {where} (first in {first[key]}); fetched once")
        else:
            first[key] = where
    return list(first)


def read_balies(path: Path) -> list[tuple[str, str | None]]:
    """Read balie keys from a file: one key a line, or CSV ``key,name``; ``#`` starts a comment.

    A repeated key is reported (with both lines) and kept once, with its first name.

    Raises:
        ConfigurationError: the file cannot be read or holds no keys.
    """
    rows = read_key_rows(path, kind="balies", noun="balie keys", headers=_BALIE_HEADERS)
    names: dict[str, str | None] = {}
    for row in rows:
        names.setdefault(row.cells[0], row.cells[1] if len(row.cells) > 1 else None)
    keys = unique_keys(rows_with_lines(path, rows), noun="balie")
    return [(key, names[key] or None) for key in keys]


def rows_with_lines(path: Path, rows: Iterable[KeyRow]) -> Iterator[tuple[str, str]]:
    """Return each row's key with where it stands (``balies.csv line 3``)."""
    for row in rows:
        yield row.cells[0], f"{path.name} line {row.line}"
