"""Helpers for the webhook tests: subscribe through the API, queue pings, and look
at deliveries and PgQueuer's jobs in the database."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from .receiver import Receiver


async def subscribe(
    client: httpx.AsyncClient, receiver: Receiver, event_types: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-subscriptions",
        json={"url": receiver.url, "event_types": event_types or ["webhook.ping"]},
    )
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


async def ping(client: httpx.AsyncClient, subscription_id: int, times: int = 1) -> None:
    async def one() -> None:
        response = await client.post(f"/v1/webhook-subscriptions/{subscription_id}/ping")
        assert response.status_code == 202, response.text

    await asyncio.gather(*(one() for _ in range(times)))


async def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def event_ids(database_url: str) -> set[str]:
    return {str(row["id"]) for row in await fetch(database_url, "SELECT id FROM outbox_events")}


async def delivery_states(database_url: str) -> dict[str, int]:
    rows = await fetch(
        database_url, "SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status"
    )
    return {row["status"]: row["n"] for row in rows}


async def settled(database_url: str, expected: dict[str, int], seconds: float = 10.0) -> None:
    """Wait until the deliveries' states are `expected`: the receiver has an event a
    moment before the worker records that it was delivered."""
    deadline = time.monotonic() + seconds
    while (states := await delivery_states(database_url)) != expected:
        assert time.monotonic() < deadline, f"deliveries {states}, not {expected}"
        await asyncio.sleep(0.1)


async def jobs_by_status(database_url: str) -> dict[str, int]:
    rows = await fetch(database_url, "SELECT status::text, count(*) AS n FROM pgqueuer GROUP BY 1")
    return {row["status"]: row["n"] for row in rows}
