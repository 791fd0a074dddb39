"""Where ``uitpas-async login --api 4`` keeps the client id and secret: one owner-only file.

The file maps an API base URL to its credentials (they differ per environment),
is written atomically with mode 0600, and is read only when the environment
variables are not set.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import platformdirs

from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.v4.models import CLIENT_ID_VARIABLE, CLIENT_SECRET_VARIABLE, ClientCredentials

__all__ = ["default_path", "load_credentials", "resolve_credentials", "save_credentials"]

FILE_NAME = "uitpas4-credentials.json"
#: Names a directory to use instead of the user's config directory: the same variable
#: as the XML API's store, so one setting (tests, containers) moves both files.
CONFIG_DIR_VARIABLE = "UITPAS_CONFIG_DIR"
#: Largest credentials file read.
MAX_FILE_BYTES = 1024 * 1024


def default_path() -> Path:
    """Return the per-user credentials file (``$UITPAS_CONFIG_DIR`` overrides the folder)."""
    override = os.environ.get(CONFIG_DIR_VARIABLE)
    if override:
        return Path(override).expanduser() / FILE_NAME
    return Path(platformdirs.user_config_dir("uitpas-async", appauthor=False)) / FILE_NAME


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(raw) if len(raw) <= MAX_FILE_BYTES else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path} is not a credentials file; log in again")
    return {k: v for k, v in doc.items() if isinstance(v, dict)}


def save_credentials(
    base_url: str, credentials: ClientCredentials, path: Path | None = None
) -> Path:
    """Store the credentials for ``base_url`` (owner-only, atomic); return the file."""
    target = path or default_path()
    doc = _read(target)
    doc[base_url] = {
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, name = tempfile.mkstemp(prefix=".uitpas4-", dir=target.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return target


def load_credentials(base_url: str, path: Path | None = None) -> ClientCredentials | None:
    """Return the stored credentials for ``base_url``, if any."""
    entry = _read(path or default_path()).get(base_url)
    if not entry:
        return None
    return ClientCredentials(str(entry.get("client_id", "")), str(entry.get("client_secret", "")))


def resolve_credentials(base_url: str, environ: dict[str, str] | None = None) -> ClientCredentials:
    """Return the environment's credentials when both variables are set, else the stored ones.

    Raises:
        ConfigurationError: neither is there.
    """
    env = dict(os.environ) if environ is None else environ
    if env.get(CLIENT_ID_VARIABLE) or env.get(CLIENT_SECRET_VARIABLE):
        return ClientCredentials.from_env(env)
    stored = load_credentials(base_url)
    if stored is None:
        raise ConfigurationError(
            f"no UiTPAS 4.0 credentials: set {CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE}, "
            "run `uitpas-async login --api 4`, or use --sandbox"
        )
    return stored
