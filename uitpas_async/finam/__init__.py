"""Finam Trade API account reports: a second provider for the same orchestrator.

::

    async with FinamClient(secret=os.environ["FINAM_SECRET"]) as finam:
        job = await finam.create_account_report("1234567", start, end, ReportForm.LONG)
        info = await finam.get_account_report_info(job.report_id)
        results = await ReportOrchestrator(finam, out_dir, journal=...).run(
            [AccountReportRequest(account_id=a, start=start, end=end) for a in accounts])

``FinamClient`` is itself a :class:`~uitpas_async.engine.backend.ReportBackend`
(provider ``finam``). The secret is traded for a JWT that is renewed once for
everyone before it expires; neither ever reaches a log, a repr or an error.
"""

from __future__ import annotations

from uitpas_async.finam.client import (
    DEFAULT_BASE_URL,
    DEFAULT_NOT_FOUND_GRACE,
    DEFAULT_RATE_PER_METHOD,
    SECRET_VARIABLE,
    FinamClient,
)
from uitpas_async.finam.errors import FinamReportError, FinamReportNotFoundError
from uitpas_async.finam.models import (
    AccountReportInfo,
    AccountReportJob,
    AccountReportRequest,
    DateRange,
    ReportCreationStatus,
    ReportForm,
    TokenDetails,
)

#: The client is the backend; this name is kept for symmetry with ``UitpasBackend``.
FinamBackend = FinamClient

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_NOT_FOUND_GRACE",
    "DEFAULT_RATE_PER_METHOD",
    "SECRET_VARIABLE",
    "AccountReportInfo",
    "AccountReportJob",
    "AccountReportRequest",
    "DateRange",
    "FinamBackend",
    "FinamClient",
    "FinamReportError",
    "FinamReportNotFoundError",
    "ReportCreationStatus",
    "ReportForm",
    "TokenDetails",
]
