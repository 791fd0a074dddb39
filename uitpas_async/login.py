"""Log in to the UiTPAS XML API with three-legged OAuth 1.0a.

Moved to :mod:`uitpas_async.xml_api.login`; this name stays for code that imports it.
"""

from __future__ import annotations

from uitpas_async.xml_api.login import (
    DEFAULT_LOGIN_TIMEOUT,
    AccessToken,
    CallbackListener,
    RequestToken,
    access_token,
    authorize_url,
    login,
    open_in_browser,
    request_token,
)

__all__ = [
    "DEFAULT_LOGIN_TIMEOUT",
    "AccessToken",
    "CallbackListener",
    "RequestToken",
    "access_token",
    "authorize_url",
    "login",
    "open_in_browser",
    "request_token",
]
