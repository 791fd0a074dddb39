"""The credentials file: owner-only, replaced atomically, per base URL; env vars win."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from uitpas_async.errors import ConfigurationError
from uitpas_async.xml_api.credential_store import (
    CONFIG_DIR_VARIABLE,
    CredentialStore,
    StoredLogin,
    default_config_dir,
    resolve_credentials,
    write_private_file,
)
from uitpas_async.xml_api.models import ENVIRONMENTS, Credentials

TEST_URL = ENVIRONMENTS["test"]
SAVED = Credentials("saved-key", "saved-consumer-SECRET", "saved-token", "saved-token-SECRET")
ENV = {
    "UITPAS_CONSUMER_KEY": "env-key",
    "UITPAS_CONSUMER_SECRET": "env-consumer-SECRET",
    "UITPAS_TOKEN": "env-token",
    "UITPAS_TOKEN_SECRET": "env-token-SECRET",
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _login(base_url: str = TEST_URL, credentials: Credentials = SAVED) -> StoredLogin:
    return StoredLogin(base_url, credentials, "user-1", datetime(2024, 5, 1, tzinfo=timezone.utc))


def test_the_config_dir_comes_from_the_variable_in_tests(private_config_dir: Path) -> None:
    """UITPAS_CONFIG_DIR overrides the platform directory (and conftest sets it for every test)."""
    assert os.environ[CONFIG_DIR_VARIABLE] == str(private_config_dir)
    assert CredentialStore().path == private_config_dir / "credentials.json"
    assert default_config_dir({}).name == "uitpas-async"


def test_save_and_load_round_trip_per_base_url(tmp_path: Path) -> None:
    """A saved login comes back for its base URL (trailing slash or not) and no other."""
    store = CredentialStore(tmp_path)
    store.save(_login())
    loaded = store.load(TEST_URL + "/")
    assert loaded == _login()
    assert loaded is not None
    assert loaded.environment == "test"
    assert store.load(ENVIRONMENTS["prod"]) is None


def test_the_file_is_owner_only_and_its_directory_too(tmp_path: Path) -> None:
    """The credentials file has mode 0600; a directory it creates has 0700."""
    store = CredentialStore(tmp_path / "new")
    path = store.save(_login())
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_the_file_is_never_world_readable_even_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the moment of the rename the temporary file already has mode 0600 and all the data."""
    os.umask(0o022)
    seen: list[tuple[int, bytes]] = []
    real_replace = os.replace

    def spying_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        seen.append((_mode(Path(source)), Path(source).read_bytes()))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spying_replace)
    write_private_file(tmp_path / "secret.json", b"payload")
    assert seen == [(0o600, b"payload")]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the rename fails, the old credentials stay whole and no partial file is left."""
    store = CredentialStore(tmp_path)
    store.save(_login())
    before = store.path.read_bytes()

    def failing_replace(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ConfigurationError, match="cannot write"):
        store.save(_login(ENVIRONMENTS["prod"]))
    assert store.path.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["credentials.json"]


def test_remove_deletes_only_that_base_url(tmp_path: Path) -> None:
    """Logging out of one environment keeps the others; the last one removes the file."""
    store = CredentialStore(tmp_path)
    store.save(_login(TEST_URL))
    store.save(_login(ENVIRONMENTS["acc"]))
    assert store.remove(TEST_URL)
    assert not store.remove(TEST_URL)
    assert [login.base_url for login in store.logins()] == [ENVIRONMENTS["acc"]]
    assert _mode(store.path) == 0o600
    assert store.remove(ENVIRONMENTS["acc"])
    assert not store.path.exists()


def test_a_corrupt_file_is_a_configuration_error_that_quotes_nothing(tmp_path: Path) -> None:
    """A broken file gives one clear error, without echoing what it holds."""
    store = CredentialStore(tmp_path)
    store.path.write_text('{"logins": {"x": "oops-SECRET"')
    with pytest.raises(ConfigurationError, match="not a valid credentials file") as caught:
        store.load(TEST_URL)
    assert "SECRET" not in str(caught.value)


def test_stored_login_repr_masks_the_secrets() -> None:
    """The secrets of a saved login never show in its repr."""
    text = repr(_login())
    assert "SECRET" not in text


@pytest.mark.parametrize(
    ("environ", "source", "key"),
    [
        (ENV, "environment", "env-key"),
        ({}, "stored", "saved-key"),
        ({"UITPAS_CONSUMER_KEY": "env-key", "UITPAS_CONSUMER_SECRET": "x"}, "stored", "saved-key"),
    ],
    ids=["all four variables win", "no variables", "some variables"],
)
def test_environment_variables_take_precedence_over_stored_credentials(
    tmp_path: Path, environ: dict[str, str], source: str, key: str
) -> None:
    """All four UITPAS_* variables win; otherwise the saved login for the base URL is used."""
    store = CredentialStore(tmp_path)
    store.save(_login())
    resolved = resolve_credentials(TEST_URL, environ=environ, store=store)
    assert (resolved.source, resolved.credentials.consumer_key) == (source, key)


def test_without_either_the_error_says_what_to_do(tmp_path: Path) -> None:
    """No variables and no saved login: the message names the variables and the login command."""
    with pytest.raises(ConfigurationError) as caught:
        resolve_credentials(TEST_URL, environ={}, store=CredentialStore(tmp_path))
    assert "UITPAS_CONSUMER_KEY" in caught.value.message
    assert "uitpas-async login --env test" in caught.value.message
