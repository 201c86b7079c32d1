"""A webhook receiver: a real HTTP server (uvicorn) in the test's event loop that
records every delivery and answers what the test tells it to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from .http_server import free_port

STARTUP_SECONDS = 10.0


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    port: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    # The status to answer for each delivery; 200 by default.
    answer: Callable[[Delivery], int] = lambda _: 200
    delay_seconds: float = 0.0
    in_flight: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def ids(self) -> set[str]:
        return {delivery.webhook_id for delivery in self.deliveries}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        delivery = Delivery(headers, body, time.monotonic())
        self.in_flight += 1
        try:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            status = self.answer(delivery)
            self.deliveries.append(delivery)
        finally:
            self.in_flight -= 1
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def receiving(receiver: Receiver | None = None) -> AsyncIterator[Receiver]:
    """Serve `receiver` (a new one if None) on a free 127.0.0.1 port until the block ends."""
    receiver = receiver or Receiver()
    receiver.port = receiver.port or free_port()
    config = uvicorn.Config(
        receiver, host="127.0.0.1", port=receiver.port, lifespan="off", log_config=None,
        access_log=False, loop="asyncio", timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        assert not task.done(), "the receiver stopped"
        assert time.monotonic() < deadline, "the receiver did not start"
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


async def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)
