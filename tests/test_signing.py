"""OAuth 1.0a signing: byte-identical to oauthlib, accepted by oauthlib's server side."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauthlib import oauth1

from uitpas_async.xml_api import protocol, signing
from uitpas_async.xml_api.models import Credentials
from uitpas_async.xml_api.signing import OAuthSigner, normalize_base_uri, percent_encode

TIMESTAMP = 1_444_204_440
NONCE = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PRICE_URL = "https://test.uitid.be/uitid/rest/uitpas/price"
REPORT_URL = "https://test.uitid.be/uitid/rest/uitpas/report/financialoverview/organiser"

Params = tuple[tuple[str, str], ...]


def fixed_signer(credentials: Credentials, nonce: str = NONCE) -> OAuthSigner:
    """Return a signer with a frozen clock and nonce."""
    return OAuthSigner(credentials, clock=lambda: TIMESTAMP + 0.75, nonce=lambda: nonce)


def oauthlib_header(
    credentials: Credentials,
    method: str,
    url: str,
    query: Params = (),
    form: Params | None = None,
    nonce: str = NONCE,
) -> str:
    """Return the Authorization header oauthlib's client computes for the same request."""
    client = oauth1.Client(
        credentials.consumer_key,
        client_secret=credentials.consumer_secret,
        resource_owner_key=credentials.token,
        resource_owner_secret=credentials.token_secret,
        nonce=nonce,
        timestamp=str(TIMESTAMP),
    )
    uri = url + ("?" + protocol.encode_query(query) if query else "")
    if form is None:
        _, headers, _ = client.sign(uri, method)
    else:
        body = protocol.encode_query(form)
        _, headers, _ = client.sign(uri, method, body=body, headers=dict(FORM))
    return str(headers["Authorization"])


def our_header(
    credentials: Credentials, method: str, url: str, query: Params = (), form: Params | None = None
) -> str:
    """Return our Authorization header for a request, signed with the fixed clock and nonce."""
    params = (*query, *(form or ()))
    return fixed_signer(credentials).authorization(method, normalize_base_uri(url), params)


# -- byte-identical to oauthlib --------------------------------------------------------

CASES = [
    (
        "GET",
        PRICE_URL,
        (
            ("balieConsumerKey", "8bd020fb-a55a-4d15-b71c-1a1632cb7f00"),
            ("uitpasNumber", "0934000185108"),
            ("reason", "FIRST_CARD"),
            ("dateOfBirth", "2010-01-01"),
        ),
        None,
    ),
    (
        "GET",
        f"{REPORT_URL}/19/status",
        (("balieConsumerKey", "57588868-EA2A-3A56-0AC173415A6D1BE7"),),
        None,
    ),
    ("GET", f"{REPORT_URL}/19/status", (), None),
    (
        "POST",
        REPORT_URL,
        (),
        (
            ("balieConsumerKey", "57588868-EA2A-3A56-0AC173415A6D1BE7"),
            ("startDate", "2014-08-01"),
            ("endDate", "2014-08-31"),
        ),
    ),
    (
        "POST",
        REPORT_URL,
        (("a", "1"),),
        (("a", "2"), ("b", "x y+z&w=v~%"), ("ü", "é")),
    ),
    ("GET", "https://TEST.uitid.be:443/uitid/rest/uitpas/price", (("a", "b c"),), None),
    ("GET", "http://127.0.0.1:8080/uitid/rest/uitpas/price", (("q", "x"), ("q", "a")), None),
]


@pytest.mark.parametrize(
    ("method", "url", "query", "form"),
    CASES,
    ids=[
        "get-price",
        "get-status",
        "get-no-query",
        "post-create",
        "post-query-and-form",
        "get-default-port",
        "get-other-port-repeated-names",
    ],
)
def test_header_equals_oauthlib(
    credentials: Credentials, method: str, url: str, query: Params, form: Params | None
) -> None:
    """With a fixed nonce and timestamp, our header equals oauthlib's byte for byte."""
    expected = oauthlib_header(credentials, method, url, query, form)
    assert our_header(credentials, method, url, query, form) == expected


def test_header_equals_oauthlib_for_awkward_credentials() -> None:
    """Keys and secrets with spaces, reserved and non-ASCII characters sign the same."""
    credentials = Credentials("key with space+&=", "s€cret/?#", "tøken~%", "sécret 2&")
    query = (("x", "1"),)
    expected = oauthlib_header(credentials, "GET", PRICE_URL, query)
    assert our_header(credentials, "GET", PRICE_URL, query) == expected


