"""Run the sandbox in its own process, so the client's CPU and memory are measured alone."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import attrs

__all__ = [
    "SandboxInfo",
    "V4SandboxInfo",
    "fetch_stats",
    "running_sandbox",
    "running_v4_sandbox",
]

#: Seconds to wait for the sandbox's announcement line.
STARTUP_TIMEOUT = 60.0


@attrs.frozen
class SandboxInfo:
    """What a started sandbox announced: where it listens, whom it accepts, its balies."""

    base_url: str
    root_url: str
    #: The sandbox's own public credentials (loopback only); never printed by the harness.
    credentials: dict[str, str] = attrs.field(repr=False)
    balies: tuple[str, ...] = attrs.field(repr=False)

    def as_child_input(self) -> dict[str, Any]:
        """Return what a child process needs to talk to this sandbox."""
        return {
            "base_url": self.base_url,
            "root_url": self.root_url,
            "credentials": self.credentials,
            "balies": list(self.balies),
        }


#: Requests the rate-limited sandbox admits back to back: 50 ms of the reference
#: 50 req/s, the same count at any time scale. With a bucket of one, a request
#: that arrives a fraction of a millisecond early (scheduling jitter on a loaded
#: machine) is refused, and no client pacing at R could avoid every 429.
RATE_BURST = 2.5


@contextlib.contextmanager
def running_sandbox(
    *,
    balies: int,
    median: float,
    sigma: float,
    time_scale: float,
    rate: float | None = None,
    seed: int = 1,
) -> Iterator[SandboxInfo]:
    """Start ``python -m uitpas_async.sandbox`` and yield its announcement; stop it after."""
    command = _command(
        "uitpas_async.sandbox", ["--balies", str(balies)], median, sigma, time_scale, rate, seed
    )
    with _announced(command) as data:
        base_url = data["base_url"]
        root_url = base_url[: base_url.index("/", len("http://"))]
        credentials = {
            name: data[name]
            for name in ("consumer_key", "consumer_secret", "token", "token_secret")
        }
        yield SandboxInfo(base_url, root_url, credentials, tuple(key for key, _ in data["balies"]))


def fetch_stats(root_url: str) -> dict[str, Any]:
    """Return the sandbox's counters and per-report timings (``GET /_sandbox/stats``)."""
    with urllib.request.urlopen(root_url + "/_sandbox/stats", timeout=60) as answer:  # noqa: S310
        data: dict[str, Any] = json.loads(answer.read())
    return data


@attrs.frozen
class V4SandboxInfo:
    """What a started UiTPAS API 4.0 sandbox announced: its URLs, client, organizers."""

    base_url: str
    token_url: str
    #: The sandbox's own public client id and secret (loopback only); never printed.
    credentials: dict[str, str] = attrs.field(repr=False)
    organizers: tuple[str, ...] = attrs.field(repr=False)

    @property
    def root_url(self) -> str:
        """The server's root (its base URL: the 4.0 API has no path prefix)."""
        return self.base_url

    def as_child_input(self) -> dict[str, Any]:
        """Return what a child process needs to talk to this sandbox."""
        return {
            "base_url": self.base_url,
            "token_url": self.token_url,
            "credentials": self.credentials,
            "organizers": list(self.organizers),
        }


@contextlib.contextmanager
def running_v4_sandbox(
    *,
    organizers: int,
    median: float,
    sigma: float,
    time_scale: float,
    token_lifetime: float,
    rate: float | None = None,
    seed: int = 1,
) -> Iterator[V4SandboxInfo]:
    """Start ``python -m uitpas_async.v4.sandbox`` and yield its announcement; stop it after."""
    own = ["--organizers", str(organizers), "--token-lifetime", repr(token_lifetime)]
    command = _command("uitpas_async.v4.sandbox", own, median, sigma, time_scale, rate, seed)
    with _announced(command) as data:
        credentials = {"client_id": data["client_id"], "client_secret": data["client_secret"]}
        yield V4SandboxInfo(
            data["base_url"], data["token_url"], credentials, tuple(data["organizers"])
        )


def _command(
    module: str,
    own: list[str],
    median: float,
    sigma: float,
    time_scale: float,
    rate: float | None,
    seed: int,
) -> list[str]:
    """Return the command line of a sandbox module: its own options, then the load's."""
    command = [sys.executable, "-m", module, "--port", "0", *own]
    command += ["--median", repr(median), "--sigma", repr(sigma)]
    command += ["--time-scale", repr(time_scale), "--seed", str(seed)]
    if rate is not None:
        command += ["--rate", repr(rate), "--rate-burst", repr(RATE_BURST)]
    return command


@contextlib.contextmanager
def _announced(command: list[str]) -> Iterator[dict[str, Any]]:
    """Run a sandbox command; yield the JSON line it announces itself with; stop it after."""
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox exited before announcing itself")
        yield json.loads(line)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
