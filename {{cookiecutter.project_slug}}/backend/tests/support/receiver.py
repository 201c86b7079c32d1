"""A webhook receiver: a real HTTP server (uvicorn) in the test's event loop that
records every delivery and answers what the test tells it to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.types import Receive, Scope, Send

from .http_server import serving_over_tcp


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
async def receiving() -> AsyncIterator[Receiver]:
    """A new receiver, served on a free 127.0.0.1 port until the block ends."""
    receiver = Receiver()
    async with serving_over_tcp(receiver) as port:
        receiver.port = port
        yield receiver


async def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)
