"""The engine's own value objects."""

from __future__ import annotations

from pathlib import Path

import attrs

__all__ = ["DownloadedReport"]


@attrs.frozen
class DownloadedReport:
    """A report file stored on disk."""

    report_id: str
    path: Path
    filename: str
    content_type: str
    size: int
    sha256: str
