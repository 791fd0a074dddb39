"""The login flow's pure layer: building token calls, reading answers and callbacks, signing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from oauthlib.oauth1 import SIGNATURE_TYPE_AUTH_HEADER, Client

from uitpas_async.errors import (
    AuthenticationError,
    AuthorizationDeniedError,
    HttpStatusError,
    InvalidArgumentError,
    LoginError,
    MalformedResponseError,
    RateLimitedError,
    RequestTokenExpiredError,
    ServerError,
    UitpasError,
    VerifierRejectedError,
)
from uitpas_async.xml_api.login_protocol import (
    AccessToken,
    CallbackOutcome,
    RequestToken,
    authorize_url,
    build_access_token,
    build_request_token,
    check_token_answer,
    parse_access_token,
    parse_request_token,
    read_callback,
)
from uitpas_async.xml_api.models import Consumer
from uitpas_async.xml_api.signing import OAuthSigner, normalize_base_uri

BASE = "https://test.uitid.be/uitid/rest"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TEXT = {"Content-Type": "text/plain"}


def test_request_token_call_carries_the_callback_for_the_header() -> None:
    """Step 1 is a POST to /requestToken whose oauth_callback is signed, not in the form."""
    call = build_request_token("http://127.0.0.1:5000/callback")
    assert (call.request.method, call.request.path) == ("POST", "/requestToken")
    assert call.request.form is None
    assert call.request.query == ()
    assert call.oauth == (("oauth_callback", "http://127.0.0.1:5000/callback"),)
    assert not call.request.idempotent


@pytest.mark.parametrize("callback", ["", "oob", "/callback", "ftp://host/x"])
def test_request_token_refuses_a_callback_that_is_not_an_http_url(callback: str) -> None:
    """A callback must be an absolute http(s) URL."""
    with pytest.raises(InvalidArgumentError):
        build_request_token(callback)


def test_access_token_call_carries_the_verifier() -> None:
    """Step 3 is a POST to /accessToken with oauth_verifier; an empty verifier is refused."""
    call = build_access_token("v-123")
    assert (call.request.method, call.request.path) == ("POST", "/accessToken")
    assert call.oauth == (("oauth_verifier", "v-123"),)
    with pytest.raises(InvalidArgumentError):
        build_access_token(" ")


def test_authorize_url_appends_to_the_prefix_with_its_options() -> None:
    """Step 2's URL keeps the prefix's path and encodes the optional parameters."""
    url = authorize_url(
        BASE,
        RequestToken("tok/+=", "secret"),
        type="forcelogin",
        lang="nl",
        skip_authorization=True,
        email="a+b@example.org",
    )
    parts = urlsplit(url)
    assert parts.path == "/uitid/rest/auth/authorize"
    assert parse_qs(parts.query) == {
        "oauth_token": ["tok/+="],
        "type": ["forcelogin"],
        "lang": ["nl"],
        "skipAuthorization": ["true"],
        "email": ["a+b@example.org"],
    }
    assert authorize_url(BASE + "/", "abc") == BASE + "/auth/authorize?oauth_token=abc"


@pytest.mark.parametrize(
    "options", [{"type": "admin"}, {"lang": "es"}], ids=["unknown type", "unknown lang"]
)
def test_authorize_url_refuses_unknown_options(options: dict[str, str]) -> None:
    """Only the documented type and lang values are accepted."""
    with pytest.raises(InvalidArgumentError):
        authorize_url(BASE, "abc", **options)  # type: ignore[arg-type]


def test_request_token_answer_is_parsed() -> None:
    """A form-encoded answer becomes a RequestToken whose repr hides the secret."""
    body = b"oauth_token=rt-1&oauth_token_secret=rts-SECRET&oauth_callback_confirmed=true"
    token = parse_request_token(200, FORM, body)
    assert (token.token, token.secret, token.callback_confirmed) == ("rt-1", "rts-SECRET", True)
    assert "rts-SECRET" not in repr(token)
    assert "rts-SECRET" not in str(token)


def test_access_token_answer_is_parsed() -> None:
    """The access token answer carries the user id; the repr hides the secret."""
    body = b"userId=u-42&oauth_token=at-1&oauth_token_secret=ats-SECRET"
    access = parse_access_token(200, FORM, body)
    assert access == AccessToken("at-1", "ats-SECRET", "u-42")
    assert "ats-SECRET" not in repr(access)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b"oauth_problem=permission_denied", AuthorizationDeniedError),
        (401, b"oauth_problem=user_refused", AuthorizationDeniedError),
        (401, b"oauth_problem=verifier_invalid\n", VerifierRejectedError),
        (401, b"oauth_problem=token_used", VerifierRejectedError),
        (401, b"oauth_problem=token_expired&oauth_problem_advice=x", RequestTokenExpiredError),
        (401, b"oauth_problem=signature_invalid", AuthenticationError),
        (400, b"oauth_problem=parameter_rejected", AuthenticationError),
        (401, b"", AuthenticationError),
        (400, b"error=invalid_request&error_description=Missing+verifier", HttpStatusError),
        (429, b"", RateLimitedError),
        (503, b"", ServerError),
        (200, b"<html>login</html>", MalformedResponseError),
        (200, b"oauth_token=only-the-token", MalformedResponseError),
        (200, b"", MalformedResponseError),
        (200, b"x=" + b"a" * 20_000, MalformedResponseError),
    ],
)
def test_token_answers_become_typed_errors(
    status: int, body: bytes, error: type[UitpasError]
) -> None:
    """Every refusal maps to one class of the exception tree."""
    with pytest.raises(error) as caught:
        check_token_answer(status, TEXT, body, endpoint="oauth.accessToken")
    assert type(caught.value) is error


def test_login_errors_carry_the_problem_and_no_body() -> None:
    """A login error names its oauth_problem and never echoes the answer."""
    with pytest.raises(LoginError) as caught:
        check_token_answer(
            401, TEXT, b"oauth_problem=token_expired&secret=LEAK", endpoint="oauth.accessToken"
        )
    assert caught.value.problem == "token_expired"
    assert "LEAK" not in str(caught.value)
    assert "LEAK" not in repr(caught.value)


def test_a_malformed_success_never_quotes_the_secret() -> None:
    """A success without oauth_token names the missing field, not the values it got."""
    with pytest.raises(MalformedResponseError) as caught:
        check_token_answer(200, FORM, b"oauth_token_secret=SECRET-x", endpoint="oauth.requestToken")
    assert "SECRET-x" not in str(caught.value)


@pytest.mark.parametrize(
    ("params", "outcome", "detail"),
    [
        ({"oauth_token": "RT", "oauth_verifier": "V"}, CallbackOutcome.VERIFIED, "V"),
        ({"oauth_token": "OTHER", "oauth_verifier": "V"}, CallbackOutcome.REJECTED, "not the"),
        ({"oauth_verifier": "V"}, CallbackOutcome.REJECTED, "no oauth_token"),
        ({"oauth_token": "RT"}, CallbackOutcome.REJECTED, "no oauth_verifier"),
        ({}, CallbackOutcome.REJECTED, "no oauth_token"),
        (
            {"oauth_token": "RT", "oauth_problem": "permission_denied"},
            CallbackOutcome.FAILED,
            "permission_denied",
        ),
        ({"denied": "RT"}, CallbackOutcome.FAILED, "permission_denied"),
        ({"denied": "OTHER"}, CallbackOutcome.REJECTED, "not the"),
        (
            {"oauth_token": "RT", "oauth_problem": "<script>"},
            CallbackOutcome.FAILED,
            "permission_denied",
        ),
    ],
)
def test_callbacks_are_judged_against_the_request_token(
    params: dict[str, str], outcome: CallbackOutcome, detail: str
) -> None:
    """Only the callback naming this login's request token can end the wait."""
    verdict = read_callback(params, "RT")
    assert verdict.outcome is outcome
    if outcome is CallbackOutcome.VERIFIED:
        assert verdict.verifier == detail
    elif outcome is CallbackOutcome.FAILED:
        assert verdict.problem == detail
    else:
        assert detail in verdict.reason


