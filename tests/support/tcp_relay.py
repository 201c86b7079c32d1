"""A TCP relay to the database that records what each client connection sends first:
PostgreSQL's StartupMessage, and so the session settings a pool asks for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from .ports import free_port


class StartupRecorder:
    """Relays 127.0.0.1:<port> to the database and keeps the first bytes each client
    connection sends: PostgreSQL's StartupMessage, which carries the session settings
    (asyncpg's server_settings). Runs its own event loop in a thread."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.openings: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> StartupRecorder:
        self._thread.start()
        assert self._ready.wait(10), "the relay did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _relay(self, client: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.openings.append(b"")
        index = len(self.openings) - 1

        def record(data: bytes) -> None:
            if len(self.openings[index]) < 4096:
                self.openings[index] += data

        await asyncio.gather(
            _pipe(client, server_out, record), _pipe(server, client_out), return_exceptions=True
        )


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    tap: Callable[[bytes], None] | None = None,
) -> None:
    """Copy until end of stream, then close the other side: a peer that waits for
    the connection to close (asyncpg after its Terminate message) sees it close."""
    try:
        while data := await reader.read(65536):
            if tap is not None:
                tap(data)
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def startup_parameters(opening: bytes) -> dict[str, str]:
    """The parameters of the StartupMessage (protocol 3.0) in a connection's first
    bytes, after the optional 8-byte SSLRequest (which the cluster declines)."""
    protocol_3 = (3 << 16).to_bytes(4, "big")
    start = opening.find(protocol_3)
    assert start >= 4, f"no StartupMessage in {opening!r}"
    length = int.from_bytes(opening[start - 4 : start], "big")
    fields = opening[start + 4 : start - 4 + length].split(b"\0")
    pairs = zip(fields[0::2], fields[1::2], strict=False)
    return {name.decode(): value.decode() for name, value in pairs if name}
