"""The transactional outbox: an event row and the job that fans it out to webhook
subscriptions, both written on the caller's connection, inside its transaction.

Either the business change, its event and the job all commit, or none does: the
job is enqueued exactly once per event without a relay polling the outbox. The
event id is derived from the fact (domain.events), so a second write of the same
fact inserts nothing and enqueues nothing.
"""

from __future__ import annotations

from typing import cast

import asyncpg
import orjson
import structlog
from pgqueuer.queries import Queries

from ..domain.events import Event
from .pool import PooledConnection

# The job that turns one event into one delivery job per matching subscription.
FAN_OUT = "webhooks.fan_out"
REQUEST_ID_HEADER = "request_id"

_INSERT = """
INSERT INTO outbox_events (id, type, payload, request_id) VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (id) DO NOTHING
"""


def queue_on(connection: PooledConnection) -> Queries:
    """PgQueuer's queries on this very connection, so an enqueue joins its transaction."""
    return Queries.from_asyncpg_connection(cast("asyncpg.Connection", connection))


async def record(connection: PooledConnection, event: Event) -> bool:
    """Store the event and enqueue its fan-out, within the caller's transaction.
    False when the event was already recorded (nothing written). The request's id
    (from the log context) travels with the job, so the worker's logs name it."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    inserted = await connection.execute(
        _INSERT, event.id, event.type, orjson.dumps(event.payload).decode(), request_id
    )
    if inserted != "INSERT 0 1":
        return False
    headers = {REQUEST_ID_HEADER: str(request_id)} if request_id else None
    await queue_on(connection).enqueue(FAN_OUT, event.id.bytes, headers=headers)
    return True
