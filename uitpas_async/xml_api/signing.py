"""OAuth 1.0a HMAC-SHA1 signing (RFC 5849), sent in the ``Authorization`` header only.

oauthlib's ``Client.sign`` re-validates and re-parses everything on every call
and costs more than the request it signs. This signer computes the same
signature base string (RFC 5849 section 3.4.1) and HMAC (section 3.4.2) with
the key and the encoded credentials prepared once, and each request's base
string kept (bounded), cut around its nonce and timestamp, for its next send;
``tests/test_signing.py`` proves its output equal to oauthlib's byte for byte,
and the sandbox verifies it with oauthlib's server-side endpoint.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote, urlsplit, urlunsplit

from uitpas_async.xml_api.models import Credentials

__all__ = ["OAuthSigner", "normalize_base_uri", "percent_encode"]

SIGNATURE_METHOD = "HMAC-SHA1"
OAUTH_VERSION = "1.0"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Requests whose signature base string is kept, cut around its nonce and timestamp
#: (least recently used go): a polled report signs the same request at every poll.
BASE_STRING_CACHE_SIZE = 1024
#: Where the nonce and the timestamp go in a cut base string: characters that every
#: encoded part of it has percent-encoded.
_NONCE_MARK, _TIMESTAMP_MARK = "\x00", "\x01"
#: The protocol parameters that differ on every request.
_FRESH_NAMES = frozenset({"oauth_nonce", "oauth_timestamp"})

#: Cuts a request's base string around its nonce and timestamp (or says it cannot).
_Cut = Callable[
    [str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]],
    tuple[str, str, str] | None,
]


def _encode_once(value: str) -> str:
    """Percent-encode like :func:`percent_encode`, for secrets and values that never recur.

    They stay out of the cache: a secret would otherwise live on in a
    process-wide table, and a one-off value would only evict the ones that recur.
    """
    return quote(value, safe="~")


@functools.lru_cache(maxsize=4096)
def percent_encode(value: str) -> str:
    """Percent-encode per RFC 5849 section 3.6 (RFC 3986 unreserved characters kept)."""
    # Cached: the same keys, dates and paths recur on every request of a batch.
    return _encode_once(value)


def normalize_base_uri(url: str) -> str:
    """Return the base string URI: scheme and host lower-cased, default port and query dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def _default_nonce() -> str:
    return secrets.token_hex(16)


