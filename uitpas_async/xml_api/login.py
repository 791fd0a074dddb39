"""The three-legged OAuth login over aiohttp: request token, authorize URL, access token.

Web applications that run the dance themselves call :func:`request_token`,
:func:`authorize_url` and :func:`access_token`. Command-line tools call
:func:`login`, which adds a one-shot :class:`CallbackListener` on 127.0.0.1
and opens the browser. Requests and answers are built and read by
:mod:`uitpas_async.xml_api.login_protocol`; signing is
:class:`~uitpas_async.xml_api.signing.OAuthSigner`'s
and sending is the client's :class:`~uitpas_async.engine.transport.AiohttpTransport`.
Token calls are never retried: each one is spent by the server on arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import webbrowser
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from uitpas_async.engine.config import DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT
from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.engine.transport import HttpSession
from uitpas_async.sandboxkit.loopback import LoopbackServer
from uitpas_async.xml_api.errors import LoginTimeoutError
from uitpas_async.xml_api.login_protocol import (
    MAX_TOKEN_ANSWER_BYTES,
    AccessToken,
    CallbackOutcome,
    RequestToken,
    TokenRequest,
    authorize_url,
    build_access_token,
    build_request_token,
    login_error,
    parse_access_token,
    parse_request_token,
    read_callback,
    read_pasted_callback,
)
from uitpas_async.xml_api.models import Consumer, Credentials
from uitpas_async.xml_api.protocol import join_prefix
from uitpas_async.xml_api.signing import OAuthSigner, normalize_base_uri

__all__ = [
    "DEFAULT_LOGIN_TIMEOUT",
    "AccessToken",
    "CallbackListener",
    "ReadPasted",
    "RequestToken",
    "access_token",
    "authorize_url",
    "login",
    "open_in_browser",
    "request_token",
]

logger = logging.getLogger(__name__)

#: Seconds the user has to authorize in the browser.
DEFAULT_LOGIN_TIMEOUT = 300.0
#: Path of the listener's callback.
CALLBACK_PATH = "/callback"
#: Seconds to wait for ``webbrowser.open`` to say whether it found a browser.
BROWSER_START_TIMEOUT = 5.0
#: Seconds the browser opener may still run after the callback came.
OPENER_GRACE = 2.0
USER_AGENT = "uitpas-async login"

#: Opens a URL in the user's browser; returns whether it did.
OpenBrowser = Callable[[str], Awaitable[bool]]
#: Reads one pasted line (the callback URL or the verifier), or None when there is no
#: more input; it is told why the previous paste was refused (None the first time).
ReadPasted = Callable[[str | None], Awaitable[str | None]]


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigurationError("base_url must be an http(s) URL such as " + _EXAMPLE_URL)
    return base_url.rstrip("/")


async def _send(
    base_url: str,
    credentials: Credentials,
    call: TokenRequest,
    *,
    session: aiohttp.ClientSession | None,
    timeout: float,
) -> tuple[int, dict[str, str], bytes]:
    """Sign and send one token call; return its status, headers and body."""
    base_url = _check_base_url(base_url)
    request = call.request
    url = join_prefix(base_url, request.path)
    base_uri = normalize_base_uri(url)
    signer = OAuthSigner(credentials)

    def authorize() -> str:
        return signer.authorization(request.method, base_uri, (), extra_oauth=call.oauth)

    http = HttpSession(
        session, pool_size=1, connect_timeout=DEFAULT_CONNECT_TIMEOUT, user_agent=USER_AGENT
    )
    try:
        raw = await http.transport().send(
            request.method,
            url,
            headers={},
            authorize=authorize,
            body=None,
            timeout=timeout,
            max_body=MAX_TOKEN_ANSWER_BYTES,
            endpoint=request.endpoint,
        )
    finally:
        await http.close()
    logger.debug("%s %s -> %d", request.method, request.endpoint, raw.status)
    return raw.status, dict(raw.headers), raw.body


async def request_token(
    base_url: str,
    consumer: Consumer,
    callback_url: str,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> RequestToken:
    """Step 1: get a request token whose authorization returns to ``callback_url``.

    Raises:
        AuthenticationError: the consumer key or signature was refused.
        TransportError, ProtocolError: as for any API call.
    """
    call = build_request_token(callback_url)
    status, headers, body = await _send(
        base_url, consumer.credentials(), call, session=session, timeout=timeout
    )
    return parse_request_token(status, headers, body)


async def access_token(
    base_url: str,
    consumer: Consumer,
    request_token: RequestToken,
    verifier: str,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> AccessToken:
    """Step 3: exchange the authorized request token and its verifier for an access token.

    Raises:
        VerifierRejectedError: wrong or already used verifier.
        RequestTokenExpiredError: the request token expired.
        AuthorizationDeniedError: the user denied the request token.
        AuthenticationError, TransportError, ProtocolError: as for any API call.
    """
    call = build_access_token(verifier)
    credentials = consumer.credentials(request_token.token, request_token.secret)
    status, headers, body = await _send(
        base_url, credentials, call, session=session, timeout=timeout
    )
    return parse_access_token(status, headers, body)


# -- the callback listener -------------------------------------------------------------

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>uitpas-async login</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def _page(title: str, text: str, status: int) -> web.Response:
    # Titles and texts are our own constants and problem names: nothing to escape.
    return web.Response(
        status=status, text=_PAGE.format(title=title, text=text), content_type="text/html"
    )


class CallbackListener(LoopbackServer):
    """Waits on 127.0.0.1 (a random port) for the one valid authorization callback.

    Requests that do not name this login's request token, or lack a verifier,
    get an explanatory HTML page and change nothing: the listener keeps waiting.
    """

    label = "login callback listener"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        # The request token whose callback ends the wait (known after step 1).
        self._expected: str | None = None
        # Resolves with the verifier, or fails with the login's error.
        self._result: asyncio.Future[str] | None = None
        #: Callbacks turned away, for tests and logs.
        self.rejected = 0

    def _application(self) -> web.Application:
        app = web.Application()
        app.router.add_get(CALLBACK_PATH, self._callback)
        return app

    @property
    def callback_url(self) -> str:
        """Return the URL to give as ``oauth_callback``."""
        return self.root_url + CALLBACK_PATH

    def expect(self, request_token: RequestToken | str) -> None:
        """Set the request token whose callback the listener waits for."""
        token = request_token.token if isinstance(request_token, RequestToken) else request_token
        self._expected = token

    def _future(self) -> asyncio.Future[str]:
        if self._result is None:
            self._result = asyncio.get_running_loop().create_future()
        return self._result

    async def _callback(self, request: web.Request) -> web.Response:
        result = self._future()
        if result.done():
            return _page("Already done", "This login has finished; close this window.", 409)
        verdict = read_callback(request.query, self._expected or "")
        if verdict.outcome is CallbackOutcome.REJECTED:
            self.rejected += 1
            # The reason names what is wrong, never a token or verifier value.
            logger.info("login callback rejected: %s", verdict.reason)
            return _page(
                "Not this login",
                f"This is not the callback the login is waiting for: {verdict.reason}. "
                "The login keeps waiting; finish it in the window it opened.",
                400,
            )
        if verdict.outcome is CallbackOutcome.FAILED:
            assert verdict.problem is not None
            result.set_exception(login_error(verdict.problem, endpoint="oauth.authorize"))
            return _page(
                "Login failed",
                f"The authorization did not succeed ({verdict.problem}). "
                "The terminal says what to do next; you can close this window.",
                200,
            )
        assert verdict.verifier is not None
        result.set_result(verdict.verifier)
        return _page(
            "Login complete",
            "uitpas-async received the authorization. You can close this window "
            "and return to the terminal.",
            200,
        )

    def submit(self, pasted: str) -> str | None:
        """Take what the user pasted as if it were the callback; return why it was refused.

        None means it was taken (verified, or a failed authorization that ends the wait)
        or the login is over already.
        """
        result = self._future()
        if result.done():
            return None
        verdict = read_pasted_callback(pasted, self._expected or "")
        if verdict.outcome is CallbackOutcome.REJECTED:
            self.rejected += 1
            return verdict.reason
        if verdict.outcome is CallbackOutcome.FAILED:
            assert verdict.problem is not None
            result.set_exception(login_error(verdict.problem, endpoint="oauth.authorize"))
            return None
        assert verdict.verifier is not None
        result.set_result(verdict.verifier)
        return None

    async def wait(self, timeout: float) -> str:
        """Return the verifier of the valid callback.

        Raises:
            LoginTimeoutError: none came within ``timeout`` seconds.
            AuthorizationDeniedError: the user denied access (or another LoginError).
        """
        try:
            return await asyncio.wait_for(asyncio.shield(self._future()), timeout)
        except asyncio.TimeoutError:
            raise LoginTimeoutError(
                f"no authorization reached the listener within {timeout:g} s; "
                "run the login again (use --timeout for more time)"
            ) from None


# -- the whole flow --------------------------------------------------------------------


async def open_in_browser(url: str) -> bool:
    """Open ``url`` in the user's browser; return whether one was found.

    ``webbrowser.open`` may block as long as a text-mode browser runs, so it
    runs on a daemon thread and the answer is awaited only briefly.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bool] = loop.create_future()

    def report(opened: bool) -> None:
        if not answer.done():
            answer.set_result(opened)

    def run() -> None:
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
        with contextlib.suppress(RuntimeError):  # the loop may be gone by now
            loop.call_soon_threadsafe(report, opened)

    threading.Thread(target=run, name="uitpas-open-browser", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(answer), BROWSER_START_TIMEOUT)
    except asyncio.TimeoutError:
        return True  # still starting: most likely a browser that has not returned yet