def _oauthlib_header(uri: str, **kwargs: str) -> str:
    client = Client(
        "consumer-key",
        client_secret="consumer-SECRET",
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        nonce="nonce-1",
        timestamp="1700000000",
        **kwargs,
    )
    _, headers, _ = client.sign(uri, http_method="POST")
    return str(headers["Authorization"])


def _params(header: str) -> dict[str, str]:
    items = header.removeprefix("OAuth ").split(", ")
    return dict(item.split("=", 1) for item in items)


@pytest.mark.parametrize(
    ("token", "extra", "oauthlib_kwargs"),
    [
        (
            ("", ""),
            (("oauth_callback", "http://127.0.0.1:5000/callback?x=1 2"),),
            {"callback_uri": "http://127.0.0.1:5000/callback?x=1 2"},
        ),
        (
            ("request-token", "request-SECRET"),
            (("oauth_verifier", "verifier-1/+"),),
            {
                "resource_owner_key": "request-token",
                "resource_owner_secret": "request-SECRET",
                "verifier": "verifier-1/+",
            },
        ),
    ],
    ids=["request token (no oauth_token)", "access token (with verifier)"],
)
def test_token_call_signatures_equal_oauthlibs(
    token: tuple[str, str], extra: tuple[tuple[str, str], ...], oauthlib_kwargs: dict[str, str]
) -> None:
    """The signer's header for the token calls carries the same parameters as oauthlib's."""
    uri = BASE + "/requestToken"
    signer = OAuthSigner(
        Consumer("consumer-key", "consumer-SECRET").credentials(*token),
        clock=lambda: 1700000000,
        nonce=lambda: "nonce-1",
    )
    ours = _params(signer.authorization("POST", normalize_base_uri(uri), (), extra_oauth=extra))
    theirs = _params(_oauthlib_header(uri, **oauthlib_kwargs))
    assert ours == theirs
    assert ("oauth_token" in ours) == bool(token[0])