class OAuthSigner:
    """Signs requests for one set of credentials; cheap enough to call on every attempt."""

    __slots__ = (
        "_clock",
        "_consumer_key",
        "_fixed_header",
        "_fixed_oauth",
        "_mac",
        "_nonce",
        "_token",
    )

    def __init__(
        self,
        credentials: Credentials,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = _default_nonce,
    ) -> None:
        # The consumer key and token as they appear in the header and base string.
        self._consumer_key = percent_encode(credentials.consumer_key)
        self._token = percent_encode(credentials.token)
        # The HMAC key (section 3.4.2): encoded secrets joined by '&'. Never shown. The
        # keyed state is made once and copied per signature (OpenSSL's key setup is
        # a fifth of an HMAC of a request).
        key = (
            _encode_once(credentials.consumer_secret) + "&" + _encode_once(credentials.token_secret)
        ).encode()
        self._mac = hmac.new(key, digestmod=hashlib.sha1)
        # The protocol parameters that are the same on every request, already encoded,
        # and their part of the header (after the nonce and timestamp).
        fixed: tuple[tuple[str, str], ...] = (
            ("oauth_version", OAUTH_VERSION),
            ("oauth_signature_method", SIGNATURE_METHOD),
            ("oauth_consumer_key", self._consumer_key),
        )
        if self._token:
            fixed += (("oauth_token", self._token),)
        self._fixed_oauth = fixed
        self._fixed_header = "".join(f', {k}="{v}"' for k, v in fixed)
        # Wall clock for oauth_timestamp and the nonce source, injectable for tests.
        self._clock = clock
        self._nonce = nonce

    def __repr__(self) -> str:
        return "OAuthSigner(<credentials hidden>)"

    def authorization(
        self,
        method: str,
        base_uri: str,
        params: Iterable[tuple[str, str]],
        *,
        extra_oauth: Iterable[tuple[str, str]] = (),
    ) -> str:
        """Return the ``Authorization`` header value for one request.

        ``base_uri`` must already be normalised (:func:`normalize_base_uri`);
        ``params`` are the query and form parameters, decoded. ``extra_oauth``
        adds protocol parameters of the login flow (``oauth_callback``,
        ``oauth_verifier``), decoded; they are signed and sent in the header.
        Credentials with an empty token (the consumer alone, for a request
        token) send no ``oauth_token`` at all.
        """
        nonce = self._nonce()
        timestamp = str(int(self._clock()))
        # A request's base string is the same at every send but for the nonce and the
        # timestamp, so it is kept cut around them; only they and the HMAC are per send.
        protocol = self._fixed_oauth
        header = self._fixed_header
        cut: _Cut = _cached_cut_base_string
        if extra_oauth:
            extra = tuple((name, _encode_once(value)) for name, value in extra_oauth)
            protocol += extra
            header += "".join(f', {k}="{v}"' for k, v in extra)
            cut = _cut_base_string  # the login flow's values are one-off, and one is secret
        parts = cut(method, base_uri, tuple(params), protocol)
        if parts is None:
            base_string = _base_string(method, base_uri, params, protocol, nonce, timestamp)
        else:
            head, middle, tail = parts
            base_string = head + _encode_normalized(nonce) + middle + timestamp + tail
        mac = self._mac.copy()
        mac.update(base_string.encode())
        signature = binascii.b2a_base64(mac.digest(), newline=False).decode()
        # Base64 leaves '+', '/' and '=' to encode.
        encoded_signature = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        return (
            f'OAuth oauth_nonce="{nonce}", oauth_timestamp="{timestamp}"{header}, '
            f'oauth_signature="{encoded_signature}"'
        )


def _encode_normalized(text: str) -> str:
    """Percent-encode text whose parts are encoded already: only '%', '&' and '=' are left.

    (The same result as :func:`percent_encode`, without a per-character pass over
    a string that differs on every call.)
    """
    return text.replace("%", "%25").replace("&", "%26").replace("=", "%3D")


def _base_string(
    method: str,
    base_uri: str,
    params: Iterable[tuple[str, str]],
    protocol: Iterable[tuple[str, str]],
    nonce: str,
    timestamp: str,
) -> str:
    """Return the signature base string of a request (RFC 5849 section 3.4.1).

    ``params`` are decoded; ``protocol`` (all but the nonce and timestamp) is
    encoded already, and the nonce and timestamp are safe characters.
    """
    encoded = [(percent_encode(k), percent_encode(v)) for k, v in params]
    encoded += protocol
    encoded.append(("oauth_nonce", nonce))
    encoded.append(("oauth_timestamp", timestamp))
    encoded.sort()
    normalized = "&".join([k + "=" + v for k, v in encoded])
    return method.upper() + "&" + percent_encode(base_uri) + "&" + _encode_normalized(normalized)


def _cut_base_string(
    method: str,
    base_uri: str,
    params: tuple[tuple[str, str], ...],
    protocol: tuple[tuple[str, str], ...],
) -> tuple[str, str, str] | None:
    """Return a request's base string in the three parts around its nonce and timestamp.

    None when a parameter has the nonce's or the timestamp's name: then their
    values decide where they sort, and the base string is made whole each time.
    """
    if any(name in _FRESH_NAMES for name, _ in (*params, *protocol)):
        return None
    whole = _base_string(method, base_uri, params, protocol, _NONCE_MARK, _TIMESTAMP_MARK)
    head, _, rest = whole.partition(_NONCE_MARK)
    middle, _, tail = rest.partition(_TIMESTAMP_MARK)
    return head, middle, tail


_cached_cut_base_string = functools.lru_cache(maxsize=BASE_STRING_CACHE_SIZE)(_cut_base_string)