async def _take_pasted(listener: CallbackListener, read_pasted: ReadPasted) -> None:
    """Feed pasted lines to the listener until one is taken or the input ends."""
    reason: str | None = None
    while True:
        text = await read_pasted(reason)
        if text is None:
            return  # no more input: only the callback can finish the login now
        reason = listener.submit(text)
        if reason is None:
            return


def _log_opener_failure(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.info("could not open a browser: %s", type(task.exception()).__name__)


async def login(
    base_url: str,
    consumer: Consumer,
    *,
    open_browser: OpenBrowser | None = open_in_browser,
    show_url: Callable[[str], None] | None = None,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    session: aiohttp.ClientSession | None = None,
    lang: str | None = None,
    port: int = 0,
    read_pasted: ReadPasted | None = None,
) -> AccessToken:
    """Run the whole login: listener, request token, browser, verifier, access token.

    ``show_url`` receives the authorize URL before the browser opens (print it
    for machines without one); ``open_browser=None`` leaves opening it to the user.
    ``port`` fixes the listener's port (for ``ssh -L PORT:127.0.0.1:PORT``; 0: any free
    one). ``read_pasted``, when given, reads the callback URL or verifier the user
    pastes, for a browser that cannot reach the listener; whichever comes first wins.

    Raises:
        LoginTimeoutError: no valid callback within ``timeout`` seconds.
        AuthorizationDeniedError, VerifierRejectedError, RequestTokenExpiredError:
            the authorization or the exchange failed.
    """
    async with CallbackListener(port=port) as listener:
        token = await request_token(base_url, consumer, listener.callback_url, session=session)
        listener.expect(token)
        url = authorize_url(base_url, token, lang=lang)
        if show_url is not None:
            show_url(url)
        opener: asyncio.Task[bool] | None = None
        if open_browser is not None:
            opener = asyncio.ensure_future(open_browser(url))
            opener.add_done_callback(_log_opener_failure)
        paster = (
            asyncio.ensure_future(_take_pasted(listener, read_pasted))
            if read_pasted is not None
            else None
        )
        try:
            verifier = await listener.wait(timeout)
            if opener is not None and not opener.done():
                # Let the opener finish its page (a driven browser shows the result).
                await asyncio.wait({opener}, timeout=OPENER_GRACE)
        finally:
            for task in (opener, paster):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
    access = await access_token(base_url, consumer, token, verifier, session=session)
    logger.debug("login finished for user %s", access.user_id)
    return access


_EXAMPLE_URL = "https://test.uitid.be/uitid/rest"
