"""The benchmark's baseline: the least a service can do for the same three endpoints.

A raw ASGI app (no framework, no validation models, no middleware, no logging) on
the same uvicorn (uvloop, httptools), with asyncpg and orjson, sending the SQL of
the rendered project's db/ layer. Run by bench/run.py with the rendered
project's interpreter, so every library is the same version:

    BENCH_DATABASE_URL=... BENCH_POOL_MIN=2 BENCH_POOL_MAX=10 \\
        python -m uvicorn baseline:app --app-dir bench --workers 2 --loop uvloop --http httptools

Hand-written on purpose: it is the yardstick, so it must stay free of any library
that a comparison would then measure twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from ledger_api.db import accounts, idempotency, transfers

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# The rendered db/ layer's own statements, imported so they cannot drift apart
# (the import costs the baseline some startup and memory, not time per request).
GET_ACCOUNT = accounts._GET
TRY_LOCK = idempotency._TRY_LOCK
FIND_KEY = idempotency._FIND
SAVE_KEY = idempotency._SAVE
LOCK_ACCOUNTS = transfers._LOCK_ACCOUNTS
WRITE_TRANSFER = transfers._WRITE
# With the worker on (the default), that statement also writes the transfer's outbox
# event, its type and request id the last two parameters: the same SQL, so the same
# rows, as the rendered service (no request id here).
OUTBOX_EVENT = ("transfer.completed", None) if "outbox_events" in WRITE_TRANSFER else ()
SCOPE = "POST /v1/transfers"
RETENTION_SECONDS = 86400.0
JSON_HEADERS = [(b"content-type", b"application/json")]

pool: asyncpg.Pool | None = None


class Connection(asyncpg.Connection):
    """No reset query on release, as in the rendered db/pool.py: the same SQL."""

    def get_reset_query(self) -> str:
        return ""


async def respond(send: Send, status: int, body: bytes, headers: list[Any] | None = None) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": headers or JSON_HEADERS}
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def get_account(send: Send, account_id: int) -> None:
    assert pool is not None
    async with pool.acquire() as connection:
        row = await connection.fetchrow(GET_ACCOUNT, account_id)
    if row is None:
        await respond(send, 404, b'{"status":404}')
        return
    await respond(send, 200, orjson.dumps(dict(row)))


async def write_transfer(
    connection: PoolConnectionProxy, source: int, destination: int, amount: int, currency: str
) -> asyncpg.Record:
    """Both balances, the transfer and its two entries, in the rendered db/ layer's one
    statement (shared with bench/bare_fastapi.py)."""
    (row,) = await connection.fetch(
        WRITE_TRANSFER,
        source,
        -amount,
        destination,
        amount,
        source,
        destination,
        amount,
        currency,
        "debit",
        "credit",
        *OUTBOX_EVENT,
    )
    return row


async def create_transfer(scope: Scope, receive: Receive, send: Send) -> None:
    assert pool is not None
    body = orjson.loads(await read_body(receive))
    key = next((v.decode() for k, v in scope["headers"] if k == b"idempotency-key"), "")
    source, destination = body["from_account_id"], body["to_account_id"]
    amount = body["amount_minor"]
    fingerprint = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).digest()
    async with pool.acquire() as connection, connection.transaction():
        if not await connection.fetchval(TRY_LOCK, SCOPE, key):
            await respond(send, 409, b'{"status":409}')
            return
        stored = await connection.fetchrow(FIND_KEY, SCOPE, key)
        if stored is not None:
            await respond(send, stored["status_code"], bytes(stored["body"]))
            return
        rows = await connection.fetch(LOCK_ACCOUNTS, source, destination)
        if len(rows) != 2:
            await respond(send, 404, b'{"status":404}')
            return
        row = await write_transfer(connection, source, destination, amount, rows[0]["currency"])
        created = orjson.dumps(dict(row))
        location = f"/v1/transfers/{row['id']}"
        await connection.execute(
            SAVE_KEY,
            SCOPE,
            key,
            fingerprint,
            201,
            "application/json",
            location,
            created,
            RETENTION_SECONDS,
        )
    await respond(send, 201, created, [*JSON_HEADERS, (b"location", location.encode())])


async def ready(send: Send) -> None:
    assert pool is not None
    async with pool.acquire() as connection:
        await connection.fetchval("SELECT 1")
    await respond(send, 200, b'{"status":"ready"}')


async def lifespan(receive: Receive, send: Send) -> None:
    global pool  # noqa: PLW0603 - one pool per worker process, as in the rendered app
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            pool = await asyncpg.create_pool(
                os.environ["BENCH_DATABASE_URL"],
                min_size=int(os.environ.get("BENCH_POOL_MIN", "2")),
                max_size=int(os.environ.get("BENCH_POOL_MAX", "10")),
                connection_class=Connection,
                server_settings={
                    "application_name": os.environ.get("BENCH_APPLICATION_NAME", "baseline")
                },
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if pool is not None:
                await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path, method = scope["path"], scope["method"]
    if method == "GET" and path.startswith("/v1/accounts/"):
        await get_account(send, int(path.rsplit("/", 1)[1]))
    elif method == "POST" and path == "/v1/transfers":
        await create_transfer(scope, receive, send)
    elif method == "GET" and path == "/health/ready":
        await ready(send)
    else:
        await respond(send, 404, b'{"status":404}')
