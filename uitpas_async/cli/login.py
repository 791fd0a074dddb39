"""``uitpas-async login``, ``logout`` and ``whoami``: get, forget and show the credentials in use.

``login`` runs the three-legged OAuth flow (:func:`uitpas_async.xml_api.login.login`)
and saves the access token, with the consumer key and secret, for the selected
environment (:mod:`uitpas_async.xml_api.credential_store`). Every other command picks
the saved credentials up when the ``UITPAS_*`` variables are not all set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
import threading
from datetime import datetime, timezone
from typing import Any

from uitpas_async.cli import v4
from uitpas_async.cli.args import port_number, positive_seconds
from uitpas_async.cli.output import EXIT_FAILED, EXIT_OK, print_json, say
from uitpas_async.cli.target import base_url_of
from uitpas_async.engine.errors import ConfigurationError
from uitpas_async.xml_api.credential_store import (
    CredentialStore,
    StoredLogin,
    environment_name,
    resolve_credentials,
)
from uitpas_async.xml_api.login import (
    DEFAULT_LOGIN_TIMEOUT,
    AccessToken,
    ReadPasted,
    login,
    open_in_browser,
)
from uitpas_async.xml_api.models import (
    CREDENTIAL_VARIABLES,
    ENVIRONMENTS,
    Consumer,
    Credentials,
    mask,
)

__all__ = ["add_commands"]

CONSUMER_KEY_VARIABLE, CONSUMER_SECRET_VARIABLE = CREDENTIAL_VARIABLES[:2]


def _label(base_url: str) -> str:
    """Return ``test`` for a public environment's URL, else the URL itself."""
    return environment_name(base_url) or base_url.rstrip("/")


def _short(key: str) -> str:
    """Return a consumer key cut to its first characters, enough to recognise it."""
    return key if len(key) <= 12 else key[:8] + "…"


def _ask(prompt: str, *, secret: bool) -> str:
    """Prompt on the terminal (the secret without echo); refuse when there is no terminal."""
    if not sys.stdin.isatty():
        raise ConfigurationError(
            f"set {CONSUMER_KEY_VARIABLE} and {CONSUMER_SECRET_VARIABLE}: "
            "there is no terminal to ask for them"
        )
    if secret:
        return getpass.getpass(prompt).strip()
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline().strip()


def consumer_from_env_or_prompt() -> Consumer:
    """Return the consumer key and secret from the environment, or ask for them."""
    key = os.environ.get(CONSUMER_KEY_VARIABLE) or _ask("Consumer key: ", secret=False)
    secret = os.environ.get(CONSUMER_SECRET_VARIABLE) or _ask(
        "Consumer secret (hidden): ", secret=True
    )
    if not key or not secret:
        raise ConfigurationError("the consumer key and secret must not be empty")
    return Consumer(key, secret)


def _env_credentials_set() -> bool:
    return all(os.environ.get(name) for name in CREDENTIAL_VARIABLES)


async def _open_or_tell(url: str) -> bool:
    opened = await open_in_browser(url)
    if not opened:
        say("No browser could be opened here: open the URL above on any machine.", err=True)
    return opened


