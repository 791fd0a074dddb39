"""Saved UiTPAS credentials, one entry per base URL.

Moved to :mod:`uitpas_async.xml_api.credential_store`; this name stays for code that imports it.
"""

from __future__ import annotations

from uitpas_async.xml_api.credential_store import (
    CONFIG_DIR_VARIABLE,
    CREDENTIALS_FILENAME,
    CredentialStore,
    ResolvedCredentials,
    StoredLogin,
    default_config_dir,
    environment_name,
    resolve_credentials,
    write_private_file,
)

__all__ = [
    "CONFIG_DIR_VARIABLE",
    "CREDENTIALS_FILENAME",
    "CredentialStore",
    "ResolvedCredentials",
    "StoredLogin",
    "default_config_dir",
    "environment_name",
    "resolve_credentials",
    "write_private_file",
]
