"""Many clients moving money at once through the ASGI app: money is conserved,
no balance goes negative, the ledger agrees with the balances, and no client
sees a 5xx (so no deadlock reached one)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.startup import create_app

from ..support.apps import default_headers
from ..support.ledger import balances, connect, entry_sums, open_account, problem_type, transfer

pytestmark = pytest.mark.anyio

ACCOUNTS = 50
TRANSFERS = 2000
CLIENTS = 32


@pytest.fixture
async def busy_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A pool big enough that 32 clients wait for rows, not for connections, and a
    single attempt per transfer: a deadlock would surface as a 503, not be retried away."""
    pool = settings.database.pool.model_copy(update={"max_size": 8, "acquire_timeout_seconds": 10})
    database = settings.database.model_copy(update={"pool": pool})
    ledger = settings.ledger.model_copy(update={"transaction_attempts": 1})
    app = create_app(settings.model_copy(update={"database": database, "ledger": ledger}))
    async with app.router.lifespan_context(app):
        yield app


async def test_random_transfers_from_many_clients_keep_the_books_straight(
    busy_app: FastAPI, database_url: str, settings: Settings
) -> None:
    rng = random.Random(20261128)  # noqa: S311 (a seeded, reproducible mix, not secrets)
    transport = httpx.ASGITransport(app=busy_app)
    headers = default_headers(settings)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as setup:
        # Mostly euros, some dollars: a few transfers are refused for mixing currencies.
        accounts = [
            await open_account(setup, rng.randrange(0, 5000), "EUR" if n % 5 else "USD")
            for n in range(ACCOUNTS)
        ]
    opening = {account["id"]: account["balance_minor"] for account in accounts}
    currency = {account["id"]: account["currency"] for account in accounts}
    ids = sorted(opening)
    hot = ids[:4]
    planned = asyncio.Queue[tuple[int, int, int]]()
    for _ in range(TRANSFERS):
        # Half the transfers start at one of a few hot accounts, so transfers between
        # the same two accounts in both directions overlap: without a consistent lock
        # order they would deadlock.
        source = rng.choice(hot if rng.random() < 0.5 else ids)
        others = [account for account in ids if account != source]
        same_currency = [account for account in others if currency[account] == currency[source]]
        # One in twenty to any account (perhaps in another currency); amounts up to
        # 1500 run some accounts dry now and then.
        pool = others if rng.random() < 0.05 else same_currency
        hot_pool = [account for account in pool if account in hot]
        destination = rng.choice(hot_pool if hot_pool and rng.random() < 0.5 else pool)
        planned.put_nowait((source, destination, rng.randrange(1, 1500)))

    outcomes: list[tuple[tuple[int, int, int], httpx.Response]] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            while not planned.empty():
                move = planned.get_nowait()
                outcomes.append((move, await transfer(client, *move)))

    await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))

    statuses = Counter(response.status_code for _, response in outcomes)
    assert len(outcomes) == TRANSFERS
    assert all(status < 500 for status in statuses), statuses
    assert set(statuses) <= {201, 409, 422}, statuses
    assert statuses[201] > TRANSFERS // 2, statuses
    expected = dict(opening)
    for (source, destination, amount), response in outcomes:
        if response.status_code == 201:
            expected[source] -= amount
            expected[destination] += amount
        elif response.status_code == 409:
            assert problem_type(response) == "/problems/insufficient-funds"
        else:
            assert problem_type(response) == "/problems/currency-mismatch"
            assert currency[source] != currency[destination]

    final = await balances(database_url)
    assert final == expected
    assert min(final.values()) >= 0
    for code in ("EUR", "USD"):
        assert sum(v for k, v in final.items() if currency[k] == code) == sum(
            v for k, v in opening.items() if currency[k] == code
        )
    sums = await entry_sums(database_url)
    assert {account: sums.get(account, 0) for account in final} == final
    async with connect(database_url) as connection:
        unbalanced = await connection.fetchval(
            "SELECT count(*) FROM (SELECT transfer_id FROM ledger_entries "
            "WHERE transfer_id IS NOT NULL GROUP BY transfer_id "
            "HAVING count(*) <> 2 OR sum(amount_minor) <> 0) AS broken"
        )
        recorded = await connection.fetchval("SELECT count(*) FROM transfers")
    assert unbalanced == 0
    assert recorded == statuses[201]
