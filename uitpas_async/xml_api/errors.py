"""The UiTPAS XML API's leaves of the package's one exception tree.

::

    ApiError
    ├── UnknownBalieError             UNKNOWN_BALIE_CONSUMERKEY
    └── CardError                     UNKNOWN_CARD, UNKNOWN_VOUCHER, ...
    LoginError                    the three-legged OAuth login did not give an access token
    ├── AuthorizationDeniedError      the user refused access on the authorize page
    ├── VerifierRejectedError         wrong or already used oauth_verifier
    ├── RequestTokenExpiredError      the request token expired before the exchange
    └── LoginTimeoutError             no valid callback reached the listener in time

:func:`api_error_class` maps the XML envelope's ``<code>`` to its class, the
engine's shared classes included (``UNKNOWN_REPORT_ID`` is an ``UnknownReportError``).
"""

from __future__ import annotations

from uitpas_async.engine.errors import (
    AccessDeniedError,
    ApiError,
    InvalidRequestError,
    ReportGenerationError,
    ReportNotReadyError,
    UitpasError,
    UnknownReportError,
)

__all__ = [
    "AuthorizationDeniedError",
    "CardError",
    "LoginError",
    "LoginTimeoutError",
    "RequestTokenExpiredError",
    "UnknownBalieError",
    "VerifierRejectedError",
    "api_error_class",
]


class UnknownBalieError(ApiError):
    """The balie consumer key is not known (``UNKNOWN_BALIE_CONSUMERKEY``)."""


class CardError(ApiError):
    """The card or voucher cannot be priced (``UNKNOWN_CARD``, ``UNKNOWN_VOUCHER``, ...)."""


_API_ERROR_CLASSES: dict[str, type[ApiError]] = {
    "ACCESS_DENIED": AccessDeniedError,
    "UNKNOWN_BALIE_CONSUMERKEY": UnknownBalieError,
    "UNKNOWN_REPORT_ID": UnknownReportError,
    "ACTION_FAILED": ReportGenerationError,
    "INVALID_REPORT_STATUS": ReportNotReadyError,
    "MISSING_REQUIRED_FIELDS": InvalidRequestError,
    "UNKNOWN_CARD": CardError,
    "UNKNOWN_VOUCHER": CardError,
    "INVALID_VOUCHER_STATUS": CardError,
    "BALIE_NOT_AUTHORIZED": CardError,
}


def api_error_class(code: str) -> type[ApiError]:
    """Return the ApiError subclass for a server error code (``ApiError`` when unknown)."""
    if code in _API_ERROR_CLASSES:
        return _API_ERROR_CLASSES[code]
    if code.startswith("PARSE_INVALID"):
        return InvalidRequestError
    return ApiError


class LoginError(UitpasError):
    """The three-legged OAuth login did not end with an access token; nothing was stored."""

    code = "LOGIN"

    def __init__(self, message: str, *, problem: str | None = None) -> None:
        super().__init__(message)
        #: The server's ``oauth_problem`` name, when it gave one.
        self.problem = problem


class AuthorizationDeniedError(LoginError):
    """The user refused access on the authorize page."""

    code = "AUTHORIZATION_DENIED"


class VerifierRejectedError(LoginError):
    """The server refused the ``oauth_verifier``: wrong, or already used."""

    code = "VERIFIER_REJECTED"


class RequestTokenExpiredError(LoginError):
    """The request token expired before it was exchanged for an access token."""

    code = "REQUEST_TOKEN_EXPIRED"


class LoginTimeoutError(LoginError):
    """No valid authorization callback reached the listener in time."""

    code = "LOGIN_TIMEOUT"
