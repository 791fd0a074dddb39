"""``python -m benchmarks.row1 --instructions``: row 1 in instructions, piece by piece.

CPU time on a shared machine is noisy; callgrind's instruction counts (user space
only) come out the same from run to run. One process runs under callgrind and
makes each kind of call ``--calls`` and then ``2 * --calls`` times, each run
ended by a call of ``os.getppid``, on which callgrind dumps its counters. The
difference of the two runs over ``--calls`` is one call, with everything done
once (imports, warm-up, the kept-alive connection) cancelled out; an empty loop
of the same shape is taken off.

The body is the one the sandbox answers row 1's status call, made by the
sandbox's own state (no server needed) and replayed by
``benchmarks.echo_server``, which runs outside callgrind.

The floor is what must stay on top of the bare GET: xmltodict's parse of the
body, the signature, and signing at each physical send (an aiohttp middleware
that sets the header). A native run of both calls, in alternating rounds, gives
their CPU ratio (noisy) and so what an instruction over the bare GET costs in
CPU; that turns the floor into an estimated CPU ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import xmltodict

from uitpas_async import UitpasClient
from uitpas_async.xml_api import protocol
from uitpas_async.xml_api.sandbox.balies import default_balies
from uitpas_async.xml_api.sandbox.config import SANDBOX_CREDENTIALS, SandboxConfig
from uitpas_async.xml_api.sandbox.state import SandboxState

from .child import END, START, _echo_server
from .runner import SEED

__all__ = ["Piece", "breakdown", "floor", "main", "measure", "per_call", "report_lines"]

#: Calls of each kind in the shorter run (the longer makes twice as many).
DEFAULT_CALLS = 200
#: Calls of each kind before its runs: the connection open, caches and the
#: interpreter's specialisations warm.
WARM_UP_CALLS = 30
#: Native calls of each kind, in alternating rounds, for the CPU ratio.
NATIVE_CALLS, NATIVE_ROUNDS = 4000, 4
#: Balies of the row 1 sandbox (``benchmarks.row1`` starts it so).
BALIES = 3
#: The function on whose every call callgrind dumps its counters; nothing else calls it.
MARKER = "getppid"
#: A fixed ``Authorization`` value, for the kinds that compute no signature.
FIXED_AUTHORIZATION = 'OAuth oauth_signature="x"'
#: The empty loops, each taken off the kinds of its shape.
AWAITED_LOOP, PLAIN_LOOP = "await_nothing", "nothing"
#: The kinds of call, awaited and plain, in the order the child makes them, each
#: shape's empty loop last.
AWAITED_KINDS = ("bare", "signed", "bare_signing", "transport", "pipeline", AWAITED_LOOP)
PLAIN_KINDS = ("xmltodict", "check", "signature", "parse_status", "build_prepare", PLAIN_LOOP)

_ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class Piece:
    """One line of the breakdown: what it counts, and its instructions per call."""

    label: str
    instructions: float
    #: Indentation: 0 for whole calls, 1 for their pieces, 2 for a part of a piece.
    depth: int = 0


# -- the child ---------------------------------------------------------------------------


def _status_answer() -> tuple[bytes, str, str, str]:
    """Return what the row 1 sandbox answers a completed report's status: body, type, id, balie."""
    balies = default_balies(BALIES, SEED)
    moment = [0.0]
    state = SandboxState(
        SandboxConfig(balies=BALIES, seed=SEED),
        balies,
        random.Random(SEED),
        clock=lambda: moment[0],
        wall_clock=lambda: 0.0,
    )
    balie = balies[0].key
    state.create(
        {"balieConsumerKey": balie, "startDate": START.isoformat(), "endDate": END.isoformat()}
    )
    report_id = next(iter(state.reports))
    moment[0] = 1e9  # long past any generation time: the report is complete
    answer = state.status(report_id, {"balieConsumerKey": balie})
    assert answer.status == 200
    assert answer.content_type is not None
    return answer.body, answer.content_type, report_id, balie


Kinds = tuple[dict[str, Callable[[], Awaitable[object]]], dict[str, Callable[[], object]]]


@contextlib.asynccontextmanager
async def _kinds(root_url: str, report_id: str, balie: str) -> AsyncIterator[Kinds]:
    """Yield the awaited and the plain kinds of call, by name, over one client and session."""
    base_url = root_url + SandboxConfig().prefix
    url = f"{base_url}{protocol.REPORT_PATH}/{report_id}/status?balieConsumerKey={balie}"
    async with (
        UitpasClient(base_url, SANDBOX_CREDENTIALS) as client,
        aiohttp.ClientSession() as session,
    ):
        yield await _calls(client, session, url, report_id, balie)


