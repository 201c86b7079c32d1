"""The transactional outbox: what a business write needs to record its event.

A write inserts its event row (outbox_events) in the same statement as its fact, one
CTE more, so either both commit or neither does, at no extra round trip{% if cookiecutter.example_domain == "ledger" %} (db/transfers.py's
_WRITE){% endif %}:

    WITH fact AS (INSERT INTO ... RETURNING ...), event AS (
        INSERT INTO outbox_events (type, request_id, payload)
        SELECT $1, $2, jsonb_build_object('id', id, ...) FROM fact
    )
    SELECT ... FROM fact

with the event's type and request_id() as parameters; the id is the column's
default, time-ordered (migration 0007), so its index entries append. The row is born pending; the
worker's relay (db/relay.py) moves pending events to delivery jobs in batches.
Enqueueing in the business transaction instead fired PgQueuer's NOTIFY
trigger in each one, and PostgreSQL serialises the commits of transactions that notify.
"""

from __future__ import annotations

from typing import cast

import asyncpg
from pgqueuer.queries import Queries

from ..telemetry import request_field
from .pool import PooledConnection


def queue_on(connection: PooledConnection) -> Queries:
    """PgQueuer's queries on this very connection, so an enqueue joins its transaction."""
    return Queries.from_asyncpg_connection(cast("asyncpg.Connection", connection))


def request_id() -> str | None:
    """The id of the request being served (from the log context), stored with its
    events so the worker's logs name the request that caused a delivery."""
    found: str | None = request_field("request_id")
    return found
