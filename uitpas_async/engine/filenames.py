"""Names from servers, made safe: ``Content-Disposition`` parsing, sanitising, printing."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

__all__ = [
    "MAX_FILENAME_BYTES",
    "content_disposition_filename",
    "escape_for_terminal",
    "header_text",
    "safe_filename",
]


#: Longest stored filename, in UTF-8 bytes (most filesystems allow 255).
MAX_FILENAME_BYTES = 200


_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


# C0 and C1 controls too: a name is also printed, and ESC or CSI drive a terminal.
_UNSAFE_FILENAME_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"/\\|?*]')

# aiohttp decodes header bytes as UTF-8 with "surrogateescape": each byte that is
# not UTF-8 arrives as a lone surrogate U+DC80..U+DCFF.
_ESCAPED_BYTE = re.compile(r"[\udc80-\udcff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

# What a terminal must not receive raw: C0/C1 controls (ESC, CSI, BEL, ...), DEL,
# invisible format characters (bidi overrides) and line/paragraph separators.
_TERMINAL_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]"
)


_FILENAME_STAR_RE = re.compile(
    r"filename\*\s*=\s*(?P<charset>[A-Za-z0-9_-]*)'[^']*'(?P<value>[^;]*)", re.IGNORECASE
)


_FILENAME_QUOTED_RE = re.compile(r'filename\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"', re.IGNORECASE)


# Unquoted, the real server's form: the name runs to the end of the header or to
# the next "; param=", since a balie's name may itself hold a ";".
_FILENAME_PLAIN_RE = re.compile(
    r"filename\s*=\s*(?P<value>.*?)\s*(?=;\s*[A-Za-z0-9!#$&+.^_`|~-]+\*?\s*=|$)",
    re.IGNORECASE,
)


def header_text(value: str) -> str:
    """Return a header value as the text its sender meant, without lone surrogates.

    A header that is not valid UTF-8 (a Java server writing an accented balie name
    in ISO-8859-1) is read as Latin-1, which every byte sequence is; a surrogate
    that cannot be a raw byte becomes U+FFFD.
    """
    if not _SURROGATE.search(value):
        return value
    # Each escaped byte becomes the Latin-1 character of that byte; runs that were
    # valid UTF-8 stay as they were decoded.
    value = _ESCAPED_BYTE.sub(lambda match: chr(ord(match[0]) - 0xDC00), value)
    return _SURROGATE.sub("\ufffd", value)


def escape_for_terminal(text: str) -> str:
    """Return ``text`` safe to print: controls and invisible characters as ``\\x..``/``\\u....``.

    Server-chosen names (zip members, filenames, balie names) go through this before
    they are printed, so an ``ESC ] 0 ; ... BEL`` in one cannot retitle or drive the
    terminal.
    """
    return _TERMINAL_UNSAFE.sub(lambda match: match[0].encode("unicode_escape").decode(), text)


def content_disposition_filename(header: str | None) -> str | None:
    """Return the filename a ``Content-Disposition`` header proposes, unsanitised.

    Handles RFC 6266 ``filename*=UTF-8''...`` (preferred), quoted ``filename="..."``,
    and the real server's unquoted ``filename=name with spaces.zip``; a header that
    is not UTF-8 is read as Latin-1 (see :func:`header_text`).
    """
    if not header:
        return None
    header = header_text(header)
    star = _FILENAME_STAR_RE.search(header)
    if star:
        charset = star["charset"] or "utf-8"
        try:
            return unquote(star["value"].strip(), encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            pass
    quoted = _FILENAME_QUOTED_RE.search(header)
    if quoted:
        return re.sub(r"\\(.)", r"\1", quoted["value"])
    plain = _FILENAME_PLAIN_RE.search(header)
    if plain and plain["value"].strip():
        return plain["value"].strip()
    return None


def safe_filename(proposed: str | None, fallback: str) -> str:
    """Return a filename that cannot leave its directory, or ``fallback``.

    Path parts, control and reserved characters, leading dots and Windows device
    names are removed; the name is NFC-normalised and cut to a safe length.
    """
    name = unicodedata.normalize("NFC", header_text(proposed or ""))
    # Invisible format characters (e.g. U+202E, right-to-left override) disguise names.
    name = "".join(char for char in name if unicodedata.category(char) != "Cf")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_FILENAME_CHARS.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if not name or set(name) <= {"_", " ", "."}:
        return fallback
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name.encode()) > MAX_FILENAME_BYTES:
        stem, dot, suffix = name.rpartition(".")
        suffix = dot + suffix if dot and len(suffix) <= 10 else ""
        stem = name[: len(name) - len(suffix)]
        budget = MAX_FILENAME_BYTES - len(suffix.encode())
        stem = stem.encode()[:budget].decode(errors="ignore").rstrip(" .")
        name = stem + suffix
    return name