# Any text but lone surrogates, which no UTF-8 encoder (ours or oauthlib's) accepts;
# control characters, reserved and non-ASCII characters are all in.
SIGNABLE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        whitelist_characters=" +&=~%#?/;:@!$'()*,[]",
    ),
    max_size=12,
)
NAMES = SIGNABLE_TEXT.filter(lambda name: name != "" and not name.startswith("oauth_"))
PARAMS = st.lists(st.tuples(NAMES, SIGNABLE_TEXT), max_size=5).map(tuple)
SECRETS = SIGNABLE_TEXT


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=SIGNABLE_TEXT.filter(bool),
    secret=SECRETS,
    token=SIGNABLE_TEXT.filter(bool),
    token_secret=SECRETS,
    method=st.sampled_from(["GET", "POST"]),
    query=PARAMS,
    form=PARAMS,
)
def test_signature_equals_oauthlib_for_any_text(
    key: str, secret: str, token: str, token_secret: str, method: str, query: Params, form: Params
) -> None:
    """For random unicode credentials, names and values, our header equals oauthlib's."""
    credentials = Credentials(key, secret, token, token_secret)
    body = form if method == "POST" else None
    expected = oauthlib_header(credentials, method, PRICE_URL, query, body)
    assert our_header(credentials, method, PRICE_URL, query, body) == expected


def test_a_request_signed_again_equals_oauthlib_at_every_nonce(credentials: Credentials) -> None:
    """The same request signed at each poll (its base string kept) equals oauthlib each time."""
    query = (("balieConsumerKey", "57588868-EA2A-3A56-0AC173415A6D1BE7"),)
    url = f"{REPORT_URL}/19/status"
    for nonce in (NONCE, "0" * 32, "ffff"):
        expected = oauthlib_header(credentials, "GET", url, query, nonce=nonce)
        signer = fixed_signer(credentials, nonce)
        assert signer.authorization("GET", normalize_base_uri(url), query) == expected


@pytest.mark.parametrize("name", ["oauth_nonce", "oauth_timestamp"])
@pytest.mark.parametrize("value", ["0", "zzzz", NONCE, str(TIMESTAMP)])
def test_a_parameter_named_like_the_nonce_or_timestamp_signs_as_oauthlib(
    credentials: Credentials, name: str, value: str
) -> None:
    """A parameter with the nonce's or timestamp's name sorts by value, as oauthlib sorts it."""
    query = ((name, value), ("a", "b"))
    assert our_header(credentials, "GET", PRICE_URL, query) == oauthlib_header(
        credentials, "GET", PRICE_URL, query
    )


@settings(max_examples=100, deadline=None)
@given(params=PARAMS, nonce=SIGNABLE_TEXT, timestamp=st.integers(-(10**12), 10**12))
def test_the_cut_base_string_filled_in_is_the_whole_one(
    params: Params, nonce: str, timestamp: int
) -> None:
    """Any nonce and timestamp put into the kept parts give the base string made whole."""
    protocol = (("oauth_consumer_key", "k"), ("oauth_version", "1.0"))
    parts = signing._cut_base_string("GET", "https://x/a", params, protocol)
    assert parts is not None
    head, middle, tail = parts
    whole = signing._base_string("GET", "https://x/a", params, protocol, nonce, str(timestamp))
    assert head + signing._encode_normalized(nonce) + middle + str(timestamp) + tail == whole


