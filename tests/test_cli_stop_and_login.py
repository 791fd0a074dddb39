"""When nothing can work the batch stops early; Ctrl-C keeps the manifest; login from a server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from example_provider import LedgerBackend, LedgerServer, StatementRequest
from test_cli_batch import MONTH, QUICK_POLL, _record
from test_login_e2e import cli_sandbox, decide

from uitpas_async.cli.batch import add_batch_arguments, fetch_batch
from uitpas_async.cli.main import main
from uitpas_async.engine.backend import JobRequest, StartedReport
from uitpas_async.engine.errors import ConnectError
from uitpas_async.xml_api.credential_store import CredentialStore
from uitpas_async.xml_api.login_protocol import authorize_url
from uitpas_async.xml_api.sandbox import Sandbox

__all__ = ["cli_sandbox"]  # the fixture, shared with the login tests


class _Unreachable(LedgerBackend):
    """The toy provider behind a host that refuses every connection; counts the tries."""

    poll_policy = QUICK_POLL

    def __init__(self) -> None:
        super().__init__(LedgerServer(time.monotonic, lambda account: 0.0))
        self.tries = 0

    async def start_report(self, request: JobRequest) -> StartedReport:
        self.tries += 1
        await asyncio.sleep(0.01)
        raise ConnectError("statements.create: cannot connect (ClientConnectorDNSError)")


class _HangsAfterOne(LedgerBackend):
    """The toy provider whose second statement is interrupted as Ctrl-C would."""

    poll_policy = QUICK_POLL

    async def start_report(self, request: JobRequest) -> StartedReport:
        if isinstance(request, StatementRequest) and request.account == "second":
            raise asyncio.CancelledError
        return await super().start_report(request)


def _batch_args(out: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_batch_arguments(parser, out_dir=str(out), max_in_flight=1, rate_help="-")
    return parser.parse_args([])


def _connection(backend: LedgerBackend, accounts: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def connection() -> AsyncIterator[tuple[LedgerBackend, list[str]]]:
        yield backend, accounts

    return connection()


def _requests(accounts: list[str]) -> list[StatementRequest]:
    return [StatementRequest(account, MONTH) for account in accounts]


async def test_an_unreachable_host_stops_the_batch_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first calls all fail to connect: the batch stops, says why and what to do, exit 2."""
    backend = _Unreachable()
    accounts = [f"account-{number}" for number in range(40)]

    status = await fetch_batch(
        _batch_args(tmp_path),
        _connection(backend, accounts),
        _requests,
        record=_record,
        hint=lambda error: "cannot reach ledger.example: check the network",
    )

    assert status == 2
    assert backend.tries <= 4  # three failures, and at most one retry under way
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "uitpas-async: stopped: the first 3 calls all failed with ConnectError "
        "(statements.create: cannot connect (ClientConnectorDNSError)); "
        "cannot reach ledger.example: check the network"
    )
    assert "STOPPED" not in err  # no line per account
    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == len(accounts)
    assert {line["state"] for line in lines} == {"failed"}


async def test_an_interrupted_batch_still_writes_what_it_finished(tmp_path: Path) -> None:
    """After Ctrl-C the manifest lists the reports done so far, and main will say so."""
    backend = _HangsAfterOne(LedgerServer(time.monotonic, lambda account: 0.0))
    args = _batch_args(tmp_path)

    with pytest.raises(asyncio.CancelledError):
        await fetch_batch(
            args, _connection(backend, ["first", "second", "third"]), _requests, record=_record
        )

    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [(line["account"], line["state"]) for line in lines] == [("first", "done")]
    assert "1 reports done so far" in args.interrupted
    assert "run the same command again to resume" in args.interrupted


