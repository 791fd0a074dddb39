"""The sandbox's OAuth tokens: request tokens awaiting a decision, and issued access tokens.

Free of HTTP, like :mod:`.state`. A request token lives ``request_token_lifetime``
server seconds; the user allows or denies it on the authorize page; allowing
gives a verifier, which can be exchanged exactly once for an access token.
"""

from __future__ import annotations

import enum
import hmac
import secrets
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import attrs

from uitpas_async.xml_api.models import Credentials

__all__ = [
    "PROBLEM_DENIED",
    "PROBLEM_EXPIRED",
    "PROBLEM_PENDING",
    "PROBLEM_UNKNOWN",
    "PROBLEM_USED",
    "PROBLEM_VERIFIER",
    "Decision",
    "PendingToken",
    "TokenRegistry",
]

# OAuth Problem Reporting names for what can go wrong with a request token.
PROBLEM_EXPIRED = "token_expired"
PROBLEM_USED = "token_used"
PROBLEM_UNKNOWN = "token_rejected"
PROBLEM_DENIED = "permission_denied"
#: Exchanged before the user decided.
PROBLEM_PENDING = "permission_unknown"
PROBLEM_VERIFIER = "verifier_invalid"

#: Request tokens (live or expired) the registry remembers at most; the oldest go first.
_MAX_PENDING = 10_000


def _new_token() -> str:
    # URL-safe base64: letters, digits, "-" and "_", all in the validator's safe set.
    return secrets.token_urlsafe(24)


class Decision(enum.Enum):
    """Where a request token stands."""

    PENDING = "pending"
    ALLOWED = "allowed"
    DENIED = "denied"
    #: Exchanged for an access token; the verifier is spent.
    USED = "used"


@attrs.define
class PendingToken:
    """A request token and what became of it (mutable: the user decides, the client exchanges)."""

    token: str
    secret: str = attrs.field(repr=False)
    callback: str
    #: Server monotonic clock at issue.
    issued_at: float
    decision: Decision = Decision.PENDING
    verifier: str | None = attrs.field(default=None, repr=False)


class TokenRegistry:
    """Issues request tokens and access tokens; the API accepts every access token issued here."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        lifetime: float,
        clock: Callable[[], float],
        token_factory: Callable[[], str] = _new_token,
    ) -> None:
        # The consumer allowed to log in, and its ready-made access token (always valid).
        self._credentials = credentials
        # Server seconds a request token may wait for its exchange.
        self._lifetime = lifetime
        self._clock = clock
        self._new_token = token_factory
        # Request tokens by token, oldest first.
        self._pending: dict[str, PendingToken] = {}
        # Access token -> token secret, the built-in one included.
        self._access: dict[str, str] = {credentials.token: credentials.token_secret}
        #: Counters for tests.
        self.request_tokens_issued = 0
        self.access_tokens_issued = 0

    def issue_request_token(self, callback: str) -> PendingToken:
        """Create a request token whose authorization returns to ``callback``."""
        while len(self._pending) >= _MAX_PENDING:
            del self._pending[next(iter(self._pending))]
        pending = PendingToken(self._new_token(), self._new_token(), callback, self._clock())
        self._pending[pending.token] = pending
        self.request_tokens_issued += 1
        return pending

    def issued(self) -> list[PendingToken]:
        """Return the request tokens remembered, oldest first (for tests)."""
        return list(self._pending.values())

    def find(self, token: str) -> PendingToken | None:
        """Return the request token, or None when it was never issued."""
        return self._pending.get(token)

    def expired(self, pending: PendingToken) -> bool:
        """Say whether a request token is past its lifetime."""
        return self._clock() - pending.issued_at > self._lifetime

    def problem(self, token: str) -> str | None:
        """Return why a request token cannot be authorized now, or None when it can."""
        pending = self._pending.get(token)
        if pending is None:
            return PROBLEM_UNKNOWN
        if pending.decision is Decision.USED:
            return PROBLEM_USED
        if pending.decision is not Decision.PENDING:
            return PROBLEM_DENIED if pending.decision is Decision.DENIED else PROBLEM_USED
        if self.expired(pending):
            return PROBLEM_EXPIRED
        return None

    def decide(self, token: str, *, allow: bool) -> str:
        """Record the user's decision on a pending, live token; return the callback URL to visit.

        Raises:
            KeyError: the token cannot be decided on (check :meth:`problem` first).
        """
        if self.problem(token) is not None:
            raise KeyError(token)
        pending = self._pending[token]
        if allow:
            pending.decision = Decision.ALLOWED
            pending.verifier = self._new_token()
            query = [("oauth_token", token), ("oauth_verifier", pending.verifier)]
        else:
            pending.decision = Decision.DENIED
            query = [("oauth_token", token), ("oauth_problem", PROBLEM_DENIED)]
        parts = urlsplit(pending.callback)
        joined = f"{parts.query}&{urlencode(query)}" if parts.query else urlencode(query)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))

    def exchange_problem(self, token: str, verifier: str) -> str | None:
        """Return why a request token and verifier cannot be exchanged, or None when they can."""
        pending = self._pending.get(token)
        if pending is None:
            return PROBLEM_UNKNOWN
        if pending.decision is Decision.USED:
            return PROBLEM_USED
        if pending.decision is Decision.DENIED:
            return PROBLEM_DENIED
        if self.expired(pending):
            return PROBLEM_EXPIRED
        if pending.decision is Decision.PENDING:
            return PROBLEM_PENDING
        if pending.verifier is None or not hmac.compare_digest(
            pending.verifier.encode(), verifier.encode()
        ):
            return PROBLEM_VERIFIER
        return None

    def request_token_secret(self, token: str) -> str | None:
        """Return a request token's secret, or None for an unknown token."""
        pending = self._pending.get(token)
        return pending.secret if pending is not None else None

    def issue_access_token(self, token: str) -> tuple[str, str]:
        """Spend an exchangeable request token; return a new access token and its secret."""
        pending = self._pending[token]
        pending.decision = Decision.USED  # the verifier is spent with it
        access, secret = self._new_token(), self._new_token()
        self._access[access] = secret
        self.access_tokens_issued += 1
        return access, secret

    def access_token_secret(self, token: str) -> str | None:
        """Return an access token's secret, or None when the sandbox never issued it."""
        return self._access.get(token)
