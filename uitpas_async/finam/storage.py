"""Store a Finam report as served: any bytes, any content type, never a partial file.

Unlike UiTPAS reports (always zips, checked as such), Finam's link serves
whatever the broker produced (PDF, XML, XLSX, HTML), so the only checks are the
declared length and the size cap; the shared :func:`~uitpas_async.engine.storage.store_report`
does the streaming, the owner-only temporary file and the atomic rename.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from uitpas_async.engine.filenames import safe_filename
from uitpas_async.engine.models import DownloadedReport
from uitpas_async.engine.storage import DEFAULT_CONTENT_TYPE, store_report
from uitpas_async.engine.transport import StreamingResponse

__all__ = ["DEFAULT_CONTENT_TYPE", "fallback_filename", "store_file"]


def fallback_filename(report_id: str, content_type: str) -> str:
    """Return ``finam-report-ID.EXT``, the extension guessed from the content type."""
    media = content_type.split(";")[0].strip().lower()
    extension = mimetypes.guess_extension(media) or ".bin"
    return safe_filename(f"finam-report-{report_id}{extension}", "finam-report.bin")


async def store_file(
    response: StreamingResponse, dest_dir: Path, *, report_id: str, max_bytes: int
) -> DownloadedReport:
    """Stream a successful download into ``dest_dir``, keeping bytes and content type.

    Raises:
        DownloadError: truncated, or cannot be written.
        ReportTooLargeError: past ``max_bytes``.
    """
    content_type = response.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
    return await store_report(
        response,
        dest_dir,
        report_id=report_id,
        max_bytes=max_bytes,
        fallback_filename=fallback_filename(report_id, content_type),
        check=None,
    )