def test_a_wrong_token_secret_stops_at_once_and_names_the_fix(
    cli_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refused credentials for every balie: one line naming whoami and login, exit 2."""
    monkeypatch.setenv("UITPAS_TOKEN", "unknown-token")
    monkeypatch.setenv("UITPAS_TOKEN_SECRET", "wrong-secret")
    balies = [argument for balie in cli_sandbox.balies for argument in ("--balie", balie.key)]
    arguments = ["--base-url", cli_sandbox.base_url, "--period", "2024-Q1", "--out", str(tmp_path)]
    assert main(["reports", "fetch", *balies, *arguments]) == 2
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    # Two balies, both refused: the batch is smaller than the threshold of three.
    assert last.startswith("uitpas-async: stopped: the first 2 calls all failed with Authentic")
    assert "`uitpas-async whoami`" in last
    assert "`uitpas-async login`" in last
    assert "failed " not in out  # no list of identical failures
    assert "wrong-secret" not in out + err


# -- login from a machine without a browser ---------------------------------------------


class _PastingTerminal:
    """Standard input where the user pastes what the browser showed after authorizing."""

    def __init__(self, sandbox: Sandbox, *, paste: str, first: str | None = None) -> None:
        self._sandbox = sandbox
        self._paste = paste
        self._lines = [first] if first is not None else []
        self.reads = 0

    def _authorize(self) -> str:
        """Click Allow on the authorize page, as the user does on the laptop; return where
        the browser ends (the callback it cannot reach)."""
        for _ in range(200):  # the CLI asks for the request token first
            if self._sandbox.tokens.issued():
                break
            time.sleep(0.05)
        token = self._sandbox.tokens.issued()[-1].token
        url = authorize_url(self._sandbox.base_url, token)
        answer = asyncio.run(decide(url, follow=False))
        return answer.headers["Location"]

    def readline(self) -> str:
        self.reads += 1
        if self._lines:
            return self._lines.pop(0)
        location = self._authorize()
        if self._paste == "url":
            return location + "\n"
        return dict(parse_qsl(urlsplit(location).query))["oauth_verifier"] + "\n"

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("paste", ["url", "verifier"])
def test_login_no_browser_takes_the_pasted_callback_or_verifier(
    cli_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    paste: str,
) -> None:
    """Over SSH the browser cannot reach the listener: pasting its address finishes the login."""
    terminal = _PastingTerminal(cli_sandbox, paste=paste, first="not a callback at all\n")
    monkeypatch.setattr("sys.stdin", terminal)
    base = cli_sandbox.base_url
    assert main(["login", "--base-url", base, "--no-browser", "--timeout", "20"]) == 0
    out, err = capsys.readouterr()
    assert "paste the URL" in err
    assert "Not taken: that is neither the callback URL nor a verifier" in err
    assert "credentials saved to" in out
    saved = CredentialStore().load(base)
    assert saved is not None
    [pending] = cli_sandbox.tokens.issued()
    assert pending.verifier is not None
    assert pending.verifier not in out + err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_login_port_fixes_the_callback_port_for_ssh_forwarding(
    cli_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--port N``: the authorization comes back to 127.0.0.1:N, as ``ssh -L N`` forwards."""
    port = _free_port()
    reached: list[int | None] = []

    async def browser(url: str) -> bool:
        redirect = await decide(url, follow=False)
        location = redirect.headers["Location"]
        reached.append(urlsplit(location).port)
        async with aiohttp.ClientSession() as session, session.get(location) as answer:
            assert answer.status == 200
        return True

    monkeypatch.setattr("uitpas_async.cli.login.open_in_browser", browser)
    base = cli_sandbox.base_url
    assert main(["login", "--base-url", base, "--port", str(port), "--timeout", "10"]) == 0
    assert reached == [port]
    assert CredentialStore().load(base) is not None


def test_login_on_a_busy_port_is_one_line_and_exit_2(
    cli_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port another program holds is a usage error naming the port, not a traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        arguments = ["--base-url", cli_sandbox.base_url, "--no-browser", "--port", str(port)]
        assert main(["login", *arguments, "--timeout", "5"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(
        f"uitpas-async: the login callback listener cannot listen on 127.0.0.1:{port}"
    )
    assert "--port" in last


# -- uitpas-async sandbox ---------------------------------------------------------------


@pytest.fixture
def served_sandbox() -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """Run ``uitpas-async sandbox`` on a free port; yield it, its port and its export lines."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "uitpas_async", "sandbox", "--port", str(port), "--balies", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().rstrip("\n") for _ in range(5)]
        yield process, port, lines
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_sandbox_prints_lines_a_shell_exports(
    served_sandbox: tuple[subprocess.Popen[str], int, list[str]],
) -> None:
    """The printed lines are ``export`` statements a shell runs as they are."""
    _, port, lines = served_sandbox
    assert all(line.startswith("export UITPAS_") for line in lines)
    shell = subprocess.run(  # noqa: S603 (lines this test checked start with export)
        ["/bin/sh", "-c", "\n".join(lines) + "\n/bin/sh -c 'echo \"$UITPAS_BASE_URL\"'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert shell.stdout.strip().startswith(f"http://127.0.0.1:{port}/")


def test_a_second_sandbox_on_the_same_port_says_the_port_is_busy(
    served_sandbox: tuple[subprocess.Popen[str], int, list[str]],
) -> None:
    """A busy port reads as a busy port (exit 2), not as "cannot write output"."""
    _, port, _ = served_sandbox
    second = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "uitpas_async", "sandbox", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "cannot write" not in second.stderr
