"""The three-legged OAuth login without I/O.

Moved to :mod:`uitpas_async.xml_api.login_protocol`; this name stays for code that imports it.
"""

from __future__ import annotations

from uitpas_async.xml_api.login_protocol import (
    ACCESS_TOKEN_PATH,
    AUTHORIZE_PATH,
    REQUEST_TOKEN_PATH,
    AccessToken,
    CallbackOutcome,
    CallbackVerdict,
    RequestToken,
    TokenRequest,
    authorize_url,
    build_access_token,
    build_request_token,
    check_token_answer,
    login_error,
    parse_access_token,
    parse_request_token,
    read_callback,
)

__all__ = [
    "ACCESS_TOKEN_PATH",
    "AUTHORIZE_PATH",
    "REQUEST_TOKEN_PATH",
    "AccessToken",
    "CallbackOutcome",
    "CallbackVerdict",
    "RequestToken",
    "TokenRequest",
    "authorize_url",
    "build_access_token",
    "build_request_token",
    "check_token_answer",
    "login_error",
    "parse_access_token",
    "parse_request_token",
    "read_callback",
]
