"""OAuth 1.0a HMAC-SHA1 signing (RFC 5849), sent in the ``Authorization`` header only.

oauthlib's ``Client.sign`` re-validates and re-parses everything on every call
and costs more than the request it signs. This signer computes the same
signature base string (RFC 5849 section 3.4.1) and HMAC (section 3.4.2) with
the key and the encoded credentials prepared once; ``tests/test_signing.py``
proves its output equal to oauthlib's byte for byte, and the sandbox verifies
it with oauthlib's server-side endpoint.
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
        # Consumer key and token are pre-encoded; nonce and timestamp are safe characters.
        encoded = [(percent_encode(k), percent_encode(v)) for k, v in params]
        encoded += self._fixed_oauth
        encoded.append(("oauth_nonce", nonce))
        encoded.append(("oauth_timestamp", timestamp))
        header = self._fixed_header
        if extra_oauth:
            extra = [(name, _encode_once(value)) for name, value in extra_oauth]
            encoded += extra
            header += "".join(f', {k}="{v}"' for k, v in extra)
        encoded.sort()
        normalized = "&".join([k + "=" + v for k, v in encoded])
        # Encoding the normalised string: its parts are encoded already, so only the
        # '%', '=' and '&' in it need it (the same result as percent_encode, without
        # a per-character pass over a string that differs on every call).
        encoded_normalized = normalized.replace("%", "%25").replace("&", "%26").replace("=", "%3D")
        base_string = method.upper() + "&" + percent_encode(base_uri) + "&" + encoded_normalized
        mac = self._mac.copy()
        mac.update(base_string.encode())
        signature = binascii.b2a_base64(mac.digest(), newline=False).decode()
        # Base64 leaves '+', '/' and '=' to encode.
        encoded_signature = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        return (
            f'OAuth oauth_nonce="{nonce}", oauth_timestamp="{timestamp}"{header}, '
            f'oauth_signature="{encoded_signature}"'
        )
