"""A new or emptied journal beside earlier reports: trust what checks out, refuse the rest.

A journal that is deleted, or truncated to 0 bytes (a valid empty SQLite
database), would otherwise take a batch as new: every report created again at
the server and downloaded again beside the first copies. So when the journal is
empty and the output directory already holds a manifest or reports, each report
file must be vouched for by a ``manifest.jsonl`` line whose sha256 matches the
file; those reports are done. Any other report file stops the run with a
:class:`~uitpas_async.engine.errors.JournalMismatchError` that says how to go on.

A manifest line names its job by ``job_key`` when it has one, else by its
report's folder (the job's label) and its ``start`` and ``end``; a line that
matches several jobs, or a job several lines, vouches for nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

import attrs

from uitpas_async.engine.backend import JobRequest
from uitpas_async.engine.errors import JournalMismatchError
from uitpas_async.engine.manifest import MANIFEST_NAME, read_manifest

__all__ = [
    "file_sha256",
    "has_earlier_output",
    "ManifestReport",
    "VerifiedReports",
    "find_verified_reports",
]

log = logging.getLogger("uitpas_async")

#: Folders of the output directory that hold no reports (``reports summarize`` output).
NON_REPORT_FOLDERS = frozenset({"summary"})
#: Report files named in a refusal, at most.
NAMED_IN_REFUSAL = 3


@attrs.frozen
class ManifestReport:
    """A done report of the manifest whose file is on disk and matches its sha256."""

    path: Path
    sha256: str
    size: int
    report_id: str | None
    start: str | None
    end: str | None
    job_key: str | None


def file_sha256(path: Path) -> str | None:
    """Return the SHA-256 of a file, or None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _report_files(out_dir: Path) -> set[Path]:
    """Return the files in the report folders of ``out_dir`` (one folder per label)."""
    files: set[Path] = set()
    for folder in out_dir.iterdir():
        if not folder.is_dir() or folder.is_symlink() or folder.name in NON_REPORT_FOLDERS:
            continue
        for item in folder.iterdir():
            if item.is_file() and not item.name.startswith("."):
                files.add(item.resolve())
    return files


def _manifest_lines(manifest: Path) -> list[dict[str, object]]:
    try:
        read = read_manifest(manifest)
    except OSError as exc:
        log.warning("cannot read %s: %s", manifest, exc)
        return []
    for problem in read.problems:
        log.warning("%s %s; it vouches for nothing", manifest, problem)
    return list(read.records)


def _text(record: dict[str, object], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) and value else None


def _verified(record: dict[str, object], out_dir: Path) -> ManifestReport | None:
    """Return the record's report if it is done, inside ``out_dir``, and its sha256 checks out."""
    path_text, sha256 = _text(record, "path"), _text(record, "sha256")
    if record.get("state") != "done" or path_text is None or sha256 is None:
        return None
    path = Path(path_text)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        path = path.resolve()
        path.relative_to(out_dir.resolve())
    except (OSError, ValueError):
        return None
    if file_sha256(path) != sha256:
        return None
    return ManifestReport(
        path=path,
        sha256=sha256,
        size=path.stat().st_size,
        report_id=_text(record, "report_id"),
        start=_text(record, "start"),
        end=_text(record, "end"),
        job_key=_text(record, "job_key"),
    )


def _date_text(request: JobRequest, name: str) -> str | None:
    value = getattr(request, name, None)
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else None


class VerifiedReports:
    """The manifest's reports that check out, found by the job they belong to."""

    def __init__(self, reports: Iterable[ManifestReport]) -> None:
        self._by_key: dict[str, list[ManifestReport]] = {}
        self._by_period: dict[tuple[str, str | None, str | None], list[ManifestReport]] = {}
        for report in reports:
            if report.job_key is not None:
                self._by_key.setdefault(report.job_key, []).append(report)
            else:
                period = (report.path.parent.name, report.start, report.end)
                self._by_period.setdefault(period, []).append(report)

    def __bool__(self) -> bool:
        return bool(self._by_key or self._by_period)

    def match(self, request: JobRequest) -> ManifestReport | None:
        """Return the one verified report of ``request`` (resolved), if exactly one fits."""
        found = self._by_key.get(request.job_key) or self._by_period.get(
            (request.label, _date_text(request, "start"), _date_text(request, "end")), []
        )
        return found[0] if len(found) == 1 else None

    def vouched_paths(self) -> set[Path]:
        """Return the files a single manifest line vouches for."""
        groups = [*self._by_key.values(), *self._by_period.values()]
        return {group[0].path for group in groups if len(group) == 1}


def has_earlier_output(out_dir: Path) -> bool:
    """Return whether ``out_dir`` holds a manifest or any report file (a cheap look)."""
    return (out_dir / MANIFEST_NAME).is_file() or bool(_report_files(out_dir))


def find_verified_reports(out_dir: Path, journal_path: Path) -> VerifiedReports:
    """Return the reports a new journal may take as done, or refuse to start blind.

    Raises:
        JournalMismatchError: a report file in ``out_dir`` that no manifest line
            vouches for (no manifest, not listed, or its sha256 differs).
    """
    manifest = out_dir / MANIFEST_NAME
    files = _report_files(out_dir)
    if not files and not manifest.is_file():
        return VerifiedReports(())
    records = _manifest_lines(manifest) if manifest.is_file() else []
    reports = [report for record in records if (report := _verified(record, out_dir))]
    verified = VerifiedReports(reports)
    unknown = sorted(files - verified.vouched_paths())
    if unknown:
        root = out_dir.resolve()
        named = ", ".join(str(path.relative_to(root)) for path in unknown[:NAMED_IN_REFUSAL])
        left = len(unknown) - NAMED_IN_REFUSAL
        more = f" and {left} more" if left > 0 else ""
        raise JournalMismatchError(
            f"{out_dir} holds {len(unknown)} report file(s) that the journal "
            f"{journal_path} (new or empty) does not know and {MANIFEST_NAME} does not "
            f"vouch for: {named}{more}. Restore the journal that fetched them, or move "
            "them out of the directory (or use another output directory) to fetch them again"
        )
    if verified:
        log.info("journal %s is new: reports that %s vouches for are kept", journal_path, manifest)
    return verified
