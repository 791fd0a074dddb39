"""UiTPAS API 4.0's leaves of the package's one exception tree.

::

    ApiError
    ├── V4ApiError                    any problem+json answer; .type, .title, .status, .detail
    │   ├── OrganizerNotFoundError        .../uitpas/organizer-not-found
    │   ├── V4ReportNotFoundError         .../uitpas/report-not-found      (an UnknownReportError)
    │   ├── V4ReportInvalidStatusError    .../uitpas/report-invalid-status (a ReportNotReadyError)
    │   ├── V4AccessDeniedError           .../auth/forbidden               (an AccessDeniedError)
    │   └── V4InvalidRequestError         .../body/*, .../header/*         (an InvalidRequestError)
    └── V4ReportFailedError           the report ended FAILED (a ReportGenerationError); final
    HttpStatusError
    ├── RateLimitedError
    │   └── V4RateLimitedError            .../uitpas/rate-limited, with .retry_after
    └── AuthenticationError
        ├── V4AuthenticationError         .../auth/unauthorized: the token was refused
        └── TokenRequestError             the token server refused the client credentials
    ProtocolError
    └── UnknownReportStatusError      a report status this code does not know (not retried)

:func:`problem_error` is the one place a problem becomes an exception: it looks
the ``type`` URI up in :data:`PROBLEM_CLASSES` (then by namespace), and an
unknown type still raises :class:`V4ApiError` with all four fields. Every class
built from a problem has :class:`ProblemDetails`' ``problem``, ``type``,
``title`` and ``detail``; ``status`` is the HTTP status.
"""

from __future__ import annotations

from uitpas_async.engine.errors import (
    AccessDeniedError,
    ApiError,
    AuthenticationError,
    InvalidRequestError,
    ProtocolError,
    RateLimitedError,
    ReportGenerationError,
    ReportNotReadyError,
    UitpasError,
    UnknownReportError,
)
from uitpas_async.v4.models import Problem

__all__ = [
    "FORBIDDEN_TYPE",
    "ORGANIZER_NOT_FOUND_TYPE",
    "PROBLEM_BASE",
    "PROBLEM_CLASSES",
    "RATE_LIMITED_TYPE",
    "REPORT_INVALID_STATUS_TYPE",
    "REPORT_NOT_FOUND_TYPE",
    "UNAUTHORIZED_TYPE",
    "OrganizerNotFoundError",
    "ProblemDetails",
    "TokenRequestError",
    "UnknownReportStatusError",
    "V4AccessDeniedError",
    "V4ApiError",
    "V4AuthenticationError",
    "V4InvalidRequestError",
    "V4RateLimitedError",
    "V4ReportFailedError",
    "V4ReportInvalidStatusError",
    "V4ReportNotFoundError",
    "problem_class",
    "problem_code",
    "problem_error",
]

#: Every publiq problem type starts with this.
PROBLEM_BASE = "https://api.publiq.be/probs/"
ORGANIZER_NOT_FOUND_TYPE = PROBLEM_BASE + "uitpas/organizer-not-found"
REPORT_NOT_FOUND_TYPE = PROBLEM_BASE + "uitpas/report-not-found"
REPORT_INVALID_STATUS_TYPE = PROBLEM_BASE + "uitpas/report-invalid-status"
RATE_LIMITED_TYPE = PROBLEM_BASE + "uitpas/rate-limited"
UNAUTHORIZED_TYPE = PROBLEM_BASE + "auth/unauthorized"
FORBIDDEN_TYPE = PROBLEM_BASE + "auth/forbidden"


def problem_code(problem_type: str) -> str:
    """Return a problem type as a short code: ``uitpas/report-not-found`` (publiq's) or as is."""
    return problem_type.removeprefix(PROBLEM_BASE) or problem_type


class ProblemDetails:
    """What every error built from a problem+json answer carries (a mixin)."""

    #: The problem as the server gave it (bounded, and with no secret in it).
    problem: Problem

    @property
    def type(self) -> str:
        """The problem's ``type`` URI."""
        return self.problem.type

    @property
    def title(self) -> str:
        """The problem's short summary."""
        return self.problem.title

    @property
    def detail(self) -> str | None:
        """The problem's explanation of this occurrence, if any."""
        return self.problem.detail


def _text(problem: Problem) -> str:
    return f"{problem.title}: {problem.detail}" if problem.detail else problem.title


