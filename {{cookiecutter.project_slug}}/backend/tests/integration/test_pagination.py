"""Keyset pagination through the real app: every row exactly once while rows are
inserted, bounded limits, and malformed cursors as problems."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from ..support.ledger import open_account, problem_type, transfer

pytestmark = pytest.mark.anyio


async def walk(client: httpx.AsyncClient, path: str, limit: int) -> list[list[dict[str, Any]]]:
    """Every page of a listing, in order."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


async def test_every_account_is_listed_once_while_accounts_are_opened(
    client: httpx.AsyncClient,
) -> None:
    existing = {(await open_account(client, owner=f"owner {n}"))["id"] for n in range(45)}
    opened_meanwhile: set[int] = set()
    walking = asyncio.create_task(walk(client, "/v1/accounts", limit=4))
    while not walking.done():
        opened_meanwhile.add((await open_account(client, owner="late"))["id"])
    seen = [account["id"] for page in await walking for account in page]

    assert len(seen) == len(set(seen)), "an account was listed twice"
    assert seen == sorted(seen)
    assert existing <= set(seen)
    assert set(seen) <= existing | opened_meanwhile
    assert opened_meanwhile, "no account was opened while the listing was walked"


async def test_every_transfer_of_an_account_is_listed_once_while_transfers_happen(
    client: httpx.AsyncClient,
) -> None:
    ada, bob = await open_account(client, 10_000), await open_account(client, 10_000)
    existing = set()
    for n in range(30):
        source, destination = (ada, bob) if n % 2 else (bob, ada)
        existing.add((await transfer(client, source["id"], destination["id"], 1)).json()["id"])

    async def keep_transferring() -> None:
        while True:
            await transfer(client, ada["id"], bob["id"], 1)

    background = asyncio.create_task(keep_transferring())
    try:
        pages = await walk(client, f"/v1/accounts/{ada['id']}/transfers", limit=7)
    finally:
        background.cancel()
    seen = [item["id"] for page in pages for item in page]
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert existing <= set(seen)
    for page in pages:
        for item in page:
            assert ada["id"] in (item["from_account_id"], item["to_account_id"])


async def test_the_default_page_has_fifty_items(client: httpx.AsyncClient) -> None:
    for n in range(51):
        await open_account(client, owner=f"owner {n}")
    first = (await client.get("/v1/accounts")).json()
    assert len(first["items"]) == 50
    rest = (await client.get("/v1/accounts", params={"cursor": first["next_cursor"]})).json()
    assert (len(rest["items"]), rest["next_cursor"]) == (1, None)


async def test_a_limit_outside_1_to_100_is_a_422(client: httpx.AsyncClient) -> None:
    for limit in ("0", "101", "-1", "ten"):
        response = await client.get("/v1/accounts", params={"limit": limit})
        assert response.status_code == 422, limit
        assert [param["name"] for param in response.json()["invalid_params"]] == ["query.limit"]


async def test_a_malformed_cursor_is_a_problem_not_a_500(client: httpx.AsyncClient) -> None:
    account = await open_account(client)
    for cursor in ("bm90LWEtY3Vyc29y", "YWNjb3VudHM6LTE", "!!", "a" * 65):
        for path in ("/v1/accounts", f"/v1/accounts/{account['id']}/transfers"):
            response = await client.get(path, params={"cursor": cursor})
            assert response.status_code in (400, 422), (cursor, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_cursor_only_fits_the_listing_that_issued_it(client: httpx.AsyncClient) -> None:
    account = await open_account(client)
    await open_account(client)
    accounts_cursor = (await client.get("/v1/accounts", params={"limit": 1})).json()["next_cursor"]
    response = await client.get(
        f"/v1/accounts/{account['id']}/transfers", params={"cursor": accounts_cursor}
    )
    assert response.status_code == 400
    assert problem_type(response) == "/problems/invalid-cursor"


async def test_listing_the_transfers_of_an_unknown_account_is_a_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/accounts/987654/transfers")
    assert response.status_code == 404
    assert problem_type(response) == "/problems/account-not-found"
