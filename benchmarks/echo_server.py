"""A tiny server that answers every GET with one fixed body: the same bytes for row 1's two clients.

Started as ``python -m benchmarks.echo_server``; reads ``{"body": ..., "content_type": ...}``
from stdin and prints ``{"root_url": ...}`` once it listens.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

__all__ = ["main"]


async def _serve(body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type}

    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sys.stdout.write(json.dumps({"root_url": f"http://127.0.0.1:{port}"}) + "\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Serve the body read from stdin until killed."""
    spec = json.loads(sys.stdin.readline())
    asyncio.run(_serve(spec["body"].encode("utf-8"), spec["content_type"]))


if __name__ == "__main__":
    main()
