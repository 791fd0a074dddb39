"""The three-legged OAuth 1.0a login as pure functions: build its requests, read its answers.

Nothing here does I/O or awaits; :mod:`uitpas_async.xml_api.login` sends what this
module builds. The flow (reference, "Authentication"):

1. ``POST {prefix}/requestToken``, signed with the consumer alone, with
   ``oauth_callback``; the answer is ``oauth_token=...&oauth_token_secret=...``.
2. The user's browser goes to ``{prefix}/auth/authorize?oauth_token=...``.
3. The callback receives ``oauth_token`` and ``oauth_verifier``;
   ``POST {prefix}/accessToken``, signed with the request token and the
   verifier, answers ``userId=...&oauth_token=...&oauth_token_secret=...``.

Refusals come as plain-text ``oauth_problem=NAME`` bodies (the OAuth Problem
Reporting extension); :func:`check_token_answer` is the one place they become
exceptions. A refused authorization reaches the callback as
``oauth_problem=permission_denied`` or as ``denied=TOKEN`` (both forms are in
use among OAuth 1.0a servers). No message built here holds a token secret,
a verifier or a signed URL.
"""

from __future__ import annotations

import enum
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

import attrs

from uitpas_async.engine.errors import (
    AuthenticationError,
    InvalidArgumentError,
    MalformedResponseError,
)
from uitpas_async.xml_api.errors import (
    AuthorizationDeniedError,
    LoginError,
    RequestTokenExpiredError,
    VerifierRejectedError,
)
from uitpas_async.xml_api.models import mask
from uitpas_async.xml_api.protocol import Params, Request, check_response, encode_query, join_prefix

__all__ = [
    "ACCESS_TOKEN_PATH",
    "AUTHORIZE_PATH",
    "REQUEST_TOKEN_PATH",
    "AccessToken",
    "CallbackOutcome",
    "CallbackVerdict",
    "RequestToken",
    "TokenRequest",
    "authorize_url",
    "build_access_token",
    "build_request_token",
    "check_token_answer",
    "login_error",
    "parse_access_token",
    "parse_request_token",
    "read_pasted_callback",
    "read_callback",
]

#: Where the three steps live, relative to the prefix.
REQUEST_TOKEN_PATH = "/requestToken"  # noqa: S105 (a path, not a secret)
AUTHORIZE_PATH = "/auth/authorize"
ACCESS_TOKEN_PATH = "/accessToken"  # noqa: S105 (a path, not a secret)
#: The values the authorize page's optional parameters take.
AUTHORIZE_TYPES = ("regular", "register", "forcelogin")
AUTHORIZE_LANGUAGES = ("nl", "en", "fr", "de")
#: Token answers above this size are refused unread.
MAX_TOKEN_ANSWER_BYTES = 16 * 1024

#: ``oauth_problem`` names and the error each one means.
_PROBLEM_ERRORS: dict[str, type[LoginError]] = {
    "permission_denied": AuthorizationDeniedError,
    "user_refused": AuthorizationDeniedError,
    "verifier_invalid": VerifierRejectedError,
    "token_used": VerifierRejectedError,
    "token_expired": RequestTokenExpiredError,
}
_PROBLEM_MESSAGES = {
    AuthorizationDeniedError: "the authorization was denied",
    VerifierRejectedError: "the verifier was refused (wrong, or already used)",
    RequestTokenExpiredError: "the request token expired before it was exchanged",
}
#: What a problem name may look like; anything else is not echoed into a message.
_PROBLEM_NAME = re.compile(r"[a-z_]{1,64}")
#: What a verifier pasted on its own may look like: printable, no spaces, bounded.
_VERIFIER = re.compile(r"[A-Za-z0-9._~+/=-]{1,256}")
#: Longest pasted line read as a callback URL.
MAX_PASTED_CHARS = 4096


@attrs.frozen
class TokenRequest:
    """One token call before signing: the request, and the ``oauth_*`` parameters it adds."""

    request: Request
    #: ``oauth_callback`` or ``oauth_verifier``: signed, and sent in the Authorization header.
    oauth: Params = attrs.field(repr=False)


@attrs.frozen(repr=False)
class RequestToken:
    """A temporary (request) token, good for one authorization."""

    token: str
    secret: str
    #: Whether the server said ``oauth_callback_confirmed=true`` (OAuth 1.0a).
    callback_confirmed: bool = False

    def __repr__(self) -> str:
        return f"RequestToken(token={mask(self.token)!r}, secret='***')"

    __str__ = __repr__


