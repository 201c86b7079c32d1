"""Idempotency records, stored in the same transaction as the effect they guard.

The first request with a key takes a transaction-scoped advisory lock on it,
does its work, stores its response and commits: effect and record are written
together or not at all, and a crash leaves no half-done key behind (the lock
dies with the transaction). A second request with the key while the lock is
held is told so at once (409) instead of waiting; once the first has
committed, the second finds the record and replays it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..domain.idempotency import (
    IdempotencyKey,
    IdempotencyKeyInUseError,
    IdempotencyRecord,
    IdempotentResult,
    StoredResponse,
    replay,
)
from .pool import Database, PooledConnection
from .transactions import run_in_transaction

# hashtextextended gives 64 bits, so two different keys practically never share
# a lock (and if they did, one would only see a spurious 409 and retry).
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 0))"
_FIND = """
SELECT fingerprint, status_code, content_type, location, body FROM idempotency_keys
WHERE scope = $1 AND key = $2 AND expires_at > now()
"""
# An expired record that cleanup has not deleted yet is simply replaced.
_SAVE = """
INSERT INTO idempotency_keys
    (scope, key, fingerprint, status_code, content_type, location, body, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
ON CONFLICT (scope, key) DO UPDATE SET
    fingerprint = excluded.fingerprint, status_code = excluded.status_code,
    content_type = excluded.content_type, location = excluded.location,
    body = excluded.body, created_at = now(), expires_at = excluded.expires_at
WHERE idempotency_keys.expires_at <= now()
"""
# SKIP LOCKED: rows a request is replacing right now are left for the next round,
# so cleanup never waits for a request, and a request waits for at most one batch.
_DELETE_EXPIRED = """
WITH expired AS (
    SELECT scope, key FROM idempotency_keys
    WHERE expires_at <= now()
    ORDER BY expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
DELETE FROM idempotency_keys AS k USING expired
WHERE k.scope = expired.scope AND k.key = expired.key
"""

Work = Callable[[PooledConnection], Awaitable[StoredResponse]]


async def run_once(
    database: Database,
    scope: str,
    key: IdempotencyKey,
    request_fingerprint: bytes,
    work: Work,
    *,
    retention_seconds: int,
    attempts: int,
) -> IdempotentResult:
    """Run `work` once per (scope, key) and store its response with its effect;
    replay that response for the same request, or raise the domain's
    IdempotencyKeyInUseError / IdempotencyKeyReusedError."""

    async def once(connection: PooledConnection) -> IdempotentResult:
        if not await connection.fetchval(_TRY_LOCK, scope, key.value):
            raise IdempotencyKeyInUseError
        # A statement after the lock: its snapshot sees what the lock's last holder committed.
        record = await find(connection, scope, key)
        if record is not None:
            return replay(record, request_fingerprint)
        response = await work(connection)
        saved = await connection.execute(
            _SAVE,
            scope,
            key.value,
            request_fingerprint,
            response.status,
            response.content_type,
            response.location,
            response.body,
            float(retention_seconds),
        )
        if saved != "INSERT 0 1":
            # Only if the lock failed to exclude a live record: keep the effect from committing.
            message = f"idempotency record for {key.value!r} not saved ({saved})"
            raise RuntimeError(message)
        return IdempotentResult(response, replayed=False)

    return await run_in_transaction(database, once, attempts=attempts)


async def find(
    connection: PooledConnection, scope: str, key: IdempotencyKey
) -> IdempotencyRecord | None:
    row = await connection.fetchrow(_FIND, scope, key.value)
    if row is None:
        return None
    response = StoredResponse(
        status=row["status_code"],
        content_type=row["content_type"],
        body=bytes(row["body"]),
        location=row["location"],
    )
    return IdempotencyRecord(fingerprint=bytes(row["fingerprint"]), response=response)


async def delete_expired(database: Database, batch_size: int) -> int:
    """Delete expired records in batches of `batch_size`, each its own short
    transaction; returns how many were deleted."""
    deleted = 0
    while True:
        async with database.connection() as connection:
            status = await connection.execute(_DELETE_EXPIRED, batch_size)
        batch = int(status.split()[-1])
        deleted += batch
        if batch < batch_size:
            return deleted
