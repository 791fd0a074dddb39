"""``login --api 4`` through the real CLI: saved owner-only, used by ``reports fetch``, env wins."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from uitpas_async.v4.credential_store import FILE_NAME
from uitpas_async.v4.sandbox import V4Sandbox, V4SandboxConfig

#: A distinctive secret, so any output can be searched for it.
WRONG_SECRET = "wrong-SECRET-7c2e91"
CONFIG = V4SandboxConfig(organizers=2, generation_median=0.05, client_secret="v4-SECRET-3b8f0d")


def _env(**extra: str) -> dict[str, str]:
    """Return the environment of a CLI run: no 4.0 credentials unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UITPAS_CLIENT_",))}
    env.update(extra)
    return env


async def _cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``uitpas-async ARGS`` in a process with no terminal; return its status and output.

    A new session has no controlling terminal, so getpass reads the secret from stdin
    as it does under cron or a pipe.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uitpas_async.cli.main",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env or _env(),
        start_new_session=True,
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


async def _login(sandbox: V4Sandbox, client_id: str, secret: str) -> str:
    status, output = await _cli(
        "login", "--api", "4", "--base-url", sandbox.base_url, stdin=f"{client_id}\n{secret}\n"
    )
    assert status == 0, output
    return output


async def _fetch(
    sandbox: V4Sandbox, out: Path, env: dict[str, str] | None = None
) -> tuple[int, str]:
    return await _cli(
        "reports",
        "fetch",
        "--api",
        "4",
        "--base-url",
        sandbox.base_url,
        "--token-url",
        sandbox.token_url,
        "--organizer",
        sandbox.organizer_ids()[0],
        "--period",
        "2024-Q1",
        "--out",
        str(out),
        env=env,
    )


async def test_login_saves_owner_only_and_fetch_uses_it(
    tmp_path: Path, private_config_dir: Path
) -> None:
    """The id and secret land 0600 in $UITPAS_CONFIG_DIR; a later fetch gets a token with them."""
    async with V4Sandbox(CONFIG) as sandbox:
        login_output = await _login(sandbox, CONFIG.client_id, CONFIG.client_secret)
        path = private_config_dir / FILE_NAME
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        saved = json.loads(path.read_text(encoding="utf-8"))
        assert saved == {
            sandbox.base_url: {"client_id": CONFIG.client_id, "client_secret": CONFIG.client_secret}
        }
        status, fetch_output = await _fetch(sandbox, tmp_path / "out")
        assert status == 0, fetch_output
        assert sandbox.stats.tokens_issued >= 1
        assert sandbox.stats.auth_failures == 0
    lines = (tmp_path / "out" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["state"] for line in lines] == ["done"]
    for output in (login_output, fetch_output):
        assert CONFIG.client_secret not in output


async def test_environment_variables_win_over_saved_credentials(tmp_path: Path) -> None:
    """Saved credentials the server refuses are not used when both variables are set."""
    async with V4Sandbox(CONFIG) as sandbox:
        login_output = await _login(sandbox, CONFIG.client_id, WRONG_SECRET)
        # The saved (wrong) secret alone: refused, and the run stops with one line.
        refused, refused_output = await _fetch(sandbox, tmp_path / "refused")
        assert refused == 2, refused_output
        assert sandbox.stats.auth_failures >= 1
        env = _env(UITPAS_CLIENT_ID=CONFIG.client_id, UITPAS_CLIENT_SECRET=CONFIG.client_secret)
        status, output = await _fetch(sandbox, tmp_path / "out", env)
        assert status == 0, output
    for text in (login_output, refused_output, output):
        assert WRONG_SECRET not in text
        assert CONFIG.client_secret not in text


async def test_login_without_a_secret_saves_nothing(private_config_dir: Path) -> None:
    """Closed stdin before the secret: the command fails and writes no file."""
    async with V4Sandbox(CONFIG) as sandbox:
        status, output = await _cli(
            "login", "--api", "4", "--base-url", sandbox.base_url, stdin="only-an-id\n"
        )
    assert status == 2, output
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith("uitpas-async: no client secret given")
    assert not (private_config_dir / FILE_NAME).exists()


async def test_login_takes_both_variables_when_set(private_config_dir: Path) -> None:
    """With UITPAS_CLIENT_ID and _SECRET set, login saves them and asks nothing."""
    env = _env(UITPAS_CLIENT_ID=CONFIG.client_id, UITPAS_CLIENT_SECRET=CONFIG.client_secret)
    status, output = await _cli("login", "--api", "4", "--base-url", "http://127.0.0.1:9", env=env)
    assert status == 0, output
    saved = json.loads((private_config_dir / FILE_NAME).read_text(encoding="utf-8"))
    assert saved["http://127.0.0.1:9"]["client_secret"] == CONFIG.client_secret
    assert CONFIG.client_secret not in output


@pytest.fixture(autouse=True)
def _no_real_config(private_config_dir: Path) -> None:
    """Every test here must write under the temporary config dir (conftest sets it)."""
    assert os.environ["UITPAS_CONFIG_DIR"] == str(private_config_dir)
