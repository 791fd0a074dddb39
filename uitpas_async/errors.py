"""Every exception this package raises, in one tree, importable from one place.

::

    UitpasError
    ├── ConfigurationError            missing credentials, bad base URL or option
    │   └── JournalError                  the journal cannot be read or written (disk full, ...)
    │       └── JournalMismatchError          the output holds reports the journal does not know
    ├── InvalidArgumentError          bad input caught before any request (also a ValueError)
    ├── ApiError                      the server answered with <response><code>...</code>
    │   ├── AccessDeniedError             ACCESS_DENIED (see .required_permission)
    │   ├── UnknownBalieError             UNKNOWN_BALIE_CONSUMERKEY
    │   ├── UnknownReportError            UNKNOWN_REPORT_ID
    │   ├── ReportGenerationError         ACTION_FAILED
    │   ├── ReportNotReadyError           INVALID_REPORT_STATUS
    │   ├── InvalidRequestError           MISSING_REQUIRED_FIELDS, PARSE_INVALID_*
    │   └── CardError                     UNKNOWN_CARD, UNKNOWN_VOUCHER, ...
    ├── TransportError                the request got no HTTP answer
    │   ├── ConnectError                  no connection could be made (nothing was sent)
    │   ├── ConnectionLostError           the connection broke after the request was sent
    │   └── RequestTimeoutError           no full answer in time
    ├── ProtocolError                 an HTTP answer that is not what the API speaks
    │   ├── HttpStatusError               a non-API status: HTML error page, empty 502, ...
    │   │   ├── RateLimitedError              429, with .retry_after
    │   │   ├── ServerError                   5xx
    │   │   └── AuthenticationError           401/403 outside the API's XML (bad signature)
    │   ├── MalformedResponseError        not XML, unsafe XML, or XML of an unexpected shape
    │   └── DownloadError                 truncated body, not a zip, bad filename
    │       └── ReportTooLargeError           past the configured size cap
    ├── ReportTimeoutError            a report did not complete before its deadline
    │   └── DownloadTimeoutError          its download missed the job's download deadline
    ├── UnexpectedError               a job met an exception outside this tree (a bug)
    ├── ReportFileError               a downloaded report cannot be read (uitpas_async.reports)
    └── LoginError                    the three-legged OAuth login did not give an access token
        ├── AuthorizationDeniedError      the user refused access on the authorize page
        ├── VerifierRejectedError         wrong or already used oauth_verifier
        ├── RequestTokenExpiredError      the request token expired before the exchange
        └── LoginTimeoutError             no valid callback reached the listener in time

API errors carry the server's ``code``, ``message``, ``required_permission`` and
the HTTP ``status``; codes without a class of their own still raise ``ApiError``.
No message or repr ever holds a secret, a signature or a signed URL: errors
name the endpoint by method and path only.

The trunk lives in :mod:`uitpas_async.engine.errors`; each provider's leaves in
its own ``errors`` module (:mod:`uitpas_async.xml_api.errors`,
:mod:`uitpas_async.finam.errors`). This module exports them all.
"""

from __future__ import annotations

from uitpas_async.engine.errors import (
    AccessDeniedError,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    DownloadError,
    DownloadTimeoutError,
    HttpStatusError,
    InvalidArgumentError,
    InvalidRequestError,
    JournalError,
    JournalMismatchError,
    MalformedResponseError,
    ProtocolError,
    RateLimitedError,
    ReportGenerationError,
    ReportNotReadyError,
    ReportTimeoutError,
    ReportTooLargeError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UitpasError,
    UnexpectedError,
    UnknownReportError,
)
from uitpas_async.finam.errors import FinamReportError, FinamReportNotFoundError
from uitpas_async.xml_api.errors import (
    AuthorizationDeniedError,
    CardError,
    LoginError,
    LoginTimeoutError,
    RequestTokenExpiredError,
    UnknownBalieError,
    VerifierRejectedError,
    api_error_class,
)

__all__ = [
    "AccessDeniedError",
    "ApiError",
    "AuthenticationError",
    "AuthorizationDeniedError",
    "CardError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "DownloadError",
    "DownloadTimeoutError",
    "FinamReportError",
    "FinamReportNotFoundError",
    "HttpStatusError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "JournalError",
    "JournalMismatchError",
    "LoginError",
    "LoginTimeoutError",
    "MalformedResponseError",
    "ProtocolError",
    "RateLimitedError",
    "ReportGenerationError",
    "ReportNotReadyError",
    "ReportTimeoutError",
    "ReportTooLargeError",
    "RequestTimeoutError",
    "RequestTokenExpiredError",
    "ServerError",
    "TransportError",
    "UitpasError",
    "UnexpectedError",
    "UnknownBalieError",
    "UnknownReportError",
    "VerifierRejectedError",
    "api_error_class",
]