async def _read_line() -> str:
    """Read one line of standard input without blocking the loop ("" at its end).

    A daemon thread reads, so a login the callback finishes first does not wait for
    input that never comes (nor does the process's exit).
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not answer.done():
            answer.set_result(line)

    def run() -> None:
        try:
            line = sys.stdin.readline()
        except (OSError, ValueError, AttributeError):  # closed, or captured by a test runner
            line = ""
        with contextlib.suppress(RuntimeError):  # the loop may be gone by now
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=run, name="uitpas-read-paste", daemon=True).start()
    return await answer


def _paste_reader() -> ReadPasted:
    """Return what ``login`` calls to read the pasted callback URL or verifier."""

    async def read(refused: str | None) -> str | None:
        if refused is not None:
            say(f"Not taken: {refused}. Paste the whole URL from the address bar:", err=True)
        line = await _read_line()
        return line or None

    return read


async def _run_flow(args: argparse.Namespace, base_url: str, consumer: Consumer) -> AccessToken:
    port = getattr(args, "port", None) or 0

    def show(url: str) -> None:
        say("Open this URL in a browser and authorize the application:", err=True)
        say(f"  {url}", err=True)
        if args.no_browser:
            if port:
                say(
                    f"With `ssh -L {port}:127.0.0.1:{port} THIS-HOST` on the machine with the "
                    "browser, the authorization comes back by itself. Otherwise:",
                    err=True,
                )
            say(
                "If the browser then cannot reach 127.0.0.1 (an error page), paste the URL "
                "from its address bar here (or the oauth_verifier) and press Enter:",
                err=True,
            )
        say(f"Waiting up to {args.timeout:g} s for the authorization (Ctrl-C cancels)…", err=True)

    opener = None if args.no_browser else _open_or_tell
    return await login(
        base_url,
        consumer,
        open_browser=opener,
        show_url=show,
        timeout=args.timeout,
        port=port,
        read_pasted=_paste_reader() if args.no_browser else None,
    )


async def _cmd_login(args: argparse.Namespace) -> int:
    if v4.uses_v4(args):
        return await v4.cmd_login(args)
    if args.sandbox is not None:
        return await _login_sandbox(args)
    base_url = base_url_of(args)
    consumer = consumer_from_env_or_prompt()
    say(f"Logging in to {_label(base_url)} with consumer key {_short(consumer.key)}", err=True)
    access = await _run_flow(args, base_url, consumer)
    store = CredentialStore()
    saved = StoredLogin(
        base_url,
        consumer.credentials(access.token, access.secret),
        access.user_id,
        datetime.now(timezone.utc),
    )
    path = store.save(saved)
    who = f" as user {access.user_id}" if access.user_id else ""
    say(
        f"Logged in to {_label(base_url)}{who} with consumer key {_short(consumer.key)}; "
        f"credentials saved to {path}"
    )
    if _env_credentials_set():
        say("note: the UITPAS_* environment variables are set and take precedence", err=True)
    return EXIT_OK


async def _login_sandbox(args: argparse.Namespace) -> int:
    from uitpas_async.xml_api.client import UitpasClient
    from uitpas_async.xml_api.sandbox import Sandbox, SandboxConfig

    async with Sandbox(SandboxConfig(balies=1)) as sandbox:
        consumer = Consumer(sandbox.credentials.consumer_key, sandbox.credentials.consumer_secret)
        say(f"sandbox: {sandbox.base_url}", err=True)
        access = await _run_flow(args, sandbox.base_url, consumer)
        credentials = consumer.credentials(access.token, access.secret)
        balie = sandbox.balies[0].key
        async with UitpasClient(sandbox.base_url, credentials) as client:
            periods = await client.get_financial_report_periods(balie_consumer_key=balie)
    say(
        f"Logged in to the sandbox as user {access.user_id}; the access token works "
        f"({len(periods)} periods for balie {balie}). Not saved: the sandbox ends with "
        "this command."
    )
    return EXIT_OK


def _nothing_for_sandbox(args: argparse.Namespace) -> bool:
    if args.sandbox is None:
        return False
    say("The sandbox uses its built-in credentials; nothing is saved for it.")
    return True


async def _cmd_logout(args: argparse.Namespace) -> int:
    if _nothing_for_sandbox(args):
        return EXIT_OK
    base_url = base_url_of(args)
    store = CredentialStore()
    if store.remove(base_url):
        say(f"Logged out of {_label(base_url)}: removed its credentials from {store.path}")
    else:
        say(f"Not logged in to {_label(base_url)}: no saved credentials in {store.path}")
    if _env_credentials_set():
        say("note: the UITPAS_* environment variables are still set and still used", err=True)
    return EXIT_OK


def _describe(credentials: Credentials) -> list[str]:
    return [
        f"consumer key: {credentials.consumer_key}",
        "consumer secret: ***",
        f"token: {mask(credentials.token)}",
        "token secret: ***",
    ]


def _whoami_data(
    environment: str, base_url: str, source: str, credentials: Credentials, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "environment": environment,
        "base_url": base_url,
        "source": source,
        "consumer_key": credentials.consumer_key,
        "token": mask(credentials.token),
        **extra,
    }


async def _cmd_whoami(args: argparse.Namespace) -> int:
    if args.sandbox is not None:
        from uitpas_async.xml_api.sandbox import SANDBOX_CREDENTIALS

        if args.json:
            print_json(_whoami_data("sandbox", "", "built-in", SANDBOX_CREDENTIALS, {}))
            return EXIT_OK
        say("environment: in-process sandbox (built-in credentials)")
        for line in _describe(SANDBOX_CREDENTIALS):
            say(line)
        return EXIT_OK
    base_url = base_url_of(args)
    name = environment_name(base_url)
    store = CredentialStore()
    try:
        resolved = resolve_credentials(base_url, store=store)
    except ConfigurationError:
        login_hint = f"--env {name}" if name else f"--base-url {base_url}"
        say(
            f"Not logged in to {_label(base_url)}: run `uitpas-async login {login_hint}` "
            "or set the UITPAS_* variables",
            err=True,
        )
        return EXIT_FAILED
    saved = resolved.stored
    if args.json:
        extra: dict[str, Any] = {"store": str(store.path)}
        if saved is not None:
            extra["user_id"] = saved.user_id
            extra["saved_at"] = saved.saved_at.isoformat() if saved.saved_at else None
        source = "login" if saved is not None else "environment"
        print_json(
            _whoami_data(
                name or "custom", base_url.rstrip("/"), source, resolved.credentials, extra
            )
        )
        return EXIT_OK
    say(f"environment: {name or 'custom'} ({base_url.rstrip('/')})")
    if saved is not None:
        when = f", {saved.saved_at:%Y-%m-%d %H:%M} UTC" if saved.saved_at else ""
        say(f"credentials: saved by `uitpas-async login` in {store.path}{when}")
        if saved.user_id:
            say(f"user id: {saved.user_id}")
    else:
        say("credentials: the UITPAS_* environment variables")
        if store.load(base_url) is not None:
            say(f"  (they override the credentials saved in {store.path})")
    for line in _describe(resolved.credentials):
        say(line)
    return EXIT_OK


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``login``, ``logout`` and ``whoami`` to the command parser."""
    environments = ", ".join(sorted(ENVIRONMENTS))

    login_parser = commands.add_parser(
        "login",
        parents=[common],
        help="log in as a balie employee and save the access token",
        description="Get a user access token with the three-legged OAuth flow: a one-shot "
        "listener on 127.0.0.1 receives the authorization, and the token is saved (mode "
        "0600) for the environment, for every other command to use. The consumer key and "
        f"secret come from {CONSUMER_KEY_VARIABLE} and {CONSUMER_SECRET_VARIABLE}, or are "
        f"asked for. Environments: {environments}, or --base-url.\n\n"
        "On a server without a browser: run with --no-browser, open the URL on any "
        "machine, and paste the address the browser ends on; or forward the callback "
        "with `ssh -L 8765:127.0.0.1:8765 server` and run with --no-browser --port 8765.",
        epilog="examples:\n  uitpas-async login --env prod\n"
        "  uitpas-async login --env prod --no-browser --port 8765\n",
    )
    login_parser.add_argument(
        "--no-browser",
        action="store_true",
        help="open no browser: print the authorize URL, and take the callback URL (or the "
        "verifier) pasted on the terminal, for a login over SSH",
    )
    login_parser.add_argument(
        "--port",
        type=port_number,
        metavar="N",
        help="listen for the callback on 127.0.0.1:N, for `ssh -L N:127.0.0.1:N` "
        "(default: any free port)",
    )
    login_parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_LOGIN_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the authorization (default {DEFAULT_LOGIN_TIMEOUT:g})",
    )
    v4.add_api_arguments(login_parser)
    login_parser.set_defaults(handler=_cmd_login)

    logout = commands.add_parser(
        "logout",
        parents=[common],
        help="remove the saved credentials of the environment",
        description="Remove what `uitpas-async login` saved for the environment.",
        epilog="example:\n  uitpas-async logout --env prod\n",
    )
    logout.set_defaults(handler=_cmd_logout)

    whoami = commands.add_parser(
        "whoami",
        parents=[common],
        help="show the environment and consumer key in use (secrets masked)",
        description="Show which environment a command would use, where its credentials "
        "come from, and the consumer key; secrets are masked.",
        epilog="examples:\n  uitpas-async whoami --env prod\n  uitpas-async whoami --json\n",
    )
    whoami.add_argument("--json", action="store_true", help="print it as JSON (secrets masked)")
    whoami.set_defaults(handler=_cmd_whoami)
