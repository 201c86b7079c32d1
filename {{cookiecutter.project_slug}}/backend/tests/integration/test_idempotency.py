"""Idempotency-Key semantics (IETF httpapi draft) through the real app and database:
one effect per key, byte-for-byte replays, conflicts, expiry and cleanup."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db import idempotency
from {{ cookiecutter.package_name }}.handlers.transfers import IDEMPOTENCY_SCOPE
from {{ cookiecutter.package_name }}.startup import create_app

from ..support.apps import serving
from ..support.ledger import (
    account_locked,
    balances,
    connect,
    count,
    open_account,
    problem_type,
    transfer,
)

pytestmark = pytest.mark.anyio


async def test_twenty_concurrent_requests_with_one_key_move_money_once(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 1000), await open_account(client)
    responses = await asyncio.gather(
        *(transfer(client, ada["id"], bob["id"], 100, key="one-key") for _ in range(20))
    )

    assert await count(database_url, "transfers") == 1
    assert await balances(database_url) == {ada["id"]: 900, bob["id"]: 100}
    created = [response for response in responses if response.status_code == 201]
    in_progress = [response for response in responses if response.status_code == 409]
    assert len(created) + len(in_progress) == 20, [response.text for response in responses]
    assert created, "no request got the transfer's 201"
    assert {response.content for response in created} == {created[0].content}
    originals = [response for response in created if "idempotent-replayed" not in response.headers]
    assert len(originals) == 1
    for response in in_progress:
        assert problem_type(response) == "/problems/idempotency-key-in-use"
        assert response.headers["retry-after"] == "1"

    replay = await transfer(client, ada["id"], bob["id"], 100, key="one-key")
    assert (replay.status_code, replay.content) == (201, created[0].content)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["location"] == created[0].headers["location"]

    other_body = await transfer(client, ada["id"], bob["id"], 101, key="one-key")
    assert other_body.status_code == 422
    assert problem_type(other_body) == "/problems/idempotency-key-reused"
    assert await count(database_url, "transfers") == 1


async def test_a_key_still_in_use_is_a_409_until_its_request_ends(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 1000), await open_account(client)
    async with connect(database_url) as holder, holder.transaction():
        # What the first request holds while it runs: the key's advisory lock.
        locked = await holder.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 0))",
            {% if cookiecutter.auth != "none" %}f"{IDEMPOTENCY_SCOPE} alice",  # the client's principal{% else %}IDEMPOTENCY_SCOPE,{% endif %}
            "busy-key",
        )
        assert locked
        busy = await transfer(client, ada["id"], bob["id"], 5, key="busy-key")
        assert busy.status_code == 409
        assert problem_type(busy) == "/problems/idempotency-key-in-use"
    done = await transfer(client, ada["id"], bob["id"], 5, key="busy-key")
    assert done.status_code == 201


async def test_a_refusal_is_stored_and_replayed_too(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 10), await open_account(client)
    refused = await transfer(client, ada["id"], bob["id"], 50, key="too-much")
    assert refused.status_code == 409
    # Funded afterwards, the same request still gets its first answer: it happened once.
    async with connect(database_url) as connection:
        await connection.execute(
            "UPDATE accounts SET balance_minor = 1000 WHERE id = $1", ada["id"]
        )
    again = await transfer(client, ada["id"], bob["id"], 50, key="too-much")
    assert (again.status_code, again.content) == (409, refused.content)
    assert again.headers["content-type"] == "application/problem+json"
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(database_url, "transfers") == 0


async def test_keys_are_per_operation_scope_and_case_sensitive(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 1000), await open_account(client)
    assert (await transfer(client, ada["id"], bob["id"], 1, key="Key")).status_code == 201
    assert (await transfer(client, ada["id"], bob["id"], 2, key="key")).status_code == 201
    assert await count(database_url, "transfers") == 2


async def test_an_expired_key_can_be_used_again(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 1000), await open_account(client)
    first = await transfer(client, ada["id"], bob["id"], 1, key="old")
    async with connect(database_url) as connection:
        await connection.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1s'")
    second = await transfer(client, ada["id"], bob["id"], 2, key="old")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert await count(database_url, "idempotency_keys") == 1


async def test_keys_expire_after_the_configured_retention(
    client: httpx.AsyncClient, database_url: str, settings: Settings
) -> None:
    ada, bob = await open_account(client, 1000), await open_account(client)
    await transfer(client, ada["id"], bob["id"], 1, key="kept")
    async with connect(database_url) as connection:
        kept_for = await connection.fetchval(
            "SELECT extract(epoch FROM expires_at - created_at) FROM idempotency_keys"
        )
    assert float(kept_for) == pytest.approx(settings.ledger.idempotency.retention_seconds, abs=1)
    assert settings.ledger.idempotency.retention_seconds == 24 * 3600


async def test_cleanup_deletes_expired_keys_in_batches_and_skips_locked_ones(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    ada, bob = await open_account(client, 1000), await open_account(client)
    for number in range(7):
        await transfer(client, ada["id"], bob["id"], 1, key=f"expired-{number}")
    await transfer(client, ada["id"], bob["id"], 1, key="fresh")
    async with connect(database_url) as connection:
        await connection.execute(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1s' WHERE key <> 'fresh'"
        )
    async with connect(database_url) as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM idempotency_keys WHERE key = 'expired-0' FOR UPDATE")
        # Must not wait for the holder: SKIP LOCKED leaves its row for next time.
        deleted = await asyncio.wait_for(
            idempotency.delete_expired(app.state.database, batch_size=2), timeout=10
        )
    assert deleted == 6
    async with connect(database_url) as connection:
        left = await connection.fetch("SELECT key FROM idempotency_keys ORDER BY key")
    assert [row["key"] for row in left] == ["expired-0", "fresh"]
    assert await count(database_url, "transfers") == 8


async def test_the_app_deletes_expired_keys_periodically(settings: Settings) -> None:
    idempotency_settings = settings.ledger.idempotency.model_copy(
        update={"cleanup_interval_seconds": 0.05}
    )
    ledger = settings.ledger.model_copy(update={"idempotency": idempotency_settings})
    app = create_app(settings.model_copy(update={"ledger": ledger}))
    database_url = settings.database.url.get_secret_value()
    async with app.router.lifespan_context(app), connect(database_url) as connection:
        await connection.execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, "
            "content_type, body, expires_at) VALUES ($1, 'stale', '', 201, 'x', '', now())",
            IDEMPOTENCY_SCOPE,
        )
        for _ in range(100):
            if await connection.fetchval("SELECT count(*) FROM idempotency_keys") == 0:
                break
            await asyncio.sleep(0.05)
        assert await connection.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_a_transfer_cut_off_at_the_time_limit_is_safe_to_retry_with_its_key(
    settings: Settings, database_url: str
) -> None:
    """The 504 cannot know whether the transfer committed; it says so, and a retry
    with the same key moves the money exactly once."""
    http = settings.http.model_copy(update={"request_timeout_seconds": 0.3})
    async with serving(settings.model_copy(update={"http": http})) as (_, client):
        ada, bob = await open_account(client, 1000), await open_account(client)
        async with account_locked(database_url, ada["id"]):
            cut_off = await transfer(client, ada["id"], bob["id"], 100, key="cut-off")
        for _ in range(100):  # 409 while the cancelled request's transaction ends
            retried = await transfer(client, ada["id"], bob["id"], 100, key="cut-off")
            if retried.status_code != 409:
                break
            await asyncio.sleep(0.05)
        replayed = await transfer(client, ada["id"], bob["id"], 100, key="cut-off")
    assert cut_off.status_code == 504
    assert "outcome is unknown" in cut_off.json()["detail"]
    assert "Retrying with the same Idempotency-Key is safe" in cut_off.json()["detail"]
    assert retried.status_code == 201, retried.text
    assert (replayed.status_code, replayed.content) == (201, retried.content)
    assert await balances(database_url) == {ada["id"]: 900, bob["id"]: 100}
