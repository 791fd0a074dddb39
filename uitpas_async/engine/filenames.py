"""Filenames from servers, made safe: ``Content-Disposition`` parsing and sanitising."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

__all__ = ["MAX_FILENAME_BYTES", "content_disposition_filename", "safe_filename"]


#: Longest stored filename, in UTF-8 bytes (most filesystems allow 255).
MAX_FILENAME_BYTES = 200


_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


_UNSAFE_FILENAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


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


def content_disposition_filename(header: str | None) -> str | None:
    """Return the filename a ``Content-Disposition`` header proposes, unsanitised.

    Handles RFC 6266 ``filename*=UTF-8''...`` (preferred), quoted ``filename="..."``,
    and the real server's unquoted ``filename=name with spaces.zip``.
    """
    if not header:
        return None
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
    name = unicodedata.normalize("NFC", proposed or "")
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
