"""The outbox relay's database side: move a batch of pending events to delivery
jobs, and delete what retention no longer keeps.

One transaction per batch claims pending events (`FOR UPDATE SKIP LOCKED`, so relays
in several worker replicas take disjoint batches), writes one delivery row per
matching subscription, enqueues their jobs through PgQueuer's own API (one INSERT:
one NOTIFY for the batch) and marks the events relayed. A crash before the commit
leaves every event of the batch pending, with no row and no job: nothing is lost and
nothing is enqueued twice, so no lease is needed for the move itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from .outbox import queue_on
from .pool import Database, PooledConnection
from .webhooks import DELIVER, delivery_payload

REQUEST_ID_HEADER = "request_id"

# Claimed oldest first (index outbox_events_pending), marked through the primary key:
# joined to the claimed rows instead, the planner guessed a large batch and hashed a
# sequential scan of the whole table, each batch (tens of thousands of events, stats
# fresh or not; README "Background worker"). The deliveries of a batch come
# back with each event's request id, for the job's headers. ON CONFLICT: a delivery
# written by a ping (or an earlier relay of a pre-0005 event) is not written again.
# $1 bounds the delivery jobs of a batch, not only its events: as many events are
# claimed as fit when each fans out to the most subscriptions any type has (one at
# least). 500 events x 1,000 subscriptions in one statement outlasted the 5 s
# statement_timeout, and the relay retried that same batch forever.
_MOVE = """
WITH fan_out AS (
    SELECT count(*) AS subscriptions FROM webhook_subscriptions, unnest(event_types) AS t
    WHERE enabled GROUP BY t ORDER BY 1 DESC LIMIT 1
), batch AS (
    SELECT greatest(1, $1 / greatest(1, (SELECT subscriptions FROM fan_out))) AS events
), claimed AS (
    SELECT id, type, request_id FROM outbox_events
    WHERE NOT relayed ORDER BY created_at LIMIT (SELECT events FROM batch)
    FOR UPDATE SKIP LOCKED
), marked AS (
    UPDATE outbox_events SET relayed = true WHERE id = ANY (ARRAY(SELECT id FROM claimed))
), deliveries AS (
    INSERT INTO webhook_deliveries (event_id, subscription_id)
    SELECT claimed.id, s.id FROM claimed
    JOIN webhook_subscriptions AS s ON s.enabled AND claimed.type = ANY (s.event_types)
    ON CONFLICT DO NOTHING
    RETURNING event_id, subscription_id
)
-- One row per claimed event, or per delivery written for it.
SELECT c.id AS event_id, d.subscription_id, c.request_id, (SELECT events FROM batch) AS room
FROM claimed AS c LEFT JOIN deliveries AS d ON d.event_id = c.id
"""
# Events older than the retention with no delivery still pending (their delivery
# rows go with them, ON DELETE CASCADE), a batch at a time.
_EXPIRE_EVENTS = """
DELETE FROM outbox_events WHERE id IN (
    SELECT e.id FROM outbox_events AS e
    WHERE e.created_at < now() - make_interval(secs => $1) AND e.relayed
    AND NOT EXISTS (
        SELECT 1 FROM webhook_deliveries AS d WHERE d.event_id = e.id AND d.status = 'pending'
    )
    LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""
# PgQueuer's log of finished jobs and the per-second statistics it folds them into.
_EXPIRE_QUEUE_LOG = """
DELETE FROM pgqueuer_log WHERE id IN (
    SELECT id FROM pgqueuer_log WHERE created < now() - make_interval(secs => $1)
    LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""
_EXPIRE_QUEUE_STATISTICS = """
DELETE FROM pgqueuer_statistics WHERE id IN (
    SELECT id FROM pgqueuer_statistics WHERE created < now() - make_interval(secs => $1)
    LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""
_EXPIRE = (_EXPIRE_EVENTS, _EXPIRE_QUEUE_LOG, _EXPIRE_QUEUE_STATISTICS)
# Jobs PgQueuer holds after their last unexpected failure (on_failure="hold"): kept
# for a look, as long as the events. A held delivery job's row stays pending (the
# job could be queued again); once the job is deleted nothing will try it, so the
# row is dead, and its event can expire in turn. $3: the delivery jobs' entrypoint;
# MATERIALIZED, so only their payloads are read as JSON.
_EXPIRE_HELD_JOBS = """
WITH expired AS (
    DELETE FROM pgqueuer WHERE id IN (
        SELECT id FROM pgqueuer
        WHERE status = 'failed' AND updated < now() - make_interval(secs => $1)
        LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    RETURNING entrypoint, payload
), held AS MATERIALIZED (
    SELECT convert_from(payload, 'UTF8')::jsonb AS job FROM expired WHERE entrypoint = $3
), dead AS (
    UPDATE webhook_deliveries AS d
    SET status = 'dead', last_error = 'job held after an unexpected failure, then expired',
        updated_at = now()
    FROM held
    WHERE d.status = 'pending' AND d.event_id = (held.job ->> 'event_id')::uuid
    AND d.subscription_id = (held.job ->> 'subscription_id')::bigint
    RETURNING 1
)
SELECT (SELECT count(*) FROM expired) AS jobs, (SELECT count(*) FROM dead) AS dead
"""


@dataclass(frozen=True, slots=True)
class Moved:
    events: int
    deliveries: int
    # The batch took all the events it had room for: more may be pending.
    full: bool


async def move_pending(connection: PooledConnection, batch_size: int) -> Moved:
    """Within the caller's transaction: pending events become delivery rows and
    jobs (up to `batch_size` of them, or one event's), and are marked relayed."""
    rows = await connection.fetch(_MOVE, batch_size)
    deliveries = [row for row in rows if row["subscription_id"] is not None]
    if deliveries:
        await queue_on(connection).enqueue(
            [DELIVER] * len(deliveries),
            [delivery_payload(row["event_id"], row["subscription_id"]) for row in deliveries],
            [0] * len(deliveries),
            headers=[
                {REQUEST_ID_HEADER: row["request_id"]} if row["request_id"] else None
                for row in deliveries
            ],
        )
    events = len({row["event_id"] for row in rows})
    full = bool(rows) and events >= rows[0]["room"]
    return Moved(events=events, deliveries=len(deliveries), full=full)


async def relay_batch(database: Database, batch_size: int) -> Moved:
    async with database.connection() as connection, connection.transaction():
        return await move_pending(connection, batch_size)


@dataclass(frozen=True, slots=True)
class Expired:
    # Rows deleted: the caller repeats until none is.
    rows: int
    # Pending deliveries whose held job was deleted: dead letters now.
    dead_deliveries: int


async def expire(database: Database, retention_seconds: float, batch_size: int) -> Expired:
    """Delete one batch of expired events (with their deliveries), of PgQueuer's
    history and of its held jobs (their deliveries dead-lettered)."""
    deleted = 0
    async with database.connection() as connection:
        for statement in _EXPIRE:
            status = await connection.execute(statement, retention_seconds, batch_size)
            deleted += int(status.split()[-1])
        (held,) = await connection.fetch(_EXPIRE_HELD_JOBS, retention_seconds, batch_size, DELIVER)
    return Expired(rows=deleted + held["jobs"], dead_deliveries=held["dead"])
