"""The transactional outbox: an event row written on the caller's connection, inside
its transaction, and nothing else.

Either the business change and its event commit, or neither does. The row is born
pending; the worker's relay (db/relay.py) moves pending events to delivery jobs in
batches. Enqueueing here instead fired PgQueuer's NOTIFY trigger in every business
transaction, and PostgreSQL serialises the commits of transactions that notify. The
event id is derived from the fact (domain.events), so a second write of the same
fact inserts nothing.
"""

from __future__ import annotations

from typing import cast

import asyncpg
import orjson
from pgqueuer.queries import Queries

from ..domain.events import Event
from ..telemetry import request_field
from .pool import PooledConnection

_INSERT = """
INSERT INTO outbox_events (id, type, payload, request_id) VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (id) DO NOTHING
"""


def queue_on(connection: PooledConnection) -> Queries:
    """PgQueuer's queries on this very connection, so an enqueue joins its transaction."""
    return Queries.from_asyncpg_connection(cast("asyncpg.Connection", connection))


async def record(connection: PooledConnection, event: Event) -> bool:
    """Store the event, pending, within the caller's transaction. False when it was
    already recorded (nothing written). The request's id (from the log context) is
    kept with it, so the worker's logs name the request that caused a delivery."""
    request_id = request_field("request_id")
    inserted = await connection.execute(
        _INSERT, event.id, event.type, orjson.dumps(event.payload).decode(), request_id
    )
    return bool(inserted == "INSERT 0 1")