@pytest.mark.parametrize("nonce", ["a&b=c%d", "nonce-1", NONCE])
def test_a_kept_base_string_signs_as_the_whole_one_for_any_nonce(
    credentials: Credentials, nonce: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An injected nonce with '&', '=' or '%' signs the same from the kept parts as made whole."""
    query = (("balieConsumerKey", "K1"),)
    signer = fixed_signer(credentials, nonce)
    kept = signer.authorization("GET", normalize_base_uri(PRICE_URL), query)
    monkeypatch.setattr(signing, "_cached_cut_base_string", lambda *_: None)
    assert signer.authorization("GET", normalize_base_uri(PRICE_URL), query) == kept


def test_kept_base_strings_are_bounded_and_the_login_flow_keeps_none(
    credentials: Credentials,
) -> None:
    """The kept base strings never pass their bound; a verifier's signature keeps nothing."""
    signer = fixed_signer(credentials)
    base = normalize_base_uri(PRICE_URL)
    for number in range(signing.BASE_STRING_CACHE_SIZE + 10):
        signer.authorization("GET", base, (("uitpasNumber", str(number)),))
    info = signing._cached_cut_base_string.cache_info()
    assert info.currsize == info.maxsize == signing.BASE_STRING_CACHE_SIZE
    signer.authorization("POST", base, (), extra_oauth=(("oauth_verifier", "one-off"),))
    assert signing._cached_cut_base_string.cache_info() == info


# -- verified by oauthlib's server side ------------------------------------------------


class PermissiveValidator(oauth1.RequestValidator):  # type: ignore[misc]
    """Knows one consumer and token; lets every check pass except the signature."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self.credentials = credentials

    enforce_ssl = False
    # The fixed test timestamp is years old; the signature is what is being tested.
    timestamp_lifetime = 10**10
    dummy_client = "dummy-consumer"
    dummy_access_token = "dummy-token"

    def check_client_key(self, client_key: str) -> bool:
        """Accept any key shape."""
        return True

    def check_access_token(self, request_token: str) -> bool:
        """Accept any token shape."""
        return True

    def check_nonce(self, nonce: str) -> bool:
        """Accept any nonce shape."""
        return True

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        """Accept the one consumer."""
        return client_key == self.credentials.consumer_key

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        """Accept the one token."""
        return token == self.credentials.token

    def validate_timestamp_and_nonce(self, *args: Any, **kwargs: Any) -> bool:
        """Accept every timestamp and nonce."""
        return True

    def validate_realms(self, *args: Any, **kwargs: Any) -> bool:
        """Realms play no part."""
        return True

    def get_client_secret(self, client_key: str, request: Any) -> str:
        """Return the consumer secret."""
        return self.credentials.consumer_secret

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        """Return the token secret."""
        return self.credentials.token_secret


def verify(
    credentials: Credentials, method: str, uri: str, body: str | None, headers: dict[str, str]
) -> bool:
    """Return whether oauthlib's server-side endpoint accepts a request."""
    endpoint = oauth1.SignatureOnlyEndpoint(PermissiveValidator(credentials))
    valid, _ = endpoint.validate_request(uri, http_method=method, body=body, headers=headers)
    return bool(valid)


def signed_get(credentials: Credentials) -> tuple[str, dict[str, str]]:
    """Sign a price GET the way the client does; return its URL and headers."""
    query = (("uitpasNumber", "0934 000+185"), ("reason", "FIRST_CARD"), ("naam", "Jürgen"))
    uri = PRICE_URL + "?" + protocol.encode_query(query)
    header = fixed_signer(credentials).authorization("GET", normalize_base_uri(PRICE_URL), query)
    return uri, {"Authorization": header}


def signed_post(credentials: Credentials) -> tuple[str, dict[str, str]]:
    """Sign a create POST the way the client does; return its form body and headers."""
    form = (("balieConsumerKey", "k 1"), ("startDate", "2014-08-01"), ("endDate", "2014-08-31"))
    header = fixed_signer(credentials).authorization("POST", normalize_base_uri(REPORT_URL), form)
    return protocol.encode_query(form), {"Authorization": header, **FORM}


def test_oauthlib_server_accepts_a_signed_get(credentials: Credentials) -> None:
    """oauthlib's server side accepts our signed GET with its query."""
    uri, headers = signed_get(credentials)
    assert verify(credentials, "GET", uri, None, headers)


def test_oauthlib_server_accepts_a_signed_post(credentials: Credentials) -> None:
    """oauthlib's server side accepts our signed POST with its form body."""
    body, headers = signed_post(credentials)
    assert verify(credentials, "POST", REPORT_URL, body, headers)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda uri: uri.replace("FIRST_CARD", "EXTRA_CARD"),
        lambda uri: uri + "&extra=1",
        lambda uri: uri.split("?")[0],
        lambda uri: uri.replace("/uitid/rest", ""),
    ],
    ids=["changed-value", "added-parameter", "dropped-query", "dropped-prefix-path"],
)
def test_oauthlib_server_refuses_a_tampered_query(credentials: Credentials, tamper: Any) -> None:
    """Changing the query or path after signing breaks the signature."""
    uri, headers = signed_get(credentials)
    assert not verify(credentials, "GET", tamper(uri), None, headers)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body: body.replace("2014-08-31", "2015-08-31"),
        lambda body: body + "&extra=1",
        lambda body: body.replace("k%201", "k%202"),
    ],
    ids=["changed-date", "added-parameter", "changed-balie"],
)
def test_oauthlib_server_refuses_a_tampered_body(credentials: Credentials, tamper: Any) -> None:
    """Changing the form body after signing breaks the signature."""
    body, headers = signed_post(credentials)
    assert not verify(credentials, "POST", REPORT_URL, tamper(body), headers)


