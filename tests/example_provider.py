"""A whole provider in one small file: ARCHITECTURE.md's checklist, proven on a toy API.

"Ledger" is an imaginary report API with the usual shape: create a statement for
an account and a month, poll it, download it. The remote side is an in-memory
:class:`LedgerServer` on an injected clock, so the test decides how long reports
take and can see how many times each one was created. Everything the engine
needs comes from four things: a request (``job_key``, ``label``), a leaf of the
error tree, a backend (start, ready, download, gone), and the provider name.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import attrs

from uitpas_async.engine.backend import JobRequest, StartedReport
from uitpas_async.engine.errors import InvalidArgumentError, UitpasError, UnknownReportError
from uitpas_async.engine.filenames import safe_filename
from uitpas_async.engine.models import DownloadedReport


class LedgerReportGoneError(UnknownReportError):
    """Ledger forgot a statement: a leaf of the one tree, so the engine can tell."""


@attrs.frozen
class StatementRequest:
    """One account's statement for one month: the provider's ``JobRequest``."""

    account: str
    month: date

    @property
    def job_key(self) -> str:
        """``ACCOUNT|YYYY-MM``: one journal entry per statement."""
        return f"{self.account}|{self.month:%Y-%m}"

    @property
    def label(self) -> str:
        """The account, safe as a folder name."""
        return safe_filename(self.account, "account")


class LedgerServer:
    """The remote side: statements that take ``duration(account)`` seconds to generate."""

    def __init__(self, clock: Callable[[], float], duration: Callable[[str], float]) -> None:
        self._clock = clock
        self._duration = duration
        self._ids = itertools.count(1)
        #: report id -> (account, month, ready at)
        self._reports: dict[str, tuple[str, date, float]] = {}
        #: How many statements were created per job key.
        self.created: Counter[str] = Counter()

    def create(self, account: str, month: date) -> str:
        report_id = str(next(self._ids))
        self._reports[report_id] = (account, month, self._clock() + self._duration(account))
        self.created[f"{account}|{month:%Y-%m}"] += 1
        return report_id

    def ready(self, report_id: str) -> bool:
        if report_id not in self._reports:
            raise LedgerReportGoneError("GONE", f"no statement {report_id}", status=404)
        return self._clock() >= self._reports[report_id][2]

    def content(self, report_id: str) -> bytes:
        account, month, _ = self._reports[report_id]
        return f"statement of {account} for {month:%Y-%m}\n".encode()

    def forget(self, report_id: str) -> None:
        del self._reports[report_id]


class LedgerBackend:
    """The seam: what the orchestrator calls to run one statement to a file on disk."""

    provider = "ledger"

    def __init__(self, server: LedgerServer) -> None:
        self.server = server

    @staticmethod
    def _request(request: JobRequest) -> StatementRequest:
        if not isinstance(request, StatementRequest):
            raise InvalidArgumentError(f"Ledger takes StatementRequest, not {type(request)}")
        return request

    async def resolve_request(self, request: JobRequest) -> JobRequest:
        return self._request(request)

    async def start_report(self, request: JobRequest) -> StartedReport:
        req = self._request(request)
        return StartedReport(self.server.create(req.account, req.month), req.month, req.month)

    async def report_ready(self, request: JobRequest, report_id: str) -> bool:
        return self.server.ready(report_id)

    async def download_report(
        self, request: JobRequest, report_id: str, dest_dir: Path
    ) -> DownloadedReport:
        body = self.server.content(report_id)
        dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = dest_dir / f"statement-{report_id}.txt"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
        digest = hashlib.sha256(body).hexdigest()
        return DownloadedReport(report_id, path, path.name, "text/plain", len(body), digest)

    def is_report_gone(self, error: UitpasError) -> bool:
        return isinstance(error, LedgerReportGoneError)
