"""Real PostgreSQL conflicts: a serialization failure is retried and succeeds; one
that keeps happening, or a lock wait past the statement timeout, is a 503 with
Retry-After, never a 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db.errors import DatabaseUnavailableError
from {{ cookiecutter.package_name }}.db.pool import PooledConnection
from {{ cookiecutter.package_name }}.db.transactions import run_in_transaction
from {{ cookiecutter.package_name }}.startup import create_app

from ..support.apps import default_headers
from ..support.databases import store_session_timeouts
from ..support.ledger import account_locked, connect, open_account, problem_type, transfer

pytestmark = pytest.mark.anyio

Work = Callable[[PooledConnection], Awaitable[int]]


def conflicting_update(
    database_url: str, account_id: int, conflicts: int
) -> tuple[list[int], Work]:
    """Work that reads an account under REPEATABLE READ, has another connection
    update and commit the row meanwhile, then updates it itself: PostgreSQL aborts
    that with a serialization failure, for the first `conflicts` attempts."""
    attempts: list[int] = []

    async def work(connection: PooledConnection) -> int:
        attempts.append(len(attempts) + 1)
        await connection.fetchval("SELECT balance_minor FROM accounts WHERE id = $1", account_id)
        if len(attempts) <= conflicts:
            async with connect(database_url) as other:
                await other.execute(
                    "UPDATE accounts SET owner = owner || '.' WHERE id = $1", account_id
                )
        updated: int = await connection.fetchval(
            "UPDATE accounts SET owner = 'winner' WHERE id = $1 RETURNING id", account_id
        )
        return updated

    return attempts, work


async def test_a_serialization_failure_is_retried(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    account = await open_account(client, 100)
    attempts, work = conflicting_update(database_url, account["id"], conflicts=2)
    result = await run_in_transaction(
        app.state.database, work, attempts=3, isolation="repeatable_read"
    )
    assert result == account["id"]
    assert attempts == [1, 2, 3]
    assert (await client.get(f"/v1/accounts/{account['id']}")).json()["owner"] == "winner"


async def test_a_conflict_that_persists_gives_up_after_the_last_attempt(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    account = await open_account(client, 100)
    attempts, work = conflicting_update(database_url, account["id"], conflicts=5)
    with pytest.raises(DatabaseUnavailableError, match="conflicted 3 times") as unavailable:
        await run_in_transaction(app.state.database, work, attempts=3, isolation="repeatable_read")
    assert isinstance(unavailable.value.__cause__, asyncpg.SerializationError)
    assert unavailable.value.retry_after_seconds == 1
    assert attempts == [1, 2, 3]


async def test_a_transfer_stuck_behind_a_lock_is_a_503_not_a_500(
    settings: Settings, database_url: str
) -> None:
    database = settings.database.model_copy(update={"statement_timeout_ms": 300})
    await store_session_timeouts(database_url, database)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=default_headers(settings)
        ) as client:
            ada, bob = await open_account(client, 100), await open_account(client)
            async with account_locked(database_url, ada["id"]):
                stuck = await transfer(client, ada["id"], bob["id"], 1, key="stuck")
            assert stuck.status_code == 503
            assert problem_type(stuck) == "/problems/database-unavailable"
            assert stuck.headers["retry-after"] == "1"
            # Nothing was stored for the key: the same request now goes through.
            retried = await transfer(client, ada["id"], bob["id"], 1, key="stuck")
            assert retried.status_code == 201