async def _calls(
    client: UitpasClient, session: aiohttp.ClientSession, url: str, report_id: str, balie: str
) -> Kinds:
    """Return the kinds of call, the plain ones on the answer's real headers and body."""
    transport = client._open()
    async with session.get(url) as answer:
        body = await answer.read()
        headers = answer.headers
    request = protocol.build_report_status(report_id, balie)
    _, _, _, authorize = client._prepare(request)
    response = protocol.check_response(200, headers, body, endpoint=request.endpoint)

    async def bare() -> None:
        async with session.get(url) as answer:
            await answer.read()

    async def signed() -> None:
        status = await client.get_financial_report_status(report_id, balie_consumer_key=balie)
        assert status.completed

    async def sign(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        request.headers["Authorization"] = FIXED_AUTHORIZATION
        return await handler(request)

    async def bare_signing() -> None:
        async with session.get(url, middlewares=(sign,)) as answer:
            await answer.read()

    async def send() -> None:
        await transport.send(
            "GET",
            url,
            headers={"Accept": "application/xml"},
            authorize=lambda: FIXED_AUTHORIZATION,
            body=None,
            timeout=client.timeouts.request,
            max_body=protocol.DEFAULT_MAX_XML_BYTES,
            endpoint=request.endpoint,
        )

    async def answered(_: protocol.Request, __: str | None) -> dict[str, Any]:
        return response

    async def pipeline() -> None:
        await client._calls.call(answered, request)

    async def nothing() -> None:
        pass

    awaited: dict[str, Callable[[], Awaitable[object]]] = {
        "bare": bare,
        "signed": signed,
        "bare_signing": bare_signing,
        "transport": send,
        "pipeline": pipeline,
        AWAITED_LOOP: nothing,
    }
    plain: dict[str, Callable[[], object]] = {
        "xmltodict": lambda: xmltodict.parse(body),
        "check": lambda: protocol.check_response(
            200, headers, body, endpoint=request.endpoint, force_list=request.force_list
        ),
        "signature": authorize,
        "parse_status": lambda: protocol.parse_report_status(
            response, report_id, base_url=client.base_url, balie_consumer_key=balie
        ),
        "build_prepare": lambda: client._prepare(protocol.build_report_status(report_id, balie)),
        PLAIN_LOOP: lambda: None,
    }
    return awaited, plain


async def _under_callgrind(root_url: str, report_id: str, balie: str, calls: int) -> None:
    """Make each kind of call warm, then ``calls`` and ``2 * calls`` times, each run marked."""
    async with _kinds(root_url, report_id, balie) as (awaited, plain):
        for name in AWAITED_KINDS:
            for count in (WARM_UP_CALLS, calls, 2 * calls):
                for _ in range(count):
                    await awaited[name]()
                os.getppid()
        for name in PLAIN_KINDS:
            for count in (WARM_UP_CALLS, calls, 2 * calls):
                for _ in range(count):
                    plain[name]()
                os.getppid()


async def _native(root_url: str, report_id: str, balie: str, calls: int) -> dict[str, float]:
    """Return the CPU microseconds of one bare and one signed call, in alternating rounds."""
    cpu = {"bare": 0.0, "signed": 0.0}
    async with _kinds(root_url, report_id, balie) as (awaited, _):
        for name in cpu:
            for _ in range(WARM_UP_CALLS):
                await awaited[name]()
        for _ in range(NATIVE_ROUNDS):
            for name in cpu:
                before = os.times()
                for _ in range(calls // NATIVE_ROUNDS):
                    await awaited[name]()
                after = os.times()
                cpu[name] += after.user - before.user + after.system - before.system
    return {name: seconds / calls * 1e6 for name, seconds in cpu.items()}


def _child(argv: Sequence[str]) -> int:
    """``--child callgrind|native ROOT_URL REPORT_ID BALIE CALLS``: the native run prints JSON."""
    mode, root_url, report_id, balie, calls = argv
    if mode == "callgrind":
        asyncio.run(_under_callgrind(root_url, report_id, balie, int(calls)))
    else:
        print(json.dumps(asyncio.run(_native(root_url, report_id, balie, int(calls)))))
    return 0


# -- the parent --------------------------------------------------------------------------


def _dump_totals(directory: Path) -> list[int]:
    """Return the instructions of each dump callgrind wrote at a marker, in order."""
    numbered = sorted(
        (int(path.suffix[1:]), path)
        for path in directory.glob("cg.out.*")
        if path.suffix[1:].isdigit()
    )
    totals: list[int] = []
    for _, path in numbered:
        with path.open(encoding="utf-8", errors="replace") as lines:
            totals.extend(int(line.split()[1]) for line in lines if line.startswith("totals:"))
    return totals


def per_call(totals: Sequence[int], calls: int) -> dict[str, float]:
    """Return each kind's instructions per call from its three dumps (warm-up, x1, x2).

    Each shape's empty loop is taken off its kinds, and left out.
    """
    order = (*AWAITED_KINDS, *PLAIN_KINDS)
    if len(totals) != 3 * len(order):
        raise RuntimeError(f"{len(totals)} callgrind dumps for {len(order)} kinds, not 3 each")
    raw = {
        name: (totals[3 * index + 2] - totals[3 * index + 1]) / calls
        for index, name in enumerate(order)
    }
    result = {}
    for kinds in (AWAITED_KINDS, PLAIN_KINDS):
        *names, loop = kinds
        result.update({name: raw[name] - raw[loop] for name in names})
    return result


def measure(calls: int = DEFAULT_CALLS) -> tuple[dict[str, float], dict[str, float]]:
    """Return instructions per call by kind (under callgrind), and CPU us per call (native)."""
    body, content_type, report_id, balie = _status_answer()
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT), *([path] if path else [])])}
    child = [sys.executable, "-m", "benchmarks.instructions", "--child"]
    with _echo_server(body.decode("utf-8"), content_type) as root_url:
        args = [root_url, report_id, balie]
        with tempfile.TemporaryDirectory(prefix="row1-callgrind-") as tmp:
            valgrind = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                f"--dump-before={MARKER}",
            ]
            subprocess.run(  # noqa: S603 (valgrind on our own interpreter and module)
                [*valgrind, *child, "callgrind", *args, str(calls)],
                env=env,
                cwd=_ROOT,
                capture_output=True,
                check=True,
            )
            ir = per_call(_dump_totals(Path(tmp)), calls)
        native = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [*child, "native", *args, str(NATIVE_CALLS)],
            env=env,
            cwd=_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    return ir, json.loads(native.stdout.splitlines()[-1])


