"""The trunk of the package's one exception tree: what every provider raises.

::

    UitpasError
    ├── ConfigurationError            missing credentials, bad base URL or option
    │   └── JournalError                  the journal cannot be read or written (disk full, ...)
    │       └── JournalMismatchError          the output directory holds reports the journal
    │                                         does not know (journal deleted or emptied)
    ├── InvalidArgumentError          bad input caught before any request (also a ValueError)
    ├── ApiError                      the API answered with an error of its own (.code, .message)
    │   ├── AccessDeniedError             the credentials lack a permission (.required_permission)
    │   ├── UnknownReportError            the server does not (or no longer) know the report
    │   ├── ReportGenerationError         the server failed to generate the report
    │   ├── ReportNotReadyError           the report was downloaded before it completed
    │   └── InvalidRequestError           the server refused a parameter
    ├── TransportError                the request got no HTTP answer
    │   ├── ConnectError                  no connection could be made (nothing was sent)
    │   ├── ConnectionLostError           the connection broke after the request was sent
    │   └── RequestTimeoutError           no full answer in time
    ├── ProtocolError                 an HTTP answer that is not what the API speaks
    │   ├── HttpStatusError               a non-API status: HTML error page, empty 502, ...
    │   │   ├── RateLimitedError              429, with .retry_after
    │   │   ├── ServerError                   5xx
    │   │   └── AuthenticationError           401/403 outside the API's envelope (bad signature)
    │   ├── MalformedResponseError        not the format expected, unsafe, or an unexpected shape
    │   └── DownloadError                 truncated body, not a zip, bad filename
    │       └── ReportTooLargeError           past the configured size cap
    ├── ReportTimeoutError            a report did not complete before its deadline
    │   └── DownloadTimeoutError          its download did not finish before the job's deadline
    └── UnexpectedError               a job met an exception outside this tree (a bug); .kind

Each provider adds its leaves in its own ``errors`` module
(:mod:`uitpas_async.xml_api.errors`, :mod:`uitpas_async.finam.errors`), and
:mod:`uitpas_async.errors` draws and exports the whole tree.

API errors carry the server's ``code``, ``message``, ``required_permission`` and
the HTTP ``status``; codes without a class of their own still raise ``ApiError``.
No message or repr ever holds a secret, a signature or a signed URL: errors
name the endpoint by method and path only.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ApiError",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "DownloadError",
    "DownloadTimeoutError",
    "HttpStatusError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "JournalError",
    "JournalMismatchError",
    "MalformedResponseError",
    "ProtocolError",
    "RateLimitedError",
    "ReportGenerationError",
    "ReportNotReadyError",
    "ReportTimeoutError",
    "ReportTooLargeError",
    "RequestTimeoutError",
    "ServerError",
    "TransportError",
    "UitpasError",
    "UnexpectedError",
    "UnknownReportError",
]


class UitpasError(Exception):
    """Base of every error raised by uitpas_async."""

    #: A short, stable, machine-readable name for manifests and journals.
    code: str = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(UitpasError):
    """The package is not configured well enough to make a call."""

    code = "CONFIGURATION"


class JournalError(ConfigurationError):
    """The journal's database cannot be read or written: disk full, a corrupt page, a bad row.

    The run stops: without a sound journal a resumed run could not tell which
    reports exist. Every change before the fault is committed, so the journal
    stays consistent.
    """

    code = "JOURNAL"


class JournalMismatchError(JournalError):
    """The output directory holds reports that a new or empty journal cannot vouch for."""

    code = "JOURNAL_MISMATCH"


class InvalidArgumentError(UitpasError, ValueError):
    """An argument was refused before any request was made."""

    code = "INVALID_ARGUMENT"


class ApiError(UitpasError):
    """The API answered with an error code in its XML envelope."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int,
        required_permission: str | None = None,
        endpoint: str = "",
    ) -> None:
        text = f"{code}: {message}" if message else code
        if required_permission:
            text += f" (requires permission {required_permission!r})"
        if endpoint:
            text += f" [{endpoint}, HTTP {status}]"
        super().__init__(text)
        self.code = code
        self.message = message
        self.status = status
        self.required_permission = required_permission
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"status={self.status}, required_permission={self.required_permission!r})"
        )


class AccessDeniedError(ApiError):
    """The acting employee lacks a permission (``ACCESS_DENIED``)."""


class UnknownReportError(ApiError):
    """The server does not know (or no longer knows) this report (``UNKNOWN_REPORT_ID``)."""


class ReportGenerationError(ApiError):
    """The server failed to generate the report (``ACTION_FAILED``)."""


class ReportNotReadyError(ApiError):
    """The report was downloaded before it completed (``INVALID_REPORT_STATUS``)."""


class TransportError(UitpasError):
    """The request got no HTTP answer."""

    code = "TRANSPORT"


class ConnectError(TransportError):
    """No connection could be made, so the request never reached the server."""

    code = "CONNECT"


class ConnectionLostError(TransportError):
    """The connection broke after the request may have reached the server."""

    code = "CONNECTION_LOST"


class RequestTimeoutError(TransportError):
    """No complete answer arrived within the timeout."""

    code = "TIMEOUT"


class ProtocolError(UitpasError):
    """An HTTP answer that is not what the API speaks."""

    code = "PROTOCOL"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HttpStatusError(ProtocolError):
    """An HTTP error status without the API's XML envelope."""

    code = "HTTP_STATUS"


class RateLimitedError(HttpStatusError):
    """The server asked us to slow down (HTTP 429)."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, status: int = 429, retry_after: float | None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(HttpStatusError):
    """The server or a proxy in front of it failed (HTTP 5xx)."""

    code = "SERVER_ERROR"

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AuthenticationError(HttpStatusError):
    """The OAuth signature or token was refused outside the API's XML envelope."""

    code = "AUTHENTICATION"


class MalformedResponseError(ProtocolError):
    """The body is not XML, is unsafe XML, or has an unexpected shape."""

    code = "MALFORMED_RESPONSE"


class DownloadError(ProtocolError):
    """A report download was truncated, is not a zip, or cannot be stored."""

    code = "DOWNLOAD"


class ReportTooLargeError(DownloadError):
    """A report download went past the configured size cap."""

    code = "REPORT_TOO_LARGE"


class ReportTimeoutError(UitpasError):
    """A report did not complete before its polling deadline."""

    code = "REPORT_TIMEOUT"


class DownloadTimeoutError(ReportTimeoutError):
    """A report's download did not finish before the job's overall download deadline."""

    code = "DOWNLOAD_TIMEOUT"


class UnexpectedError(UitpasError):
    """A job failed on an exception outside this tree: a bug, or a fault nobody foresaw.

    Only that job fails; the batch goes on. ``kind`` names the original type.
    """

    code = "UNEXPECTED"

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        #: The type name of the exception that was caught.
        self.kind = kind


class InvalidRequestError(ApiError):
    """The server refused a parameter (``MISSING_REQUIRED_FIELDS``, ``PARSE_INVALID_*``)."""
