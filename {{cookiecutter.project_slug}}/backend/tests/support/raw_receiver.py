"""A receiver written at the socket level, to misbehave as no well-behaved server
can: it trickles its answer a byte at a time, or streams a body without end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Answering = Callable[[asyncio.StreamWriter], Awaitable[None]]
STEP_SECONDS = 0.1


async def trickle(writer: asyncio.StreamWriter) -> None:
    """A status line, then one header byte every STEP_SECONDS: every read succeeds."""
    writer.write(b"HTTP/1.1 200 OK\r\nx-slow: ")
    while True:
        await asyncio.sleep(STEP_SECONDS)
        writer.write(b"x")
        await writer.drain()


async def endless_body(writer: asyncio.StreamWriter) -> None:
    """200 at once, then a chunked body that never ends."""
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    chunk = b"x" * 65_536
    while True:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()


@asynccontextmanager
async def misbehaving(answer: Answering) -> AsyncIterator[str]:
    """The URL of a receiver on a free 127.0.0.1 port that reads the request's head
    and then answers with `answer`, until the block ends."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: what the tests expect of it
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        server.close()
