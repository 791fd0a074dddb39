"""The whole login against the sandbox over real HTTP, with aiohttp standing in for the browser."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import stat
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest

from uitpas_async import UitpasClient
from uitpas_async.cli.main import main
from uitpas_async.errors import (
    AuthenticationError,
    AuthorizationDeniedError,
    LoginTimeoutError,
    RequestTokenExpiredError,
    VerifierRejectedError,
)
from uitpas_async.xml_api.credential_store import CredentialStore
from uitpas_async.xml_api.login import (
    CallbackListener,
    access_token,
    authorize_url,
    login,
    request_token,
)
from uitpas_async.xml_api.models import Consumer
from uitpas_async.xml_api.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxConfig

CONSUMER = Consumer(SANDBOX_CREDENTIALS.consumer_key, SANDBOX_CREDENTIALS.consumer_secret)


async def decide(
    url: str, decision: str = "allow", *, follow: bool = True
) -> aiohttp.ClientResponse:
    """Load the authorize page, submit its form like a browser, and follow the redirect.

    Returns the last response (the callback listener's page when ``follow``,
    else the sandbox's redirect).
    """
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as page:
            assert page.status == 200
            html = await page.text()
        token = re.search(r'name="oauth_token" value="([^"]+)"', html)
        action = re.search(r'action="([^"]+)"', html)
        assert token is not None
        assert action is not None
        root = urlunsplit((*urlsplit(url)[:2], "", "", ""))
        form = {"oauth_token": token[1], "decision": decision}
        async with session.post(root + action[1], data=form, allow_redirects=follow) as answer:
            await answer.read()
            return answer


def approving(decision: str = "allow") -> Callable[[str], Awaitable[bool]]:
    """Return a browser stand-in that clicks ``decision`` on the authorize page."""

    async def browser(url: str) -> bool:
        await decide(url, decision)
        return True

    return browser


@pytest.fixture
async def sandbox() -> Sandbox:
    """Return a running sandbox with quick reports."""
    async with Sandbox(SandboxConfig(balies=2, generation_median=0.01)) as running:
        yield running  # type: ignore[misc]


async def test_login_over_plain_http_gives_a_token_that_creates_reports(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Request token, authorize page, redirect, verifier, access token, then a report call."""
    shown: list[str] = []
    access = await login(
        sandbox.base_url, CONSUMER, open_browser=approving(), show_url=shown.append, timeout=10
    )
    assert shown[0].startswith(sandbox.base_url + "/auth/authorize?oauth_token=")
    assert access.user_id == sandbox.config.user_id
    assert access.token != SANDBOX_CREDENTIALS.token
    credentials = CONSUMER.credentials(access.token, access.secret)
    async with UitpasClient(sandbox.base_url, credentials) as client:
        report = await client.fetch_financial_report(
            date(2024, 1, 1), date(2024, 3, 31), tmp_path, balie_consumer_key=sandbox.balies[0].key
        )
    assert report.size > 0
    assert sandbox.tokens.access_tokens_issued == 1


async def test_the_api_functions_run_the_dance_for_a_web_application(sandbox: Sandbox) -> None:
    """A web app can call request_token, authorize_url and access_token itself."""
    callback = "https://app.example.org/uitpas/callback?session=1"
    token = await request_token(sandbox.base_url, CONSUMER, callback)
    assert token.callback_confirmed
    redirect = await decide(authorize_url(sandbox.base_url, token), follow=False)
    assert redirect.status == 302
    location = urlsplit(redirect.headers["Location"])
    params = dict(parse_qsl(location.query))
    assert location.netloc == "app.example.org"
    assert params["session"] == "1"
    assert params["oauth_token"] == token.token
    access = await access_token(sandbox.base_url, CONSUMER, token, params["oauth_verifier"])
    assert access.token


async def test_a_callback_with_the_wrong_token_is_refused_and_the_wait_goes_on(
    sandbox: Sandbox,
) -> None:
    """A forged callback gets a clear HTML page; the real one still completes the login."""
    pages: list[tuple[int, str]] = []

    async def browser(url: str) -> bool:
        redirect = await decide(url, follow=False)
        real = redirect.headers["Location"]
        parts = urlsplit(real)
        forged_query = dict(parse_qsl(parts.query), oauth_token="someone-elses-token")
        forged = urlunsplit(parts._replace(query=urlencode(forged_query)))
        async with aiohttp.ClientSession() as session:
            for target in (forged, parts._replace(query="").geturl(), real):
                async with session.get(target) as answer:
                    pages.append((answer.status, await answer.text()))
        return True

    access = await login(sandbox.base_url, CONSUMER, open_browser=browser, timeout=10)
    assert access.token
    assert [status for status, _ in pages] == [400, 400, 200]
    assert "not the request token of this login" in pages[0][1]
    assert "no oauth_token" in pages[1][1]
    assert "Login complete" in pages[2][1]


async def test_a_denied_authorization_is_a_typed_error(sandbox: Sandbox) -> None:
    """Clicking Deny ends the login with AuthorizationDeniedError and issues no access token."""
    with pytest.raises(AuthorizationDeniedError) as caught:
        await login(sandbox.base_url, CONSUMER, open_browser=approving("deny"), timeout=10)
    assert caught.value.problem == "permission_denied"
    assert sandbox.tokens.access_tokens_issued == 0


async def _authorized(sandbox: Sandbox) -> tuple[object, str]:
    """Return a request token the user allowed, and its verifier (via the listener)."""
    async with CallbackListener() as listener:
        token = await request_token(sandbox.base_url, CONSUMER, listener.callback_url)
        listener.expect(token)
        await decide(authorize_url(sandbox.base_url, token))
        verifier = await listener.wait(5)
    return token, verifier


async def test_a_wrong_verifier_is_a_typed_error(sandbox: Sandbox) -> None:
    """The server refuses a verifier that is not the one it gave: VerifierRejectedError."""
    token, _ = await _authorized(sandbox)
    with pytest.raises(VerifierRejectedError) as caught:
        await access_token(sandbox.base_url, CONSUMER, token, "not-the-verifier-1234")  # type: ignore[arg-type]
    assert caught.value.problem == "verifier_invalid"
    assert sandbox.tokens.access_tokens_issued == 0


async def test_a_verifier_works_only_once(sandbox: Sandbox) -> None:
    """Exchanging the same request token and verifier twice fails the second time."""
    token, verifier = await _authorized(sandbox)
    await access_token(sandbox.base_url, CONSUMER, token, verifier)  # type: ignore[arg-type]
    with pytest.raises(VerifierRejectedError) as caught:
        await access_token(sandbox.base_url, CONSUMER, token, verifier)  # type: ignore[arg-type]
    assert caught.value.problem == "token_used"


async def test_an_expired_request_token_is_a_typed_error() -> None:
    """Past the configured lifetime the exchange fails with RequestTokenExpiredError."""
    now = [1000.0]
    config = SandboxConfig(balies=1, request_token_lifetime=60)
    async with Sandbox(config, clock=lambda: now[0]) as sandbox:
        token, verifier = await _authorized(sandbox)
        now[0] += 61
        with pytest.raises(RequestTokenExpiredError):
            await access_token(sandbox.base_url, CONSUMER, token, verifier)  # type: ignore[arg-type]


async def test_the_authorize_page_of_an_expired_token_says_so() -> None:
    """A browser arriving after the lifetime sees an "expired" page, not the consent form."""
    now = [1000.0]
    async with Sandbox(
        SandboxConfig(balies=1, request_token_lifetime=60), clock=lambda: now[0]
    ) as sb:
        token = await request_token(sb.base_url, CONSUMER, "http://127.0.0.1:9/callback")
        now[0] += 61
        async with (
            aiohttp.ClientSession() as session,
            session.get(authorize_url(sb.base_url, token)) as page,
        ):
            assert page.status == 400
            assert "expired" in await page.text()


async def test_no_callback_in_time_is_a_login_timeout(sandbox: Sandbox) -> None:
    """Without a valid callback the login ends after its timeout with LoginTimeoutError."""
    with pytest.raises(LoginTimeoutError, match=r"within 0\.2 s"):
        await login(sandbox.base_url, CONSUMER, open_browser=None, timeout=0.2)


async def test_token_calls_get_the_same_signature_checks(sandbox: Sandbox) -> None:
    """A wrong consumer secret is refused at requestToken like at any API call."""
    wrong = Consumer(CONSUMER.key, "not-the-secret")
    with pytest.raises(AuthenticationError, match="signature_invalid"):
        await request_token(sandbox.base_url, wrong, "http://127.0.0.1:9/callback")
    assert sandbox.tokens.request_tokens_issued == 0


# -- the command line ------------------------------------------------------------------


@contextlib.contextmanager
def sandbox_thread(config: SandboxConfig) -> Iterator[Sandbox]:
    """Run a sandbox on its own event loop in a thread, for tests of the synchronous CLI."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sandbox = Sandbox(config)
    asyncio.run_coroutine_threadsafe(sandbox.start(), loop).result(10)
    try:
        yield sandbox
    finally:
        asyncio.run_coroutine_threadsafe(sandbox.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def cli_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """Return a threaded sandbox, with the consumer in the environment and no user token."""
    for name in ("UITPAS_TOKEN", "UITPAS_TOKEN_SECRET", "UITPAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UITPAS_CONSUMER_KEY", CONSUMER.key)
    monkeypatch.setenv("UITPAS_CONSUMER_SECRET", CONSUMER.secret)
    with sandbox_thread(SandboxConfig(balies=2, generation_median=0.01)) as sandbox:
        yield sandbox


def _use_browser(
    monkeypatch: pytest.MonkeyPatch, browser: Callable[[str], Awaitable[bool]]
) -> None:
    monkeypatch.setattr("uitpas_async.cli.login.open_in_browser", browser)


def test_cli_login_saves_credentials_that_every_command_then_uses(
    cli_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """A full CLI login saves a 0600 file; a report then works; no secret reaches any output."""
    caplog.set_level(logging.DEBUG)
    _use_browser(monkeypatch, approving())
    base = cli_sandbox.base_url
    assert main(["login", "--base-url", base, "--timeout", "10", "-v"]) == 0
    out, err = capsys.readouterr()
    store = CredentialStore()
    assert f"credentials saved to {store.path}" in out
    assert "Logged in to " + base in out
    assert "/auth/authorize?oauth_token=" in err  # the URL is always printed
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    saved = store.load(base)
    assert saved is not None
    assert saved.user_id == cli_sandbox.config.user_id

    [pending] = cli_sandbox.tokens.issued()
    secrets = {
        "consumer secret": CONSUMER.secret,
        "request token secret": pending.secret,
        "verifier": pending.verifier,
        "access token secret": saved.credentials.token_secret,
    }
    assert all(secrets.values())
    monkeypatch.delenv("UITPAS_CONSUMER_KEY")
    monkeypatch.delenv("UITPAS_CONSUMER_SECRET")
    arguments = ["--base-url", base, "--period", "2024-Q1", "--out", str(tmp_path / "r"), "-v"]
    assert main(["report", *arguments, "--balie", cli_sandbox.balies[0].key]) == 0
    assert main(["whoami", "--base-url", base]) == 0
    assert main(["logout", "--base-url", base]) == 0
    later_out, later_err = capsys.readouterr()
    assert ".zip" in later_out
    logs = "\n".join(record.getMessage() for record in caplog.records)
    for text in (out, err, later_out, later_err, logs):
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} leaked"
    assert store.load(base) is None


def test_cli_whoami_masks_secrets_and_says_where_credentials_come_from(
    cli_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """whoami names the environment, source and consumer key; secrets show as ***."""
    _use_browser(monkeypatch, approving())
    base = cli_sandbox.base_url
    assert main(["login", "--base-url", base, "--timeout", "10"]) == 0
    capsys.readouterr()
    saved = CredentialStore().load(base)
    assert saved is not None
    assert main(["whoami", "--base-url", base]) == 0
    out = capsys.readouterr().out
    assert f"environment: custom ({base})" in out
    assert "saved by `uitpas-async login`" in out
    assert f"consumer key: {CONSUMER.key}" in out
    assert "consumer secret: ***" in out
    assert "token secret: ***" in out
    assert saved.credentials.token not in out
    assert saved.credentials.token_secret not in out
    assert CONSUMER.secret not in out

    for name, value in (("UITPAS_TOKEN", "env-token-0001"), ("UITPAS_TOKEN_SECRET", "env-SECRET")):
        monkeypatch.setenv(name, value)
    assert main(["whoami", "--base-url", base]) == 0
    out = capsys.readouterr().out
    assert "credentials: the UITPAS_* environment variables" in out
    assert "they override the credentials saved" in out
    assert "env-SECRET" not in out


def test_cli_env_variables_win_over_the_saved_login(
    cli_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With all four variables set, a command signs with them, not with the saved token."""
    _use_browser(monkeypatch, approving())
    base = cli_sandbox.base_url
    assert main(["login", "--base-url", base, "--timeout", "10"]) == 0
    monkeypatch.setenv("UITPAS_TOKEN", "unknown-token")
    monkeypatch.setenv("UITPAS_TOKEN_SECRET", "unknown-secret")
    assert main(["periods", "--base-url", base, "--balie", cli_sandbox.balies[0].key]) == 1
    assert "AuthenticationError" in capsys.readouterr().err
    assert cli_sandbox.stats.auth_failures == 1


@pytest.mark.parametrize(
    ("browser", "arguments", "expected"),
    [
        (approving("deny"), ["--timeout", "10"], "AuthorizationDeniedError"),
        (None, ["--timeout", "0.2", "--no-browser"], "LoginTimeoutError"),
    ],
    ids=["denied", "timeout"],
)
def test_cli_failures_exit_1_with_one_line_and_store_nothing(
    cli_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    browser: Callable[[str], Awaitable[bool]] | None,
    arguments: list[str],
    expected: str,
) -> None:
    """A denied or timed-out login exits 1 with one clear line, and saves nothing."""
    if browser is not None:
        _use_browser(monkeypatch, browser)
    assert main(["login", "--base-url", cli_sandbox.base_url, *arguments]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"uitpas-async: {expected}: ")
    assert not CredentialStore().path.exists()


def test_cli_no_browser_only_prints_the_url(
    cli_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-browser opens nothing and prints the authorize URL."""

    async def must_not_open(url: str) -> bool:
        raise AssertionError("--no-browser opened a browser")

    _use_browser(monkeypatch, must_not_open)
    assert (
        main(["login", "--base-url", cli_sandbox.base_url, "--no-browser", "--timeout", "0.2"]) == 1
    )
    assert "/auth/authorize?oauth_token=" in capsys.readouterr().err


def test_cli_login_sandbox_runs_end_to_end(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`login --sandbox` logs in to an in-process sandbox, checks the token, and saves nothing."""
    _use_browser(monkeypatch, approving())
    assert main(["login", "--sandbox", "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert "the access token works" in out
    assert not CredentialStore().path.exists()


def test_cli_logout_without_a_login_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """logout of an environment with nothing saved says so and succeeds."""
    assert main(["logout", "--env", "test"]) == 0
    assert "Not logged in to test" in capsys.readouterr().out


def test_cli_whoami_without_credentials_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """whoami with nothing configured says how to log in."""
    for name in (
        "UITPAS_CONSUMER_KEY",
        "UITPAS_CONSUMER_SECRET",
        "UITPAS_TOKEN",
        "UITPAS_TOKEN_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    assert main(["whoami", "--env", "prod"]) == 1
    assert "uitpas-async login --env prod" in capsys.readouterr().err


def test_cli_login_without_a_terminal_or_consumer_variables_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no consumer variables and no terminal to ask on, login exits 2 in one line."""
    monkeypatch.delenv("UITPAS_CONSUMER_KEY", raising=False)
    monkeypatch.delenv("UITPAS_CONSUMER_SECRET", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["login", "--env", "test"]) == 2
    err = capsys.readouterr().err
    assert "UITPAS_CONSUMER_KEY" in err
    assert len(err.strip().splitlines()) == 1


async def test_the_listener_takes_exactly_one_valid_callback() -> None:
    """After the valid callback, a second one (even a valid-looking one) changes nothing."""
    async with CallbackListener() as listener, aiohttp.ClientSession() as session:
        listener.expect("RT")
        valid = listener.callback_url + "?oauth_token=RT&oauth_verifier=first"
        again = listener.callback_url + "?oauth_token=RT&oauth_verifier=second"
        async with session.get(valid) as answer:
            assert answer.status == 200
        async with session.get(again) as answer:
            assert answer.status == 409
            assert "already" in (await answer.text()).lower()
        assert await listener.wait(1) == "first"
