"""Server-side OAuth 1.0a verification with oauthlib, plus a bounded nonce memory.

One validator serves all three kinds of signed request: API calls (consumer
plus access token), ``requestToken`` (consumer alone, with ``oauth_callback``)
and ``accessToken`` (consumer plus request token, with ``oauth_verifier``).
Every one gets the same signature, timestamp and nonce checks.

culturefeed-php, publiq's own client, sends each GET's ``oauth_*`` parameters
twice: in the query and in the ``Authorization`` header, with equal values. The
real server accepts that, so the sandbox does too: query copies equal to the
header's are dropped before oauthlib (which allows one location only) checks the
signature, and a query copy that differs is refused. Refusals are named in OAuth
problem-reporting form (``parameter_absent``, ``signature_invalid``, ...) and
logged at debug level with the reason.
"""

from __future__ import annotations

import heapq
import logging
import string
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)
from oauthlib.oauth1.rfc5849.errors import OAuth1Error
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

from uitpas_async.xml_api.models import Credentials
from uitpas_async.xml_api.sandbox.tokens import TokenRegistry

__all__ = ["NonceMemory", "OAuthVerifier", "SandboxValidator"]

#: Characters allowed in keys, tokens and nonces: oauthlib's default set plus "-" and "_",
#: because real UiTiD keys and tokens are dashed UUIDs.
_SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.")
#: Generous length bounds: oauthlib's default (20, 30) refuses a 36-character UUID.
_KEY_LENGTH = (1, 128)
#: oauthlib checks timestamps with time.time() itself; we switch that off with a huge
#: lifetime and check against the injected wall clock in validate_timestamp_and_nonce.
_UNBOUNDED_LIFETIME = 10**10

# Short problem names, in the style of the OAuth Problem Reporting extension
# that Java OAuth servers put in their plain-text 401 bodies.
PROBLEM_PARAMETER = "parameter_rejected"
PROBLEM_ABSENT = "parameter_absent"
PROBLEM_TIMESTAMP = "timestamp_refused"
PROBLEM_NONCE = "nonce_used"
PROBLEM_CONSUMER = "consumer_key_unknown"
PROBLEM_TOKEN = "token_rejected"  # noqa: S105 (a problem name, not a secret)
PROBLEM_SIGNATURE = "signature_invalid"
PROBLEM_CALLBACK = "parameter_rejected"


logger = logging.getLogger(__name__)
#: What every signed API call must carry.
_REQUIRED = frozenset(
    {
        "oauth_consumer_key",
        "oauth_nonce",
        "oauth_signature",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_token",
    }
)


