"""Storing a report download: stream to a temporary file, check it, rename it into place.

A report reaches its final name only complete and checked (length, zip
structure and CRCs), so a crash or a fault never leaves a half-written report
under a real name. Files are owner-only: reports can hold personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import attrs

from uitpas_async.engine.errors import DownloadError, ReportTooLargeError
from uitpas_async.engine.filenames import content_disposition_filename, safe_filename
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.periods import period_label
from uitpas_async.engine.transport import StreamingResponse

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "TEMPORARY_PREFIX",
    "DownloadCall",
    "Refusal",
    "check_zip",
    "name_for_period",
    "store_or_refuse",
    "store_report",
]

#: Temporary downloads start with this; anything left with it after a crash is garbage.
TEMPORARY_PREFIX = ".uitpas-partial-"
#: What a report without a Content-Type is taken to be.
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Directories created for reports are owner-only too.
DIRECTORY_MODE = 0o700


class _Endpointed(Protocol):
    @property
    def endpoint(self) -> str:
        """The request's endpoint name."""
        ...


_Req = TypeVar("_Req", bound=_Endpointed)


@attrs.frozen
class DownloadCall(Generic[_Req]):
    """A download as the call pipeline sees it: the request, and where its report goes."""

    request: _Req
    directory: Path
    report_id: str
    #: The provider's name for the file when the server proposes none.
    fallback_filename: str

    @property
    def endpoint(self) -> str:
        """The request's endpoint name."""
        return self.request.endpoint

    @property
    def idempotent(self) -> bool:
        """A download may be sent again."""
        return True


def _not_ok(response: StreamingResponse) -> bool:
    return response.status != 200


@attrs.frozen
class Refusal:
    """How a provider reads a download answer that is no report: its pure check and a cap."""

    #: The provider's answer check, given status, headers and body; raises its typed error.
    check: Callable[[int, Mapping[str, str], bytes], object]
    #: The most bytes of a refusal read for its error.
    max_bytes: int
    #: Whether an answer is a refusal (by default: any status but 200).
    refused: Callable[[StreamingResponse], bool] = _not_ok
    #: What the error says a refusal the check let pass came instead of.
    instead: str = " instead of the report"


async def store_or_refuse(
    response: StreamingResponse,
    store: Callable[[StreamingResponse], Awaitable[DownloadedReport]],
    *,
    endpoint: str,
    refusal: Refusal,
) -> DownloadedReport:
    """Store a download answer with ``store``, or raise the provider's error for a refusal.

    A refusal is read (at most ``refusal.max_bytes``) and handed to the provider's
    check, which raises its typed error; one that check lets pass is still no report.

    Raises:
        DownloadError: a refusal the check let pass, or what ``store`` raises.
    """
    if refusal.refused(response):
        body = await response.read(refusal.max_bytes)
        refusal.check(response.status, response.headers, body)
        raise DownloadError(
            f"{endpoint}: HTTP {response.status}{refusal.instead}", status=response.status
        )
    return await store(response)


def check_zip(path: Path) -> None:
    """Check that a finished file is a readable zip whose members pass their CRCs."""
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise DownloadError(f"report is not a valid zip ({type(exc).__name__})") from exc
    except RuntimeError as exc:  # encrypted members
        raise DownloadError("report zip cannot be read (encrypted member)") from exc
    if broken is not None:
        raise DownloadError("report zip has a corrupt member")


def _finish(
    temporary: Path,
    descriptor: int,
    expected: int | None,
    written: int,
    check: Callable[[Path], None] | None,
) -> None:
    os.fsync(descriptor)
    if expected is not None and written != expected:
        raise DownloadError(f"report download truncated: {written} of {expected} bytes")
    if check is not None:
        check(temporary)


