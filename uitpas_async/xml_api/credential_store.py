"""Credentials saved by ``uitpas-async login``: one owner-only file, one entry per base URL.

The file is ``credentials.json`` in the user's config directory (platformdirs;
``$UITPAS_CONFIG_DIR`` overrides it). It is created with mode 0600 and only
ever replaced whole: a temporary file beside it, written and flushed, then
``os.replace``, so a reader sees the old file or the new one and never a
torn or world-readable one.

Which credentials a command uses (:func:`resolve_credentials`): the four
``UITPAS_*`` environment variables when all of them are set; otherwise the
entry saved for the selected base URL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import attrs
import platformdirs

from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.xml_api.models import CREDENTIAL_VARIABLES, ENVIRONMENTS, Credentials

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

logger = logging.getLogger(__name__)

#: Names a directory to use instead of the user's config directory (tests, containers).
CONFIG_DIR_VARIABLE = "UITPAS_CONFIG_DIR"
#: The platformdirs application name.
APP_NAME = "uitpas-async"
CREDENTIALS_FILENAME = "credentials.json"
#: Owner read/write only: the file holds the consumer secret and the token secret.
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
#: Version of the file's layout, written into it.
FILE_VERSION = 1
_TEMPORARY_PREFIX = ".credentials-"


def default_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$UITPAS_CONFIG_DIR``, or the user's config directory for uitpas-async."""
    env = os.environ if environ is None else environ
    override = env.get(CONFIG_DIR_VARIABLE)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def _key(base_url: str) -> str:
    return base_url.strip().rstrip("/")


def environment_name(base_url: str) -> str | None:
    """Return the name of the public environment at ``base_url`` (``test``, ...), if it is one."""
    key = _key(base_url)
    return next((name for name, url in ENVIRONMENTS.items() if url == key), None)


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only (0600).

    The temporary file is created 0600 by ``mkstemp`` itself, so the data is
    never world-readable, not even between creation and rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    descriptor, name = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


@attrs.frozen
class StoredLogin:
    """Credentials saved for one base URL, with who and when."""

    base_url: str = attrs.field(converter=_key)
    #: The repr masks the secrets.
    credentials: Credentials
    user_id: str | None = None
    #: When the login happened (aware, UTC).
    saved_at: datetime | None = None

    @property
    def environment(self) -> str | None:
        """Return the public environment's name, or None for another base URL."""
        return environment_name(self.base_url)


def _entry(login: StoredLogin) -> dict[str, Any]:
    credentials = login.credentials
    return {
        "consumer_key": credentials.consumer_key,
        "consumer_secret": credentials.consumer_secret,
        "token": credentials.token,
        "token_secret": credentials.token_secret,
        "user_id": login.user_id,
        "saved_at": login.saved_at.isoformat() if login.saved_at else None,
    }


def _login(base_url: str, entry: object, path: Path) -> StoredLogin:
    fields = ("consumer_key", "consumer_secret", "token", "token_secret")
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(name), str) and entry[name] for name in fields
    ):
        raise ConfigurationError(
            f"the saved credentials for {base_url} in {path} are incomplete; "
            "run `uitpas-async login` again"
        )
    saved_at = None
    if isinstance(entry.get("saved_at"), str):
        with contextlib.suppress(ValueError):
            saved_at = datetime.fromisoformat(entry["saved_at"])
    user_id = entry.get("user_id")
    return StoredLogin(
        base_url,
        Credentials(*(entry[name] for name in fields)),
        user_id if isinstance(user_id, str) else None,
        saved_at,
    )


class CredentialStore:
    """The credentials file: load, save and remove the entry of one base URL."""

    def __init__(self, directory: Path | str | None = None) -> None:
        # Where credentials.json lives; resolved at construction, so one store is one file.
        self.directory = Path(directory) if directory is not None else default_config_dir()

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.path)!r})"

    @property
    def path(self) -> Path:
        """Return the path of the credentials file."""
        return self.directory / CREDENTIALS_FILENAME

    def _read(self) -> dict[str, Any]:
        """Return the saved entries by base URL ({} when there is no file)."""
        try:
            with self.path.open("rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                raw = handle.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigurationError(f"cannot read {self.path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("%s is readable by others; run: chmod 600 %s", self.path, self.path)
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            # The message never quotes the file: it holds secrets.
            raise ConfigurationError(
                f"{self.path} is not a valid credentials file; remove it and log in again"
            ) from exc
        logins = document.get("logins") if isinstance(document, dict) else None
        if not isinstance(logins, dict):
            raise ConfigurationError(
                f"{self.path} is not a valid credentials file; remove it and log in again"
            )
        return logins

    def _write(self, logins: Mapping[str, Any]) -> None:
        document = {"version": FILE_VERSION, "logins": dict(sorted(logins.items()))}
        data = (json.dumps(document, indent=2) + "\n").encode()
        try:
            write_private_file(self.path, data)
        except OSError as exc:
            raise ConfigurationError(f"cannot write {self.path}: {exc.strerror}") from exc

    def load(self, base_url: str) -> StoredLogin | None:
        """Return the credentials saved for ``base_url``, or None."""
        key = _key(base_url)
        entry = self._read().get(key)
        return None if entry is None else _login(key, entry, self.path)

    def logins(self) -> list[StoredLogin]:
        """Return every saved login, by base URL."""
        return [_login(key, entry, self.path) for key, entry in sorted(self._read().items())]

    def save(self, login: StoredLogin) -> Path:
        """Save (or replace) the entry of the login's base URL; return the file's path."""
        logins = self._read()
        logins[login.base_url] = _entry(login)
        self._write(logins)
        logger.debug("saved credentials for %s", login.base_url)
        return self.path

    def remove(self, base_url: str) -> bool:
        """Remove the entry of ``base_url``; return whether there was one."""
        logins = self._read()
        if logins.pop(_key(base_url), None) is None:
            return False
        if logins:
            self._write(logins)
        else:
            self.path.unlink(missing_ok=True)
        return True


@attrs.frozen
class ResolvedCredentials:
    """The credentials a command will use, and where they came from."""

    credentials: Credentials
    source: Literal["environment", "stored"]
    #: The saved login, when the credentials came from the file.
    stored: StoredLogin | None = None


def resolve_credentials(
    base_url: str,
    *,
    environ: Mapping[str, str] | None = None,
    store: CredentialStore | None = None,
) -> ResolvedCredentials:
    """Return the credentials for ``base_url``: all four variables win, then the saved login.

    Raises:
        ConfigurationError: neither is there; the message names what to set or run.
    """
    env = os.environ if environ is None else environ
    if all(env.get(name) for name in CREDENTIAL_VARIABLES):
        return ResolvedCredentials(Credentials.from_env(env), "environment")
    store = store if store is not None else CredentialStore(default_config_dir(env))
    stored = store.load(base_url)
    if stored is not None:
        logger.debug("using the credentials saved for %s", stored.base_url)
        return ResolvedCredentials(stored.credentials, "stored", stored)
    missing = [name for name in CREDENTIAL_VARIABLES if not env.get(name)]
    name = environment_name(base_url)
    target = f"--env {name}" if name else f"--base-url {base_url}"
    raise ConfigurationError(
        f"missing credentials: set {', '.join(missing)}, run `uitpas-async login {target}`, "
        "or use --sandbox"
    )
