"""Shared fixtures: the real-data fixtures folder, test credentials and a fake sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import aioresponses.core
import pytest
from aioresponses import aioresponses as Aioresponses

from uitpas_async import Credentials

#: The repository root (``tests/..``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where the real UiTPAS data lives, beside the repository.
FIXTURES_DIR = (REPO_ROOT / ".." / "shared" / "fixtures").resolve()

#: The test environment's prefix: note that it has a path of its own.
TEST_BASE_URL = "https://test.uitid.be/uitid/rest"
#: Distinctive secrets, so a test can search any text for them.
CONSUMER_SECRET = "consumer-SECRET-5f1c9e"
TOKEN_SECRET = "token-SECRET-a84d21"


@pytest.fixture
def fixtures_dir() -> Path:
    """Return ``../shared/fixtures`` resolved from the repository root (may be absent)."""
    return FIXTURES_DIR


@pytest.fixture
def fixture_file(fixtures_dir: Path) -> Callable[[str], Path]:
    """Return a lookup that gives a fixture file's path, or skips the test when it is absent."""

    def lookup(name: str) -> Path:
        """Return the fixture file's path, or skip."""
        if not fixtures_dir.is_dir():
            pytest.skip(f"fixtures folder {fixtures_dir} is absent")
        path = fixtures_dir / name
        if not path.is_file():
            pytest.skip(f"fixture {name} is absent from {fixtures_dir}")
        return path

    return lookup


@pytest.fixture
def credentials() -> Credentials:
    """Return credentials whose secrets are easy to search for in any output."""
    return Credentials(
        consumer_key="consumer-key-0001",
        consumer_secret=CONSUMER_SECRET,
        token="access-token-0002",
        token_secret=TOKEN_SECRET,
    )


class FakeSleep:
    """An async sleep that records each requested delay and returns at once."""

    def __init__(self) -> None:
        #: The delays asked for, in order.
        self.delays: list[float] = []
        #: Fake monotonic time, advanced by every sleep.
        self.now = 1000.0

    def clock(self) -> float:
        """Return the fake time, for the client's ``clock=``."""
        return self.now

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        # Yield to the loop like a real sleep would, but never wait.
        await asyncio.sleep(0)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    """Return a sleep that records delays instead of waiting."""
    return FakeSleep()


class _MockedClientResponse(aiohttp.ClientResponse):
    """A ClientResponse that aioresponses 0.7.x can build under aiohttp 3.14.

    aiohttp 3.14 added a required ``stream_writer`` argument that aioresponses does not
    pass (https://github.com/pnuckowski/aioresponses/issues/289); a mocked response was
    never written, so a writer with nothing sent stands in.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aioresponses]:
    """Intercept every aiohttp request with aioresponses (patched for aiohttp 3.14)."""
    if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        monkeypatch.setattr(aioresponses.core, "ClientResponse", _MockedClientResponse)
    with Aioresponses() as mock:
        yield mock


@pytest.fixture(autouse=True)
def private_config_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point the credential store at a fresh directory: no test reads or writes the real one."""
    directory = tmp_path_factory.mktemp("uitpas-config") / "config"
    monkeypatch.setenv("UITPAS_CONFIG_DIR", str(directory))
    return directory
