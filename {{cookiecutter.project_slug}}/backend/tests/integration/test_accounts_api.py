"""Accounts through the real app and database: open, read, refuse bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ..support.ledger import connect, entry_sums, open_account, problem_type

pytestmark = pytest.mark.anyio


async def test_open_then_read_back(client: httpx.AsyncClient, database_url: str) -> None:
    created = await client.post(
        "/v1/accounts",
        json={"owner": "Ada Lovelace", "currency": "EUR", "opening_balance_minor": 1250},
    )
    assert created.status_code == 201
    account = created.json()
    assert created.headers["location"] == f"/v1/accounts/{account['id']}"
    assert account["owner"] == "Ada Lovelace"
    assert (account["currency"], account["balance_minor"]) == ("EUR", 1250)
    assert account["created_at"].endswith("Z")

    fetched = await client.get(created.headers["location"])
    assert (fetched.status_code, fetched.json()) == (200, account)
    assert await entry_sums(database_url) == {account["id"]: 1250}


async def test_a_zero_opening_balance_writes_no_entry(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post("/v1/accounts", json={"owner": "Bob", "currency": "JPY"})
    assert response.status_code == 201
    assert response.json()["balance_minor"] == 0
    assert await entry_sums(database_url) == {}


async def test_an_unknown_account_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/accounts/424242")
    assert response.status_code == 404
    assert problem_type(response) == "/problems/account-not-found"
    assert response.json()["detail"] == "account 424242 does not exist"


# One database for all cases: each is refused before anything is written.
INVALID_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown currency": ({"owner": "Ada", "currency": "XYZ"}, "body.currency"),
    "lowercase currency": ({"owner": "Ada", "currency": "eur"}, "body.currency"),
    "blank owner": ({"owner": "   ", "currency": "EUR"}, "body.owner"),
    "NUL in owner": ({"owner": "Ada\u0000", "currency": "EUR"}, "body.owner"),
    "C1 control in owner": ({"owner": "Ada\u009b31m", "currency": "EUR"}, "body.owner"),
    "next line in owner": ({"owner": "Ada\u0085", "currency": "EUR"}, "body.owner"),
    "bidi override in owner": ({"owner": "Ada\u202etxt", "currency": "EUR"}, "body.owner"),
    "negative": (
        {"owner": "A", "currency": "EUR", "opening_balance_minor": -1},
        "body.opening_balance_minor",
    ),
    "beyond 2^53": (
        {"owner": "A", "currency": "EUR", "opening_balance_minor": 2**53},
        "body.opening_balance_minor",
    ),
    "fraction": (
        {"owner": "A", "currency": "EUR", "opening_balance_minor": 1.5},
        "body.opening_balance_minor",
    ),
    "boolean": (
        {"owner": "A", "currency": "EUR", "opening_balance_minor": True},
        "body.opening_balance_minor",
    ),
    "string": (
        {"owner": "A", "currency": "EUR", "opening_balance_minor": "5"},
        "body.opening_balance_minor",
    ),
    "unknown field": (
        {"owner": "Ada", "currency": "EUR", "balance_minor": 5},
        "body.balance_minor",
    ),
    "missing owner": ({"currency": "EUR"}, "body.owner"),
}


async def test_invalid_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, database_url: str
) -> None:
    for case, (body, invalid) in INVALID_BODIES.items():
        response = await client.post("/v1/accounts", json=body)
        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json", case
        assert invalid in [param["name"] for param in response.json()["invalid_params"]], case
    async with connect(database_url) as connection:
        assert await connection.fetchval("SELECT count(*) FROM accounts") == 0


async def test_an_integral_json_number_is_an_integer(client: httpx.AsyncClient) -> None:
    account = await client.post(
        "/v1/accounts", json={"owner": "Ada", "currency": "EUR", "opening_balance_minor": 500.0}
    )
    assert account.status_code == 201
    assert account.json()["balance_minor"] == 500


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    await open_account(client)
    collection = await client.delete("/v1/accounts")
    item = await client.post("/v1/accounts/1")
    assert (collection.status_code, collection.headers["allow"]) == (405, "GET, POST")
    assert (item.status_code, item.headers["allow"]) == (405, "GET")