def breakdown(ir: Mapping[str, float]) -> list[Piece]:
    """Return the lines of the breakdown: both calls, the pieces, and the rest of the call."""
    pieces = [
        Piece("check_response", ir["check"], 1),
        Piece("of which xmltodict.parse", ir["xmltodict"], 2),
        Piece("signature (OAuthSigner.authorization)", ir["signature"], 1),
        Piece("parse_report_status", ir["parse_status"], 1),
        Piece("build_report_status + _prepare", ir["build_prepare"], 1),
        Piece("CallPipeline.call around a no-op send", ir["pipeline"], 1),
        Piece("transport.send, over a bare GET", ir["transport"] - ir["bare"], 1),
        Piece("of which a signing middleware", ir["bare_signing"] - ir["bare"], 2),
    ]
    counted = sum(piece.instructions for piece in pieces if piece.depth == 1)
    return [
        Piece("bare GET (aiohttp)", ir["bare"]),
        Piece("signed status call (get_financial_report_status)", ir["signed"]),
        *pieces,
        Piece("the rest (the client's methods and _send)", ir["signed"] - ir["bare"] - counted, 1),
    ]


def floor(ir: Mapping[str, float]) -> float:
    """Return the instructions a signed status call cannot go below: bare GET and what must stay."""
    return ir["bare"] + ir["xmltodict"] + ir["signature"] + ir["bare_signing"] - ir["bare"]


def report_lines(
    ir: Mapping[str, float], cpu_us: Mapping[str, float] | None, calls: int
) -> list[str]:
    """Return the printed breakdown: each piece per call and over the bare GET, and the floor."""
    bare = ir["bare"]
    lines = [f"row 1 in instructions (callgrind, user space; {2 * calls} - {calls} calls of each)"]
    for piece in breakdown(ir):
        label = "  " * piece.depth + piece.label
        lines.append(
            f"  {label:<56} {piece.instructions / 1000:7.1f}k  {piece.instructions / bare:5.2f}x"
        )
    ratio, lowest = ir["signed"] / bare, floor(ir) / bare
    lines.append(
        f"  signed / bare {ratio:.2f}x; floor (bare GET + xmltodict + signature + signing "
        f"middleware) {floor(ir) / 1000:.1f}k = {lowest:.2f}x"
    )
    if cpu_us is not None:
        cpu_ratio = cpu_us["signed"] / cpu_us["bare"]
        # What the instructions over the bare GET cost in CPU, in bare GETs per bare GET of them.
        scale = (cpu_ratio - 1) / (ratio - 1)
        lines.append(
            f"  natively (noisy): {cpu_us['signed']:.0f} vs {cpu_us['bare']:.0f} us CPU per call, "
            f"{cpu_ratio:.2f}x, so an instruction over the bare GET costs {scale:.2f} of one "
            f"of its own; the floor in CPU is about {1 + scale * (lowest - 1):.2f}x"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Print row 1's instruction breakdown, or say that valgrind is missing."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        return _child(args[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="calls in the shorter run")
    options = parser.parse_args(args)
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH: no instruction breakdown of row 1")
        return 0
    ir, cpu_us = measure(options.calls)
    print("\n".join(report_lines(ir, cpu_us, options.calls)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