def _header_oauth(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the ``oauth_*`` parameters of an ``Authorization: OAuth`` header (may be empty)."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not value.lower().startswith("oauth "):
        return {}
    try:
        pairs = parse_authorization_header(value)
    except (ValueError, TypeError):
        return {}
    # The header's values are percent-encoded (RFC 5849 3.5.1); the query's are decoded.
    return {key: unquote(val) for key, val in pairs if key.startswith("oauth_")}


def fold_query_copies(uri: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
    """Drop ``oauth_*`` query parameters that repeat the header's; return (uri, problem).

    The problem is ``parameter_rejected`` when a query copy differs from the header
    (or appears twice), and None otherwise.
    """
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    copies = [(key, value) for key, value in query if key.startswith("oauth_")]
    header = _header_oauth(headers)
    if not copies or not header:
        return uri, None
    keys = [key for key, _ in copies]
    if len(set(keys)) != len(keys) or any(header.get(key) != value for key, value in copies):
        return uri, PROBLEM_PARAMETER
    rest = [(key, value) for key, value in query if not key.startswith("oauth_")]
    return urlunsplit(parts._replace(query=urlencode(rest))), None


class NonceMemory:
    """Remembers (consumer, timestamp, nonce) triples until their timestamp goes stale."""

    __slots__ = ("_expiry", "_seen", "_window")

    def __init__(self, window: float) -> None:
        #: Seconds a timestamp stays acceptable; older triples can be forgotten safely.
        self._window = window
        #: Triples seen and not yet pruned.
        self._seen: set[tuple[str, int, str]] = set()
        #: Min-heap of (timestamp, triple) to prune in timestamp order.
        self._expiry: list[tuple[int, tuple[str, int, str]]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, consumer: str, timestamp: int, nonce: str, now: float) -> bool:
        """Record a triple; return False when it was already seen (a replay)."""
        self._prune(now)
        triple = (consumer, timestamp, nonce)
        if triple in self._seen:
            return False
        self._seen.add(triple)
        heapq.heappush(self._expiry, (timestamp, triple))
        return True

    def _prune(self, now: float) -> None:
        # A triple whose timestamp is outside the window would be refused as stale
        # anyway, so forgetting it cannot let a replay through.
        horizon = now - self._window
        while self._expiry and self._expiry[0][0] < horizon:
            _, triple = heapq.heappop(self._expiry)
            self._seen.discard(triple)


class SandboxValidator(RequestValidator):  # type: ignore[misc]
    """Accepts one consumer and the access tokens it holds; HMAC-SHA1 only, plain HTTP allowed."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        window: float,
        wall_clock: Callable[[], float],
        tokens: TokenRegistry,
    ) -> None:
        super().__init__()
        self._credentials = credentials
        self._window = window
        self._wall_clock = wall_clock
        self.nonces = NonceMemory(window)
        # Request tokens of the login flow and every access token that works.
        self.tokens = tokens

    # oauthlib reads these as properties; plain class attributes would do, but
    # properties keep mypy and oauthlib's own base class in agreement.
    @property
    def enforce_ssl(self) -> bool:
        """Allow plain HTTP: the sandbox listens on loopback."""
        return False

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        """Accept HMAC-SHA1 only, like the real API."""
        return ("HMAC-SHA1",)

    @property
    def safe_characters(self) -> frozenset[str]:
        """Allow the dashes of UUID keys and tokens."""
        return _SAFE_CHARACTERS

    @property
    def client_key_length(self) -> tuple[int, int]:
        """Allow UUID-length consumer keys."""
        return _KEY_LENGTH

    @property
    def access_token_length(self) -> tuple[int, int]:
        """Allow UUID-length tokens."""
        return _KEY_LENGTH

    @property
    def request_token_length(self) -> tuple[int, int]:
        """Allow the sandbox's own request tokens (and a real server's UUIDs)."""
        return _KEY_LENGTH

    @property
    def verifier_length(self) -> tuple[int, int]:
        """Allow any reasonable verifier, so a wrong one is refused by value, not by shape."""
        return _KEY_LENGTH

    @property
    def dummy_request_token(self) -> str:
        """Stand-in request token so unknown tokens cost the same work as known ones."""
        return "dummy-request-token"

    @property
    def nonce_length(self) -> tuple[int, int]:
        """Allow any reasonable nonce (clients use 30 to 40 characters)."""
        return _KEY_LENGTH

    @property
    def timestamp_lifetime(self) -> int:
        """Disable oauthlib's own time.time() check; see validate_timestamp_and_nonce."""
        return _UNBOUNDED_LIFETIME

    @property
    def dummy_client(self) -> str:
        """Stand-in consumer so unknown keys cost the same work as known ones."""
        return "dummy-consumer"

    @property
    def dummy_access_token(self) -> str:
        """Stand-in token so unknown tokens cost the same work as known ones."""
        return "dummy-token"

    def get_client_secret(self, client_key: str, request: Any) -> str:
        """Return the consumer secret (a dummy one for an unknown consumer)."""
        if client_key == self._credentials.consumer_key:
            return self._credentials.consumer_secret
        return "dummy-secret"

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        """Return the token secret (a dummy one for an unknown token)."""
        return self.tokens.access_token_secret(token) or "dummy-secret"

    def get_request_token_secret(self, client_key: str, token: str, request: Any) -> str:
        """Return a request token's secret (a dummy one for an unknown token)."""
        return self.tokens.request_token_secret(token) or "dummy-secret"

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        """Accept only the sandbox consumer."""
        ok = client_key == self._credentials.consumer_key
        if not ok:
            request.sandbox_problem = PROBLEM_CONSUMER
        return ok

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        """Accept the built-in access token and those issued by the login flow."""
        ok = self.tokens.access_token_secret(token) is not None
        if not ok and not getattr(request, "sandbox_problem", None):
            request.sandbox_problem = PROBLEM_TOKEN
        return ok

    def validate_realms(self, *args: Any, **kwargs: Any) -> bool:
        """Realms play no part in this API."""
        return True

    def get_default_realms(self, client_key: str, request: Any) -> list[str]:
        """Realms play no part in this API."""
        return []

    def validate_requested_realms(self, *args: Any, **kwargs: Any) -> bool:
        """Realms play no part in this API."""
        return True

    def validate_redirect_uri(self, client_key: str, redirect_uri: str, request: Any) -> bool:
        """Accept any absolute http(s) callback: a CLI's loopback listener or a web app."""
        ok = redirect_uri.startswith(("http://", "https://"))
        if not ok and not getattr(request, "sandbox_problem", None):
            request.sandbox_problem = PROBLEM_CALLBACK
        return ok

    def validate_request_token(self, client_key: str, token: str, request: Any) -> bool:
        """Accept a request token the sandbox issued (its state is judged with the verifier)."""
        ok = self.tokens.request_token_secret(token) is not None
        if not ok and not getattr(request, "sandbox_problem", None):
            request.sandbox_problem = PROBLEM_TOKEN
        return ok

    def validate_verifier(self, client_key: str, token: str, verifier: str, request: Any) -> bool:
        """Accept an allowed, live, unspent request token with its own verifier."""
        problem = self.tokens.exchange_problem(token, verifier)
        if problem is not None and not getattr(request, "sandbox_problem", None):
            request.sandbox_problem = problem
        return problem is None

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: Any,
        request_token: str | None = None,
        access_token: str | None = None,
    ) -> bool:
        """Refuse stale or future timestamps and replayed nonces."""
        now = self._wall_clock()
        stamp = int(timestamp)  # oauthlib already checked it is ten digits
        if abs(now - stamp) > self._window:
            request.sandbox_problem = PROBLEM_TIMESTAMP
            return False
        if not self.nonces.remember(client_key, stamp, nonce, now):
            request.sandbox_problem = PROBLEM_NONCE
            return False
        return True


