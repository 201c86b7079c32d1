"""The app served by a real uvicorn server in the test's event loop, and raw
HTTP/1.1 over one TCP connection: what a keep-alive client sees."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

STARTUP_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def serving_over_tcp(app: ASGIApp) -> AsyncIterator[int]:
    """Serve `app` (its lifespan, if any, already entered by the caller) on a free port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), lifespan="off", log_config=None,
        access_log=False, loop="asyncio",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        assert not task.done(), "the server stopped"
        assert time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield config.port
    finally:
        server.should_exit = True
        await task


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """GET `path` on an open connection; the response's status, headers and body."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write("\r\n".join([*lines, "", ""]).encode("latin-1"))
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head.strip().split("\r\n")
    received = {name.lower(): value for name, value in (h.split(": ", 1) for h in header_lines)}
    body = await reader.readexactly(int(received.get("content-length", "0")))
    return int(status_line.split()[1]), received, body