class V4ApiError(ProblemDetails, ApiError):
    """The API answered with ``application/problem+json`` (any type, known or not)."""

    def __init__(
        self,
        problem: Problem,
        *,
        status: int,
        endpoint: str = "",
        required_permission: str | None = None,
    ) -> None:
        super().__init__(
            problem_code(problem.type),
            _text(problem),
            status=status,
            endpoint=endpoint,
            required_permission=required_permission,
        )
        self.problem = problem


class OrganizerNotFoundError(V4ApiError):
    """The organizer id is not known (``.../uitpas/organizer-not-found``)."""


class V4ReportNotFoundError(V4ApiError, UnknownReportError):
    """The report is not (or no longer) known (``.../uitpas/report-not-found``)."""


class V4ReportInvalidStatusError(V4ApiError, ReportNotReadyError):
    """The report is not in the right state, e.g. downloaded before AVAILABLE."""


class V4AccessDeniedError(V4ApiError, AccessDeniedError):
    """The credentials may not do this for this organizer (``.../auth/forbidden``)."""


class V4InvalidRequestError(V4ApiError, InvalidRequestError):
    """The server refused the request's body or headers (``.../body/*``, ``.../header/*``)."""


class V4ReportFailedError(ReportGenerationError):
    """The report export ended FAILED, with the server's message; it is not retried."""

    def __init__(self, report_id: int, message: str, *, endpoint: str = "") -> None:
        super().__init__("REPORT_FAILED", message, status=200, endpoint=endpoint)
        self.report_id = report_id


class V4RateLimitedError(ProblemDetails, RateLimitedError):
    """The API asked us to slow down (``.../uitpas/rate-limited``, HTTP 429)."""

    def __init__(self, problem: Problem, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.problem = problem


class V4AuthenticationError(ProblemDetails, AuthenticationError):
    """The API refused the access token (``.../auth/unauthorized``, HTTP 401)."""

    def __init__(self, problem: Problem, message: str, *, status: int) -> None:
        super().__init__(message, status=status)
        self.problem = problem


class TokenRequestError(AuthenticationError):
    """The token server refused the client credentials (OAuth2 ``error``, e.g. invalid_client)."""

    def __init__(self, message: str, *, status: int, error: str | None) -> None:
        super().__init__(message, status=status)
        #: The OAuth2 error code (RFC 6749 section 5.2), when the server gave one.
        self.error = error


class UnknownReportStatusError(ProtocolError):
    """A report status this code does not know; a new API state, so not retried."""

    code = "UNKNOWN_REPORT_STATUS"


#: Problem types with a class of their own, keyed by the full ``type`` URI.
PROBLEM_CLASSES: dict[str, type[V4ApiError]] = {
    ORGANIZER_NOT_FOUND_TYPE: OrganizerNotFoundError,
    REPORT_NOT_FOUND_TYPE: V4ReportNotFoundError,
    REPORT_INVALID_STATUS_TYPE: V4ReportInvalidStatusError,
    FORBIDDEN_TYPE: V4AccessDeniedError,
}
#: Whole namespaces of problem types that share a class.
_NAMESPACE_CLASSES: dict[str, type[V4ApiError]] = {
    PROBLEM_BASE + "body/": V4InvalidRequestError,
    PROBLEM_BASE + "header/": V4InvalidRequestError,
}


def problem_class(problem_type: str) -> type[V4ApiError]:
    """Return the class of a problem type that is an API error (``V4ApiError`` when unknown)."""
    if problem_type in PROBLEM_CLASSES:
        return PROBLEM_CLASSES[problem_type]
    for prefix, cls in _NAMESPACE_CLASSES.items():
        if problem_type.startswith(prefix):
            return cls
    return V4ApiError


def problem_error(
    problem: Problem,
    *,
    status: int,
    endpoint: str,
    retry_after: float | None = None,
    required_permission: str | None = None,
) -> UitpasError:
    """Return the exception for a problem answer: the one place a problem becomes an error.

    A 429 or the rate-limited type is a :class:`V4RateLimitedError` (the client
    holds back), a 401 or the unauthorized type a :class:`V4AuthenticationError`
    (the client renews its token once); every other type an API error class.
    """
    where = f"{endpoint}: HTTP {status}"
    if status == 429 or problem.type == RATE_LIMITED_TYPE:
        return V4RateLimitedError(problem, f"{where}: {_text(problem)}", retry_after=retry_after)
    if status == 401 or problem.type == UNAUTHORIZED_TYPE:
        return V4AuthenticationError(problem, f"{where}: {_text(problem)}", status=status)
    cls = problem_class(problem.type)
    if cls is V4ApiError and status == 403:
        # A refusal of another type is still a refusal.
        cls = V4AccessDeniedError
    return cls(problem, status=status, endpoint=endpoint, required_permission=required_permission)