@attrs.frozen(repr=False)
class AccessToken:
    """The user access token of the balie employee who authorized the application."""

    token: str
    secret: str
    #: The UiTiD user id the server names, if it does.
    user_id: str | None = None

    def __repr__(self) -> str:
        return f"AccessToken(user_id={self.user_id!r}, token={mask(self.token)!r}, secret='***')"

    __str__ = __repr__


class CallbackOutcome(enum.Enum):
    """What one request to the callback listener means for the login."""

    #: The awaited callback, with a verifier: the login goes on.
    VERIFIED = "verified"
    #: The awaited callback, telling that the authorization failed (denied, expired, ...).
    FAILED = "failed"
    #: Not the awaited callback (wrong or missing token, no verifier): keep waiting.
    REJECTED = "rejected"


@attrs.frozen
class CallbackVerdict:
    """The listener's judgement of one callback request."""

    outcome: CallbackOutcome
    verifier: str | None = attrs.field(default=None, repr=False)
    #: The ``oauth_problem`` of a failed authorization.
    problem: str | None = None
    #: Why a request was rejected, fit to show the user (never a secret).
    reason: str = ""


# -- building ------------------------------------------------------------------------


def _check_callback_url(callback_url: str) -> str:
    parts = urlsplit(callback_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgumentError("callback_url must be an absolute http(s) URL")
    return callback_url


def build_request_token(callback_url: str) -> TokenRequest:
    """Build step 1: ask for a request token whose authorization returns to ``callback_url``."""
    request = Request("POST", REQUEST_TOKEN_PATH, "oauth.requestToken", idempotent=False)
    return TokenRequest(request, (("oauth_callback", _check_callback_url(callback_url)),))


def build_access_token(verifier: str) -> TokenRequest:
    """Build step 3: exchange the authorized request token and its verifier for an access token."""
    if not verifier or not verifier.strip():
        raise InvalidArgumentError("verifier must not be empty")
    request = Request("POST", ACCESS_TOKEN_PATH, "oauth.accessToken", idempotent=False)
    return TokenRequest(request, (("oauth_verifier", verifier),))


def authorize_url(
    base_url: str,
    request_token: RequestToken | str,
    *,
    type: str | None = None,
    lang: str | None = None,
    skip_authorization: bool | None = None,
    email: str | None = None,
) -> str:
    """Return step 2: the URL of the page where the user authorizes the request token.

    Raises:
        InvalidArgumentError: an empty token, or a ``type`` or ``lang`` the API does not know.
    """
    token = request_token.token if isinstance(request_token, RequestToken) else request_token
    if not token:
        raise InvalidArgumentError("request token must not be empty")
    query: list[tuple[str, str]] = [("oauth_token", token)]
    if type is not None:
        if type not in AUTHORIZE_TYPES:
            raise InvalidArgumentError(f"type must be one of {', '.join(AUTHORIZE_TYPES)}")
        query.append(("type", type))
    if lang is not None:
        if lang not in AUTHORIZE_LANGUAGES:
            raise InvalidArgumentError(f"lang must be one of {', '.join(AUTHORIZE_LANGUAGES)}")
        query.append(("lang", lang))
    if skip_authorization is not None:
        query.append(("skipAuthorization", "true" if skip_authorization else "false"))
    if email:
        query.append(("email", email))
    return join_prefix(base_url, AUTHORIZE_PATH) + "?" + encode_query(tuple(query))


# -- reading -------------------------------------------------------------------------


def _form(body: bytes) -> dict[str, str] | None:
    """Return a form-encoded body as a dict (first value wins), or None when it is not one."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if not text or "=" not in text or text.startswith("<"):
        return None
    fields: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def login_error(problem: str, *, endpoint: str, status: int | None = None) -> LoginError:
    """Return the typed error for an ``oauth_problem`` name (LoginError when it has no class)."""
    error_class = _PROBLEM_ERRORS.get(problem, LoginError)
    what = _PROBLEM_MESSAGES.get(error_class, "the login failed")
    where = f"{endpoint}: HTTP {status}: " if status is not None else f"{endpoint}: "
    return error_class(f"{where}{what} ({problem}); run the login again", problem=problem)


def check_token_answer(
    status: int, headers: Mapping[str, str], body: bytes, *, endpoint: str
) -> dict[str, str]:
    """Return the fields of a successful token answer, or raise the matching error.

    Raises:
        AuthorizationDeniedError, VerifierRejectedError, RequestTokenExpiredError:
            the server named that ``oauth_problem``.
        AuthenticationError: another ``oauth_problem`` (bad signature, unknown consumer, ...).
        RateLimitedError, ServerError, HttpStatusError, ApiError: as for any API call.
        MalformedResponseError: a success whose body is not a token answer.
    """
    if len(body) > MAX_TOKEN_ANSWER_BYTES:
        raise MalformedResponseError(
            f"{endpoint}: HTTP {status}: token answer of {len(body)} bytes is too large",
            status=status,
        )
    fields = _form(body) or {}
    if status >= 400:
        problem = fields.get("oauth_problem", "")
        if problem and _PROBLEM_NAME.fullmatch(problem):
            if problem in _PROBLEM_ERRORS:
                raise login_error(problem, endpoint=endpoint, status=status)
            if status in (400, 401, 403):
                raise AuthenticationError(
                    f"{endpoint}: HTTP {status}: OAuth refused ({problem})", status=status
                )
        # Rate limits, server faults, API envelopes and anything else: as for any call.
        check_response(status, headers, body, endpoint=endpoint)
    if status != 200 or not fields:
        raise MalformedResponseError(
            f"{endpoint}: HTTP {status}: expected a form-encoded token answer", status=status
        )
    missing = [name for name in ("oauth_token", "oauth_token_secret") if not fields.get(name)]
    if missing:
        raise MalformedResponseError(
            f"{endpoint}: HTTP {status}: token answer lacks {', '.join(missing)}", status=status
        )
    return fields


def parse_request_token(status: int, headers: Mapping[str, str], body: bytes) -> RequestToken:
    """Turn the answer of step 1 into a :class:`RequestToken` (see :func:`check_token_answer`)."""
    fields = check_token_answer(status, headers, body, endpoint="oauth.requestToken")
    confirmed = fields.get("oauth_callback_confirmed", "").lower() == "true"
    return RequestToken(fields["oauth_token"], fields["oauth_token_secret"], confirmed)


def parse_access_token(status: int, headers: Mapping[str, str], body: bytes) -> AccessToken:
    """Turn the answer of step 3 into an :class:`AccessToken` (see :func:`check_token_answer`)."""
    fields = check_token_answer(status, headers, body, endpoint="oauth.accessToken")
    return AccessToken(
        fields["oauth_token"], fields["oauth_token_secret"], fields.get("userId") or None
    )


def read_callback(params: Mapping[str, str], request_token: str) -> CallbackVerdict:
    """Judge one request to the callback listener against the request token it waits for.

    Only a request naming this login's request token can end the wait: anything
    else is rejected, and the listener keeps waiting for the real one.
    """
    denied = params.get("denied")
    token = params.get("oauth_token") or denied
    if not token:
        return CallbackVerdict(CallbackOutcome.REJECTED, reason="the request has no oauth_token")
    if not request_token or not hmac.compare_digest(token.encode(), request_token.encode()):
        return CallbackVerdict(
            CallbackOutcome.REJECTED,
            reason="its oauth_token is not the request token of this login",
        )
    problem = params.get("oauth_problem") or ("permission_denied" if denied else "")
    if problem:
        name = problem if _PROBLEM_NAME.fullmatch(problem) else "permission_denied"
        return CallbackVerdict(CallbackOutcome.FAILED, problem=name)
    verifier = params.get("oauth_verifier")
    if not verifier:
        return CallbackVerdict(CallbackOutcome.REJECTED, reason="the request has no oauth_verifier")
    return CallbackVerdict(CallbackOutcome.VERIFIED, verifier=verifier)


def read_pasted_callback(text: str, request_token: str) -> CallbackVerdict:
    """Judge what the user pasted: the callback URL from the browser, or the verifier alone.

    A URL (or its query) goes through :func:`read_callback`, so it must name this
    login's request token; a bare verifier is taken as it is.
    """
    value = text.strip()
    if not value:
        return CallbackVerdict(CallbackOutcome.REJECTED, reason="nothing was pasted")
    if len(value) > MAX_PASTED_CHARS:
        return CallbackVerdict(CallbackOutcome.REJECTED, reason="the pasted text is too long")
    if "=" in value and ("?" in value or "&" in value or value.startswith("oauth_")):
        query = urlsplit(value).query if "?" in value else value
        return read_callback(dict(parse_qsl(query)), request_token)
    if _VERIFIER.fullmatch(value):
        return CallbackVerdict(CallbackOutcome.VERIFIED, verifier=value)
    return CallbackVerdict(
        CallbackOutcome.REJECTED,
        reason="that is neither the callback URL nor a verifier",
    )