class OAuthVerifier:
    """Checks the OAuth 1.0a signature of one request; returns a problem name or None."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        window: float,
        wall_clock: Callable[[], float],
        tokens: TokenRegistry,
    ) -> None:
        self.validator = SandboxValidator(
            credentials, window=window, wall_clock=wall_clock, tokens=tokens
        )
        self._endpoint = ResourceEndpoint(self.validator)
        self._request_tokens = RequestTokenEndpoint(self.validator)
        self._access_tokens = AccessTokenEndpoint(self.validator)

    def verify(self, method: str, uri: str, body: str, headers: Mapping[str, str]) -> str | None:
        """Return None when the request is properly signed, else a short problem name."""
        uri, problem = fold_query_copies(uri, headers)
        if problem is not None:
            logger.debug("refused %s: an oauth_* query copy differs from the header", method)
            return problem
        query = {key for key, _ in parse_qsl(urlsplit(uri).query, keep_blank_values=True)}
        form = {key for key, _ in parse_qsl(body, keep_blank_values=True)}
        given = set(_header_oauth(headers)) | query | form
        absent = sorted(_REQUIRED - given)
        if absent:
            logger.debug("refused %s: %s absent", method, ", ".join(absent))
            return PROBLEM_ABSENT
        valid, request = self._endpoint.validate_protected_resource_request(
            uri, http_method=method, body=body, headers=dict(headers)
        )
        if valid:
            return None
        problem = self._problem(request)
        logger.debug("refused %s: %s", method, problem)
        return problem

    def verify_request_token_request(
        self, method: str, uri: str, body: str, headers: Mapping[str, str]
    ) -> tuple[str | None, str]:
        """Check a ``requestToken`` call; return (problem or None, the callback URL)."""
        endpoint = self._request_tokens
        try:
            request = endpoint._create_request(uri, method, body, dict(headers))
            valid, request = endpoint.validate_request_token_request(request)
        except OAuth1Error:
            return PROBLEM_PARAMETER, ""
        if not valid:
            return self._problem(request), ""
        return None, str(request.redirect_uri)

    def verify_access_token_request(
        self, method: str, uri: str, body: str, headers: Mapping[str, str]
    ) -> tuple[str | None, str]:
        """Check an ``accessToken`` call; return (problem or None, the request token)."""
        endpoint = self._access_tokens
        try:
            request = endpoint._create_request(uri, method, body, dict(headers))
            valid, request = endpoint.validate_access_token_request(request)
        except OAuth1Error:
            return PROBLEM_PARAMETER, ""
        if not valid:
            return self._problem(request), ""
        return None, str(request.resource_owner_key)

    @staticmethod
    def _problem(request: Any) -> str:
        if request is None:
            return PROBLEM_PARAMETER
        problem = getattr(request, "sandbox_problem", None)
        if problem:
            return str(problem)
        if request.validator_log.get("signature") is False:
            return PROBLEM_SIGNATURE
        return PROBLEM_PARAMETER
