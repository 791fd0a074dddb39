"""The sandbox's three-legged login: ``requestToken``, the authorize page, ``accessToken``.

The token calls get the same oauthlib signature, timestamp and nonce checks as
every API call, and refusals answer 401 with ``oauth_problem=NAME`` in plain
text. The authorize page is a small HTML form with an Allow and a Deny
button; either one redirects the browser to the callback.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from urllib.parse import urlencode

from aiohttp import web

from uitpas_async.xml_api.login_protocol import (
    ACCESS_TOKEN_PATH,
    AUTHORIZE_PATH,
    REQUEST_TOKEN_PATH,
)
from uitpas_async.xml_api.sandbox.config import SandboxConfig
from uitpas_async.xml_api.sandbox.oauth import OAuthVerifier
from uitpas_async.xml_api.sandbox.tokens import PROBLEM_EXPIRED, TokenRegistry

__all__ = ["LoginRoutes"]

logger = logging.getLogger(__name__)

_FORM_TYPE = "application/x-www-form-urlencoded"

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
{content}
</body></html>
"""
_CONSENT = """<p>The application with consumer key <code>{consumer}</code> asks to act as
<strong>{user}</strong>, balie employee, in the UiTPAS sandbox.</p>
<form method="post" action="{action}">
<input type="hidden" name="oauth_token" value="{token}">
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
"""
_INVALID = """<p>This sign-in link is {why}. Start the login again from your application.</p>
"""


def _page(title: str, content: str, status: int = 200) -> web.Response:
    body = _PAGE.format(title=html.escape(title), content=content)
    return web.Response(status=status, text=body, content_type="text/html")


def _plain(text: str, status: int, content_type: str = "text/plain") -> web.Response:
    return web.Response(status=status, text=text, content_type=content_type)


class LoginRoutes:
    """Serves the three login endpoints for one sandbox."""

    def __init__(
        self,
        config: SandboxConfig,
        verifier: OAuthVerifier,
        tokens: TokenRegistry,
        *,
        signed_uri: Callable[[web.Request], str],
    ) -> None:
        self._config = config
        self._verifier = verifier
        self._tokens = tokens
        self._signed_uri = signed_uri

    def register(self, app: web.Application) -> None:
        """Add the routes below the configured prefix."""
        prefix = self._config.prefix
        app.router.add_post(prefix + REQUEST_TOKEN_PATH, self.request_token)
        app.router.add_get(prefix + AUTHORIZE_PATH, self.authorize_page)
        app.router.add_post(prefix + AUTHORIZE_PATH, self.authorize_decision)
        app.router.add_post(prefix + ACCESS_TOKEN_PATH, self.access_token)

    async def _signed(self, request: web.Request) -> tuple[str, str, str]:
        body = (await request.read()).decode("utf-8", "replace")
        if request.content_type != _FORM_TYPE:
            body = ""  # only form bodies take part in the signature
        return request.method, self._signed_uri(request), body

    @staticmethod
    def _refuse(endpoint: str, problem: str) -> web.Response:
        logger.debug("%s: OAuth refused: %s", endpoint, problem)
        return _plain(f"oauth_problem={problem}\n", 401)

    async def request_token(self, request: web.Request) -> web.Response:
        """Issue a request token to the consumer, bound to its ``oauth_callback``."""
        method, uri, body = await self._signed(request)
        problem, callback = self._verifier.verify_request_token_request(
            method, uri, body, request.headers
        )
        if problem is not None:
            return self._refuse("requestToken", problem)
        pending = self._tokens.issue_request_token(callback)
        answer = urlencode(
            (
                ("oauth_token", pending.token),
                ("oauth_token_secret", pending.secret),
                ("oauth_callback_confirmed", "true"),
            )
        )
        return _plain(answer, 200, _FORM_TYPE)

    async def authorize_page(self, request: web.Request) -> web.Response:
        """Show the consent form for a live request token (``type``, ``lang``, ... are ignored)."""
        token = request.query.get("oauth_token", "")
        problem = self._tokens.problem(token)
        if problem is not None:
            return self._invalid(problem)
        content = _CONSENT.format(
            consumer=html.escape(self._config.credentials.consumer_key),
            user=html.escape(self._config.user_name),
            action=html.escape(self._config.prefix + AUTHORIZE_PATH),
            token=html.escape(token),
        )
        return _page("Authorize application", content)

    async def authorize_decision(self, request: web.Request) -> web.StreamResponse:
        """Record Allow or Deny, then send the browser to the callback."""
        form = await request.post()
        token = str(form.get("oauth_token", ""))
        decision = str(form.get("decision", ""))
        if decision not in ("allow", "deny"):
            return _page("Bad request", "<p>Choose Allow or Deny.</p>", 400)
        problem = self._tokens.problem(token)
        if problem is not None:
            return self._invalid(problem)
        location = self._tokens.decide(token, allow=decision == "allow")
        raise web.HTTPFound(location)

    async def access_token(self, request: web.Request) -> web.Response:
        """Exchange an allowed request token and its verifier, once, for an access token."""
        method, uri, body = await self._signed(request)
        problem, token = self._verifier.verify_access_token_request(
            method, uri, body, request.headers
        )
        if problem is not None:
            return self._refuse("accessToken", problem)
        access, secret = self._tokens.issue_access_token(token)
        answer = urlencode(
            (
                ("userId", self._config.user_id),
                ("oauth_token", access),
                ("oauth_token_secret", secret),
            )
        )
        return _plain(answer, 200, _FORM_TYPE)

    @staticmethod
    def _invalid(problem: str) -> web.Response:
        why = "expired" if problem == PROBLEM_EXPIRED else "not valid (unknown or already used)"
        return _page("Sign-in link not valid", _INVALID.format(why=why), 400)
