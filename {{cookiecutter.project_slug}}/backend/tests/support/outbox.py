"""Helpers for the relay tests: a pool on the test's database, pending events
written as the business code writes them, and what the relay left behind."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import orjson

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db import webhooks
from {{ cookiecutter.package_name }}.db.pool import Database
from {{ cookiecutter.package_name }}.domain.events import PING

from .webhooks import fetch

T = TypeVar("T")
URL = "https://receiver.example/hook"
# A pending event, as a business statement writes one beside its fact: its id the
# column's default (migration 0007).
_RECORD = "INSERT INTO outbox_events (type, payload) VALUES ($1, $2::jsonb) RETURNING id"


@asynccontextmanager
async def opened(settings: Settings, max_size: int = 8) -> AsyncIterator[Database]:
    pool = settings.database.pool.model_copy(update={"min_size": 1, "max_size": max_size})
    database = await Database.open(
        settings.database.model_copy(update={"pool": pool}), "test-relay"
    )
    try:
        yield database
    finally:
        await database.close()


async def subscribed_events(database: Database, count: int, subscriptions: int = 1) -> set[str]:
    """`subscriptions` subscriptions to webhook.ping (a receiver never called here),
    then `count` pending webhook.ping events, each written in a transaction of its
    own as a business change writes its event; returns their ids."""
    for _ in range(subscriptions):
        await webhooks.create_subscription(database, URL, "whsec_x", [PING])
    ids: set[str] = set()
    for _ in range(count):
        payload = orjson.dumps({"n": len(ids)}).decode()
        async with database.connection() as connection:
            ids.add(str(await connection.fetchval(_RECORD, PING, payload)))
    return ids


async def pending(database_url: str) -> set[str]:
    rows = await fetch(database_url, "SELECT id FROM outbox_events WHERE NOT relayed")
    return {str(row["id"]) for row in rows}


async def delivery_jobs(database_url: str) -> Counter[str]:
    """Delivery jobs by event id: each event's count of jobs enqueued."""
    rows = await fetch(
        database_url,
        "SELECT convert_from(payload, 'UTF8')::jsonb->>'event_id' AS event_id FROM pgqueuer",
    )
    return Counter(row["event_id"] for row in rows)


async def until_equal(
    probe: Callable[[], Awaitable[T]], expected: T, what: str, seconds: float = 20.0
) -> None:
    """Poll `probe` until it returns `expected` (a worker process works meanwhile)."""
    deadline = time.monotonic() + seconds
    while (found := await probe()) != expected:
        assert time.monotonic() < deadline, f"not within {seconds} s: {what} ({found!r})"
        await asyncio.sleep(0.05)
