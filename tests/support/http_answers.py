"""What the service answers, as the tests hold it to: RFC 9457 problems, shedding,
and requests timed from the client's side while something else happens."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

PROBLEM = "application/problem+json"
# Fresh TCP connections, so that every uvicorn worker takes requests.
NO_KEEPALIVE = httpx.Limits(max_connections=200, max_keepalive_connections=0)


def fresh_connections(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An HTTP client to `base_url` that opens a connection per request, sending
    `headers` (a service's auth_headers, say) with each."""
    return httpx.AsyncClient(base_url=base_url, limits=NO_KEEPALIVE, timeout=30, headers=headers)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def assert_shed(response: httpx.Response) -> None:
    """503 problem+json with a Retry-After of whole seconds."""
    assert_problem(response, 503)
    assert re.fullmatch(r"[1-9]\d*", response.headers.get("retry-after", "")), response.headers


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    response: httpx.Response | None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def timed_get(client: httpx.AsyncClient, path: str) -> Outcome:
    started = time.monotonic()
    try:
        response = await client.get(path)
    except httpx.TransportError as error:
        return Outcome(started, time.monotonic(), None, repr(error))
    return Outcome(started, time.monotonic(), response)


async def keep_requesting(
    client: httpx.AsyncClient, path: str, stop: asyncio.Event, outcomes: list[Outcome]
) -> None:
    while not stop.is_set():
        outcomes.append(await timed_get(client, path))
        if outcomes[-1].error:
            await asyncio.sleep(0.05)  # refused: the server is going away
