"""Transfers through the real app and database: the rules, the ledger entries,
and what a refused transfer leaves behind (nothing)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from ..support.ledger import (
    balances,
    connect,
    count,
    entry_sums,
    open_account,
    problem_type,
    transfer,
)

pytestmark = pytest.mark.anyio


async def test_a_transfer_moves_money_and_writes_a_debit_and_a_credit(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 1000), await open_account(client, 50)
    response = await transfer(client, ada["id"], bob["id"], 300)

    assert response.status_code == 201, response.text
    moved = response.json()
    assert response.headers["location"] == f"/v1/transfers/{moved['id']}"
    assert "idempotent-replayed" not in response.headers
    assert {key: moved[key] for key in ("from_account_id", "to_account_id", "amount_minor")} == {
        "from_account_id": ada["id"],
        "to_account_id": bob["id"],
        "amount_minor": 300,
    }
    assert moved["currency"] == "EUR"
    assert (await client.get(f"/v1/transfers/{moved['id']}")).json() == moved
    assert await balances(database_url) == {ada["id"]: 700, bob["id"]: 350}
    assert await entry_sums(database_url) == {ada["id"]: 700, bob["id"]: 350}
    async with connect(database_url) as connection:
        entries = await connection.fetch(
            "SELECT account_id, kind, amount_minor FROM ledger_entries "
            "WHERE transfer_id = $1 ORDER BY kind",
            moved["id"],
        )
    assert [tuple(entry) for entry in entries] == [
        (bob["id"], "credit", 300),
        (ada["id"], "debit", -300),
    ]


async def test_both_accounts_list_the_transfer(client: httpx.AsyncClient) -> None:
    ada = await open_account(client, 100)
    bob = await open_account(client, 100)
    cyd = await open_account(client, 100)
    first = (await transfer(client, ada["id"], bob["id"], 10)).json()
    second = (await transfer(client, bob["id"], cyd["id"], 20)).json()

    async def listed(account: dict[str, Any]) -> list[int]:
        page = (await client.get(f"/v1/accounts/{account['id']}/transfers")).json()
        assert page["next_cursor"] is None
        return [item["id"] for item in page["items"]]

    assert await listed(ada) == [first["id"]]
    assert await listed(bob) == [first["id"], second["id"]]
    assert await listed(cyd) == [second["id"]]


async def test_insufficient_funds_is_a_409_that_changes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 100), await open_account(client)
    response = await transfer(client, ada["id"], bob["id"], 101)
    assert response.status_code == 409
    assert problem_type(response) == "/problems/insufficient-funds"
    assert response.json()["detail"] == (
        f"account {ada['id']} holds 100 minor units; the transfer needs 101"
    )
    assert await balances(database_url) == {ada["id"]: 100, bob["id"]: 0}
    assert await count(database_url, "transfers") == 0


async def test_currencies_are_never_mixed(client: httpx.AsyncClient, database_url: str) -> None:
    euros, yen = await open_account(client, 100, "EUR"), await open_account(client, 100, "JPY")
    response = await transfer(client, euros["id"], yen["id"], 1)
    assert response.status_code == 422
    assert problem_type(response) == "/problems/currency-mismatch"
    assert await count(database_url, "transfers") == 0


async def test_unknown_accounts_are_a_404(client: httpx.AsyncClient) -> None:
    ada = await open_account(client, 100)
    to_nowhere = await transfer(client, ada["id"], 999_999, 1)
    from_nowhere = await transfer(client, 999_999, ada["id"], 1)
    for response in (to_nowhere, from_nowhere):
        assert response.status_code == 404
        assert problem_type(response) == "/problems/account-not-found"
        assert response.json()["detail"] == "account 999999 does not exist"


async def test_a_transfer_to_the_same_account_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 100), await open_account(client)
    refused = await transfer(client, ada["id"], ada["id"], 1, key="fix-me")
    assert refused.status_code == 422
    assert problem_type(refused) == "/problems/same-account-transfer"
    assert await count(database_url, "idempotency_keys") == 0
    corrected = await transfer(client, ada["id"], bob["id"], 1, key="fix-me")
    assert corrected.status_code == 201


async def test_a_missing_or_malformed_key_is_a_400(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 100), await open_account(client)
    body = {"from_account_id": ada["id"], "to_account_id": bob["id"], "amount_minor": 1}
    for headers, expected in [
        ({}, "/problems/idempotency-key-missing"),
        ({"Idempotency-Key": "k" * 256}, "/problems/idempotency-key-invalid"),
        ({"Idempotency-Key": "tab\tinside"}, "/problems/idempotency-key-invalid"),
    ]:
        response = await client.post("/v1/transfers", json=body, headers=headers)
        assert response.status_code == 400, headers
        assert problem_type(response) == expected
    assert await count(database_url, "transfers") == 0


async def test_an_invalid_body_is_a_422_and_stores_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await open_account(client, 100)
    await open_account(client)
    for case, body in {
        "zero": {"from_account_id": 1, "to_account_id": 2, "amount_minor": 0},
        "negative": {"from_account_id": 1, "to_account_id": 2, "amount_minor": -5},
        "beyond 2^53": {"from_account_id": 1, "to_account_id": 2, "amount_minor": 2**53},
        "id zero": {"from_account_id": 0, "to_account_id": 2, "amount_minor": 1},
        "no amount": {"from_account_id": 1, "to_account_id": 2},
        "unknown field": {"from_account_id": 1, "to_account_id": 2, "amount_minor": 1, "memo": "x"},
    }.items():
        response = await client.post("/v1/transfers", json=body, headers={"Idempotency-Key": "k"})
        assert response.status_code == 422, case
        assert response.json()["invalid_params"], case
    assert await count(database_url, "idempotency_keys") == 0


async def test_an_unknown_transfer_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/transfers/31337")
    assert response.status_code == 404
    assert problem_type(response) == "/problems/transfer-not-found"


async def test_the_database_refuses_a_negative_balance(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada = await open_account(client, 100)
    async with connect(database_url) as connection:
        with pytest.raises(asyncpg.CheckViolationError, match="accounts_balance_not_negative"):
            await connection.execute(
                "UPDATE accounts SET balance_minor = balance_minor - 101 WHERE id = $1", ada["id"]
            )