def _open_temporary(directory: Path) -> tuple[int, Path]:
    """Create the destination directory if needed and an owner-only temporary file in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
        # mkstemp creates the file with mode 0600 beside its final name, so the
        # closing rename is atomic (same filesystem).
        descriptor, name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=directory)
    except OSError as exc:
        raise DownloadError(f"cannot write into {directory} ({exc.strerror})") from exc
    return descriptor, Path(name)


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _final_path(directory: Path, filename: str, report_id: str) -> Path:
    """Return where to store a report, not clobbering a different report's file."""
    target = directory / filename
    if not target.exists():
        return target
    stem, dot, suffix = filename.rpartition(".")
    if not dot:
        stem, suffix = filename, ""
    return directory / f"{stem}-report-{report_id}{dot}{suffix}"


async def store_report(
    response: StreamingResponse,
    dest_dir: Path,
    *,
    report_id: str,
    max_bytes: int,
    fallback_filename: str,
    check: Callable[[Path], None] | None = check_zip,
) -> DownloadedReport:
    """Stream a successful download answer into ``dest_dir`` and return what was stored.

    ``check`` runs on the complete file before it gets its name (default: it must be
    a sound zip; None keeps any bytes as served). ``fallback_filename``, the provider's
    own naming, is used when the server proposes no usable name.

    Raises:
        DownloadError: truncated, refused by ``check``, or cannot be written.
        ReportTooLargeError: past ``max_bytes``.
    """
    expected = response.content_length
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        # Content-Length counts the encoded bytes; aiohttp decodes and checks those itself.
        expected = None
    if expected is not None and expected > max_bytes:
        raise ReportTooLargeError(f"report is {expected} bytes, over the {max_bytes}-byte cap")
    proposed = content_disposition_filename(response.headers.get("Content-Disposition"))
    content_type = response.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
    filename = safe_filename(proposed, fallback_filename)
    descriptor, temporary = _open_temporary(dest_dir)
    digest = hashlib.sha256()
    written = 0
    try:
        with os.fdopen(descriptor, "wb") as handle:
            async for chunk in response.chunks():
                written += len(chunk)
                if written > max_bytes:
                    raise ReportTooLargeError(f"report exceeds the {max_bytes}-byte cap")
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            await asyncio.to_thread(_finish, temporary, handle.fileno(), expected, written, check)
        final = _final_path(dest_dir, filename, report_id)
        os.replace(temporary, final)
    except OSError as exc:
        # A full disk or a vanished directory fails this report, not the batch.
        _discard(temporary)
        raise DownloadError(f"cannot store the report in {dest_dir} ({exc.strerror})") from exc
    except BaseException:
        _discard(temporary)
        raise
    return DownloadedReport(
        report_id=report_id,
        path=final,
        filename=final.name,
        content_type=content_type,
        size=written,
        sha256=digest.hexdigest(),
    )


def name_for_period(report: DownloadedReport, start: date, end: date) -> DownloadedReport:
    """Rename a stored report so its name carries its period (``..._2024-Q1.zip``).

    Servers name files by owner and creation time, so without this two quarters of
    one balie cannot be told apart by name. The rename never replaces another file.

    Raises:
        DownloadError: the file cannot be renamed.
    """
    tag = "_" + period_label(start, end).replace("..", "_")
    stem, dot, suffix = report.filename.rpartition(".")
    if not dot:
        stem, suffix = report.filename, ""
    if stem.endswith(tag) or not report.path.is_file():
        return report  # named already, or not a file this package stored
    name = safe_filename(f"{stem}{tag}{dot}{suffix}", report.filename)
    target = _final_path(report.path.parent, name, report.report_id)
    try:
        # A hard link fails rather than replace a file that appeared meanwhile.
        os.link(report.path, target)
        os.unlink(report.path)
    except FileExistsError as exc:
        raise DownloadError(f"cannot name the report {target.name}: the file exists") from exc
    except OSError:
        try:
            if target.exists():
                raise DownloadError(f"cannot name the report {target.name}: the file exists")
            os.rename(report.path, target)
        except OSError as exc:
            raise DownloadError(f"cannot rename the report ({exc.strerror})") from exc
    return attrs.evolve(report, path=target, filename=target.name)
