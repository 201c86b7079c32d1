"""Who may read and move which money, over HTTP: two principals, each with its own
accounts, an admin who reads all, and cross-principal attempts sent concurrently."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from {{ cookiecutter.package_name }}.configuration import Settings

from ..support.ledger import balances, open_account, transfer
from ..support.tokens import bearer

pytestmark = pytest.mark.anyio


@pytest.fixture
def as_bob(settings: Settings) -> dict[str, str]:
    return bearer(settings, "bob")


async def test_reads_and_lists_show_only_ones_own_accounts(
    client: httpx.AsyncClient, settings: Settings, as_bob: dict[str, str]
) -> None:
    alices = await open_account(client, 100)
    bobs = await open_account(client, owner="Bob", headers=as_bob)
    assert (await client.get(f"/v1/accounts/{bobs['id']}")).status_code == 404
    assert (await client.get(f"/v1/accounts/{alices['id']}", headers=as_bob)).status_code == 404
    own = (await client.get("/v1/accounts")).json()["items"]
    assert [account["id"] for account in own] == [alices["id"]]
    admin = bearer(settings, "root", "ledger:read admin")
    everyone = (await client.get("/v1/accounts", headers=admin)).json()["items"]
    assert [account["id"] for account in everyone] == [alices["id"], bobs["id"]]
    assert (await client.get(f"/v1/accounts/{bobs['id']}", headers=admin)).status_code == 200
    listing = await client.get(f"/v1/accounts/{alices['id']}/transfers", headers=as_bob)
    assert listing.status_code == 404


async def test_money_moves_only_out_of_ones_own_accounts(
    client: httpx.AsyncClient, settings: Settings, database_url: str, as_bob: dict[str, str]
) -> None:
    alices = await open_account(client, 100)
    bobs = await open_account(client, 100, owner="Bob", headers=as_bob)
    paid = await transfer(client, alices["id"], bobs["id"], 30)
    assert paid.status_code == 201, paid.text
    transfer_id = paid.json()["id"]
    assert (await client.get(f"/v1/transfers/{transfer_id}", headers=as_bob)).status_code == 200
    stranger = bearer(settings, "eve")
    assert (await client.get(f"/v1/transfers/{transfer_id}", headers=stranger)).status_code == 404
    theft = await client.post(
        "/v1/transfers",
        json={"from_account_id": alices["id"], "to_account_id": bobs["id"], "amount_minor": 1},
        headers={**as_bob, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert theft.status_code == 403
    assert theft.json()["type"] == "/problems/not-account-holder"
    assert await balances(database_url) == {alices["id"]: 70, bobs["id"]: 130}


async def test_concurrent_cross_principal_attempts_move_nothing(
    client: httpx.AsyncClient, database_url: str, as_bob: dict[str, str]
) -> None:
    alices = await open_account(client, 1000)
    bobs = await open_account(client, 0, owner="Bob (opened by Alice, for the test)")
    attempts = [
        client.post(
            "/v1/transfers",
            json={"from_account_id": alices["id"], "to_account_id": bobs["id"], "amount_minor": 1},
            headers={**as_bob, "Idempotency-Key": str(uuid.uuid4())},
        )
        for _ in range(20)
    ]
    legitimate = [transfer(client, alices["id"], bobs["id"], 10) for _ in range(5)]
    answers = await asyncio.gather(*attempts, *legitimate)
    assert [answer.status_code for answer in answers[:20]] == [403] * 20
    assert [answer.status_code for answer in answers[20:]] == [201] * 5
    assert await balances(database_url) == {alices["id"]: 950, bobs["id"]: 50}


async def test_idempotency_keys_are_each_principals_own(
    client: httpx.AsyncClient, settings: Settings, as_bob: dict[str, str]
) -> None:
    alices = await open_account(client, 100)
    bobs = await open_account(client, 100, owner="Bob", headers=as_bob)
    key = "shared-key"
    first = await transfer(client, alices["id"], bobs["id"], 5, key=key)
    second = await client.post(
        "/v1/transfers",
        json={"from_account_id": bobs["id"], "to_account_id": alices["id"], "amount_minor": 7},
        headers={**as_bob, "Idempotency-Key": key},
    )
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert "idempotent-replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]
