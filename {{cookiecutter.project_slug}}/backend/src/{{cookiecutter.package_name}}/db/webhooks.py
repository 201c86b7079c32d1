"""Webhook subscriptions, each delivery's state and its job (the relay, db/relay.py,
fans events out to them), and the dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from ..domain.events import Event, EventId
from ..domain.webhooks import DeadLetter, Subscription, SubscriptionId
from .outbox import queue_on
from .pool import Database, PooledConnection

DELIVER = "webhooks.deliver"

_INSERT = """
INSERT INTO webhook_subscriptions (url, secret, event_types) VALUES ($1, $2, $3)
RETURNING id, url, secret, event_types, enabled
"""
_GET = "SELECT id, url, secret, event_types, enabled FROM webhook_subscriptions WHERE id = $1"
_LIST = "SELECT id, url, secret, event_types, enabled FROM webhook_subscriptions ORDER BY id"
_DELETE = "DELETE FROM webhook_subscriptions WHERE id = $1"
_DISABLE = """
UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2 WHERE id = $1
"""
_EVENT = "SELECT id, type, payload, request_id FROM outbox_events WHERE id = $1"
_DELIVERY = """
SELECT status, attempts FROM webhook_deliveries
WHERE event_id = $1 AND subscription_id = $2 FOR UPDATE
"""
_ATTEMPTED = """
UPDATE webhook_deliveries
SET status = $3, attempts = attempts + 1, last_status_code = $4, last_error = $5,
    updated_at = now()
WHERE event_id = $1 AND subscription_id = $2
RETURNING attempts
"""
_ABANDON = """
UPDATE webhook_deliveries SET status = 'abandoned', updated_at = now()
WHERE event_id = $1 AND subscription_id = $2
"""
_DEAD_LETTERS = """
SELECT d.event_id, d.subscription_id, e.type, d.attempts, d.last_status_code,
    d.last_error, d.updated_at
FROM webhook_deliveries AS d JOIN outbox_events AS e ON e.id = d.event_id
WHERE d.status = 'dead' AND ($1::bigint IS NULL OR d.subscription_id = $1)
ORDER BY d.updated_at DESC LIMIT $2
"""

_QUEUE_FIGURES = """
SELECT count(*) AS depth,
    coalesce(extract(epoch FROM now() - min(execute_after) FILTER (
        WHERE execute_after <= now())), 0) AS oldest_due_seconds,
    (SELECT count(*) FROM outbox_events WHERE NOT relayed) AS pending_events,
    (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)
        FROM outbox_events WHERE NOT relayed) AS oldest_pending_seconds
FROM pgqueuer WHERE status = 'queued'
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event: Event
    request_id: str | None


@dataclass(frozen=True, slots=True)
class QueueFigures:
    jobs: int  # waiting, due or deferred
    oldest_due_seconds: float
    pending_events: int  # not moved to jobs by the relay yet
    oldest_pending_seconds: float


@dataclass(frozen=True, slots=True)
class Delivery:
    status: str
    attempts: int


def subscription_from(row: asyncpg.Record) -> Subscription:
    return Subscription(
        id=SubscriptionId(row["id"]),
        url=row["url"],
        secret=row["secret"],
        event_types=tuple(row["event_types"]),
        enabled=row["enabled"],
    )


async def create_subscription(
    database: Database, url: str, secret: str, event_types: list[str]
) -> Subscription:
    async with database.connection() as connection:
        (row,) = await connection.fetch(_INSERT, url, secret, event_types)
    return subscription_from(row)


async def get_subscription(
    database: Database, subscription_id: SubscriptionId
) -> Subscription | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(_GET, subscription_id)
    return None if row is None else subscription_from(row)


async def list_subscriptions(database: Database) -> list[Subscription]:
    async with database.connection() as connection:
        rows = await connection.fetch(_LIST)
    return [subscription_from(row) for row in rows]


async def delete_subscription(database: Database, subscription_id: SubscriptionId) -> bool:
    async with database.connection() as connection:
        return bool(await connection.execute(_DELETE, subscription_id) == "DELETE 1")


async def disable_subscription(
    database: Database, subscription_id: SubscriptionId, reason: str
) -> None:
    async with database.connection() as connection:
        await connection.execute(_DISABLE, subscription_id, reason)


async def load_event(database: Database, event_id: EventId) -> StoredEvent | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(_EVENT, event_id)
    if row is None:
        return None
    payload: dict[str, Any] = orjson.loads(row["payload"])
    return StoredEvent(Event(EventId(row["id"]), row["type"], payload), row["request_id"])


def delivery_payload(event_id: EventId, subscription_id: int) -> bytes:
    return orjson.dumps({"event_id": str(event_id), "subscription_id": subscription_id})


async def ping(database: Database, event: Event, subscription_id: SubscriptionId) -> None:
    """An event for one subscription only, whatever types it wants: stored (relayed
    already, so the relay fans it out to no other subscription), its delivery row
    and job written in one transaction."""
    async with database.connection() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO outbox_events (id, type, payload, relayed)"
            " VALUES ($1, $2, $3::jsonb, true)",
            event.id,
            event.type,
            orjson.dumps(event.payload).decode(),
        )
        await connection.execute(
            "INSERT INTO webhook_deliveries (event_id, subscription_id) VALUES ($1, $2)",
            event.id,
            subscription_id,
        )
        await queue_on(connection).enqueue(DELIVER, delivery_payload(event.id, subscription_id))


async def lock_delivery(
    connection: PooledConnection, event_id: EventId, subscription_id: SubscriptionId
) -> Delivery | None:
    row = await connection.fetchrow(_DELIVERY, event_id, subscription_id)
    return None if row is None else Delivery(row["status"], row["attempts"])


async def record_attempt(
    connection: PooledConnection,
    event_id: EventId,
    subscription_id: SubscriptionId,
    *,
    status: str,
    status_code: int | None,
    error: str | None,
) -> int:
    """The attempt's outcome; returns the attempts made so far."""
    attempts: int = await connection.fetchval(
        _ATTEMPTED, event_id, subscription_id, status, status_code, error
    )
    return attempts


async def abandon(
    connection: PooledConnection, event_id: EventId, subscription_id: SubscriptionId
) -> None:
    await connection.execute(_ABANDON, event_id, subscription_id)


async def queue_figures(database: Database) -> QueueFigures:
    async with database.connection() as connection:
        (row,) = await connection.fetch(_QUEUE_FIGURES)
    return QueueFigures(
        jobs=int(row["depth"]),
        oldest_due_seconds=float(row["oldest_due_seconds"]),
        pending_events=int(row["pending_events"]),
        oldest_pending_seconds=float(row["oldest_pending_seconds"]),
    )


async def dead_letters(
    database: Database, subscription_id: SubscriptionId | None, limit: int
) -> list[DeadLetter]:
    async with database.connection() as connection:
        rows = await connection.fetch(_DEAD_LETTERS, subscription_id, limit)
    return [
        DeadLetter(
            event_id=row["event_id"],
            subscription_id=row["subscription_id"],
            event_type=row["type"],
            attempts=row["attempts"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            failed_at=row["updated_at"],
        )
        for row in rows
    ]