def test_oauthlib_server_refuses_a_wrong_secret(credentials: Credentials) -> None:
    """A request signed with another token secret is refused."""
    uri, headers = signed_get(
        Credentials(credentials.consumer_key, credentials.consumer_secret, credentials.token, "x")
    )
    assert not verify(credentials, "GET", uri, None, headers)


# -- nonces, secrets and base URIs -----------------------------------------------------


def test_every_authorization_has_a_fresh_nonce(credentials: Credentials) -> None:
    """Two signatures of the same request at the same second differ by their nonce."""
    signer = OAuthSigner(credentials, clock=lambda: TIMESTAMP)
    base = normalize_base_uri(PRICE_URL)
    headers = {signer.authorization("GET", base, [("a", "b")]) for _ in range(20)}
    assert len(headers) == 20


def test_injected_nonce_and_clock_are_used(credentials: Credentials) -> None:
    """The header carries the injected nonce and the clock's whole seconds."""
    nonces = (f"nonce{i}" for i in itertools.count())
    signer = OAuthSigner(credentials, clock=lambda: TIMESTAMP + 0.99, nonce=lambda: next(nonces))
    first = signer.authorization("GET", normalize_base_uri(PRICE_URL), [])
    second = signer.authorization("GET", normalize_base_uri(PRICE_URL), [])
    assert 'oauth_nonce="nonce0"' in first
    assert 'oauth_nonce="nonce1"' in second
    assert f'oauth_timestamp="{TIMESTAMP}"' in first
    assert 'oauth_signature_method="HMAC-SHA1"' in first
    assert 'oauth_version="1.0"' in first


def test_secrets_never_appear_in_reprs_or_headers(credentials: Credentials) -> None:
    """Neither secret shows in the signer's or the credentials' repr/str, nor in a header."""
    signer = OAuthSigner(credentials)
    header = signer.authorization("GET", normalize_base_uri(PRICE_URL), [])
    for text in (repr(signer), str(signer), repr(credentials), str(credentials), header):
        assert credentials.consumer_secret not in text
        assert credentials.token_secret not in text
        assert percent_encode(credentials.consumer_secret) not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://TEST.UITID.BE/uitid/rest/X", "https://test.uitid.be/uitid/rest/X"),
        ("https://test.uitid.be:443/uitid/rest", "https://test.uitid.be/uitid/rest"),
        ("http://test.uitid.be:80/uitid/rest", "http://test.uitid.be/uitid/rest"),
        ("http://127.0.0.1:8080/uitid/rest", "http://127.0.0.1:8080/uitid/rest"),
        ("https://test.uitid.be:80/a", "https://test.uitid.be:80/a"),
        ("http://test.uitid.be:443/a", "http://test.uitid.be:443/a"),
        ("https://test.uitid.be/uitpas/price?x=1&y=2", "https://test.uitid.be/uitpas/price"),
        ("https://test.uitid.be/a#fragment", "https://test.uitid.be/a"),
        ("https://test.uitid.be", "https://test.uitid.be/"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
    ],
    ids=[
        "upper-case-scheme-host",
        "https-default-port",
        "http-default-port",
        "non-default-port",
        "http-port-on-https",
        "https-port-on-http",
        "query-dropped",
        "fragment-dropped",
        "empty-path",
        "ipv6",
    ],
)
def test_normalize_base_uri(url: str, expected: str) -> None:
    """The base string URI is lower-cased, without default port, query or fragment."""
    assert normalize_base_uri(url) == expected


def test_path_case_is_kept() -> None:
    """Only scheme and host are case-insensitive; the path keeps its case."""
    assert normalize_base_uri("https://X.BE/Uitid/Rest") == "https://x.be/Uitid/Rest"
