"""The framework's floor: bare FastAPI with the baseline's SQL, pool and no middleware.

The same three endpoints as bench/baseline.py, written the way FastAPI's tutorial
writes them (path and header parameters, a pydantic request body, a pydantic
response model, the default JSON response), and nothing else: no middleware, no
logging, no metrics, no problem documents. What the rendered service costs above
this is the price of its production features; what this costs above the baseline
is the framework's. Run by bench/run.py with the rendered project's interpreter:

    BENCH_DATABASE_URL=... BENCH_POOL_MIN=2 BENCH_POOL_MAX=10 \\
        python -m uvicorn bare_fastapi:app --app-dir bench --workers 2 \\
            --loop uvloop --http httptools
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

import asyncpg
import orjson
from baseline import (
    FIND_KEY,
    GET_ACCOUNT,
    LOCK_ACCOUNTS,
    RETENTION_SECONDS,
    SAVE_KEY,
    SCOPE,
    TRY_LOCK,
    Connection,
    write_transfer,
)
from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class AccountOut(BaseModel):
    id: int
    owner: str
    currency: str
    balance_minor: int
    created_at: datetime


class TransferCreate(BaseModel):
    from_account_id: int
    to_account_id: int
    amount_minor: int


class TransferOut(BaseModel):
    id: int
    from_account_id: int
    to_account_id: int
    amount_minor: int
    currency: str
    created_at: datetime


@asynccontextmanager
async def lifespan(application: FastAPI) -> AsyncIterator[None]:
    application.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_DATABASE_URL"],
        min_size=int(os.environ.get("BENCH_POOL_MIN", "2")),
        max_size=int(os.environ.get("BENCH_POOL_MAX", "10")),
        connection_class=Connection,
        server_settings={"application_name": os.environ.get("BENCH_APPLICATION_NAME", "bare")},
    )
    yield
    await application.state.pool.close()


app = FastAPI(lifespan=lifespan)


def pool_of(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


@app.get("/v1/accounts/{account_id}", response_model=AccountOut)
async def get_account(account_id: int, request: Request) -> AccountOut:
    async with pool_of(request).acquire() as connection:
        row = await connection.fetchrow(GET_ACCOUNT, account_id)
    if row is None:
        raise HTTPException(status_code=404)
    return AccountOut(**dict(row))


@app.post("/v1/transfers", response_model=TransferOut, status_code=201)
async def create_transfer(
    body: TransferCreate,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str, Header()],
) -> TransferOut | Response:
    amount = body.amount_minor
    source, destination = body.from_account_id, body.to_account_id
    fingerprint = hashlib.sha256(
        orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)
    ).digest()
    async with pool_of(request).acquire() as connection, connection.transaction():
        if not await connection.fetchval(TRY_LOCK, SCOPE, idempotency_key):
            raise HTTPException(status_code=409)
        stored = await connection.fetchrow(FIND_KEY, SCOPE, idempotency_key)
        if stored is not None:
            return Response(
                bytes(stored["body"]), stored["status_code"], media_type="application/json"
            )
        rows = await connection.fetch(LOCK_ACCOUNTS, source, destination)
        if len(rows) != 2:
            raise HTTPException(status_code=404)
        row = await write_transfer(connection, source, destination, amount, rows[0]["currency"])
        created = TransferOut(**dict(row))
        location = f"/v1/transfers/{created.id}"
        await connection.execute(
            SAVE_KEY,
            SCOPE,
            idempotency_key,
            fingerprint,
            201,
            "application/json",
            location,
            created.model_dump_json().encode(),
            RETENTION_SECONDS,
        )
    response.headers["location"] = location
    return created


@app.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    async with pool_of(request).acquire() as connection:
        await connection.fetchval("SELECT 1")
    return JSONResponse({"status": "ready"})
