"""Helpers for the ledger's tests: calls to its API, and direct looks at its tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

PROBLEM = "application/problem+json"


async def open_account(
    client: httpx.AsyncClient,
    balance: int = 0,
    currency: str = "EUR",
    owner: str = "Ada",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST /v1/accounts; `headers` replace the client's own (another caller's token)."""
    response = await client.post(
        "/v1/accounts",
        json={"owner": owner, "currency": currency, "opening_balance_minor": balance},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


async def transfer(
    client: httpx.AsyncClient,
    source: int,
    destination: int,
    amount: int,
    key: str | None = None,
    *,
    request_id: str | None = None,
) -> httpx.Response:
    """POST /v1/transfers with `key` (a fresh UUID if None), and `request_id` as its
    X-Request-ID if given."""
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return await client.post(
        "/v1/transfers",
        json={"from_account_id": source, "to_account_id": destination, "amount_minor": amount},
        headers=headers,
    )


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == PROBLEM, response.text
    kind: str = response.json()["type"]
    return kind


@asynccontextmanager
async def connect(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def account_locked(database_url: str, account_id: int) -> AsyncIterator[None]:
    """Hold the account's row lock, as a transfer in progress does."""
    async with connect(database_url) as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account_id)
        yield


async def balances(database_url: str) -> dict[int, int]:
    async with connect(database_url) as connection:
        rows = await connection.fetch("SELECT id, balance_minor FROM accounts")
    return {row["id"]: row["balance_minor"] for row in rows}


async def entry_sums(database_url: str) -> dict[int, int]:
    async with connect(database_url) as connection:
        rows = await connection.fetch(
            "SELECT account_id, sum(amount_minor) AS total FROM ledger_entries GROUP BY account_id"
        )
    return {row["account_id"]: int(row["total"]) for row in rows}


async def count(database_url: str, table: str) -> int:
    async with connect(database_url) as connection:
        # Table names come from the tests themselves, never from input.
        rows: int = await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
    return rows
