"""Finam-specific leaves of the package's one exception tree.

::

    ApiError
    ├── FinamReportError              the report ended with status ERROR
    └── UnknownReportError
        └── FinamReportNotFoundError      status NOT_FOUND past the grace period

Every other Finam fault raises the shared classes of :mod:`uitpas_async.engine.errors`:
``AuthenticationError`` (401), ``RateLimitedError`` (429), ``ServerError`` (5xx),
``ApiError`` with the gRPC status name as ``code`` (``INVALID_ARGUMENT``, ...),
``MalformedResponseError`` (not the JSON expected, or ``SUCCESS`` without a URL).
"""

from __future__ import annotations

from uitpas_async.engine.errors import ApiError, UnknownReportError

__all__ = ["FinamReportError", "FinamReportNotFoundError"]


class FinamReportError(ApiError):
    """Finam failed to generate the report (status ``ERROR``)."""


class FinamReportNotFoundError(UnknownReportError):
    """Finam does not know (or no longer knows) a report we created (status ``NOT_FOUND``)."""
