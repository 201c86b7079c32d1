"""The ledger's outbox: each account opened and each transfer completed writes
one event in its own statement, carrying the payload receivers rely on, and every
event reaches the subscribers."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db import transfers
from {{ cookiecutter.package_name }}.db.pool import Database
from {{ cookiecutter.package_name }}.domain.accounts import AccountId
from {{ cookiecutter.package_name }}.domain.events import ACCOUNT_OPENED, TRANSFER_COMPLETED
from {{ cookiecutter.package_name }}.domain.money import Amount
from {{ cookiecutter.package_name }}.domain.transfers import TransferRequest

from ..support.apps import default_headers, serving
from ..support.ledger import count, open_account, transfer
from ..support.outbox import opened
from ..support.receiver import receiving, wait_until
from ..support.service import running_service
from ..support.webhooks import event_ids, fetch, settled, subscribe
from ..support.worker import running_worker

pytestmark = pytest.mark.anyio

TRANSFERS = 2000
CLIENTS = 32
ACCOUNTS = 20
DELIVERY_SECONDS = 90.0
RETRIES = 5


# What receivers rely on, written out here, apart from the SQL that builds it
# (db/accounts.py, db/transfers.py): a change to either shows as a difference.
def instant(moment: datetime) -> str:
    """A payload's timestamp: RFC 3339 in UTC, always with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def account_opened(account: asyncpg.Record) -> dict[str, Any]:
    return {
        "account_id": account["id"],
        "owner": account["owner"],
        "currency": account["currency"],
        "balance_minor": account["balance_minor"],
        "created_at": instant(account["created_at"]),
    }


def transfer_completed(transfer: asyncpg.Record) -> dict[str, Any]:
    return {
        "transfer_id": transfer["id"],
        "from_account_id": transfer["from_account_id"],
        "to_account_id": transfer["to_account_id"],
        "amount_minor": transfer["amount_minor"],
        "currency": transfer["currency"],
        "created_at": instant(transfer["created_at"]),
    }


async def test_opening_an_account_and_a_transfer_each_write_one_event(
    settings: Settings, database_url: str
) -> None:
    async with serving(settings) as (_, client):
        source = await open_account(client, 500)
        destination = await open_account(client)
        key = str(uuid.uuid4())
        first = await transfer(client, source["id"], destination["id"], 100, key)
        replay = await transfer(client, source["id"], destination["id"], 100, key)
    assert first.status_code == replay.status_code == 201
    rows = await fetch(database_url, "SELECT type, payload FROM outbox_events ORDER BY type")
    assert [row["type"] for row in rows] == ["account.opened"] * 2 + ["transfer.completed"]
    assert f'"transfer_id": {first.json()["id"]}' in rows[2]["payload"]
    # Pending, for the worker's relay: no job is enqueued in the business transaction.
    pending = await fetch(database_url, "SELECT id FROM outbox_events WHERE NOT relayed")
    assert len(pending) == 3
    assert await count(database_url, "pgqueuer") == 0


async def test_event_ids_are_time_ordered_uuids(settings: Settings, database_url: str) -> None:
    """UUIDv7 (migration 0007): their primary-key entries append instead of landing on
    a random leaf, which after each checkpoint logged a full page image."""
    async with serving(settings) as (_, client):
        source = await open_account(client, 500)
        destination = await open_account(client)
        for amount in (1, 2, 3):
            await transfer(client, source["id"], destination["id"], amount)
    rows = await fetch(database_url, "SELECT id, created_at FROM outbox_events ORDER BY created_at")
    ids = [uuid.UUID(str(row["id"])) for row in rows]
    assert len(ids) == 5
    assert {(event_id.version, event_id.variant) for event_id in ids} == {(7, uuid.RFC_4122)}
    # In order by their milliseconds; within one millisecond the rest is random.
    written_ms = [event_id.int >> 80 for event_id in ids]
    assert written_ms == sorted(written_ms)
    for milliseconds, row in zip(written_ms, rows, strict=True):
        assert abs(milliseconds - row["created_at"].timestamp() * 1000) < 5000


async def test_each_event_carries_what_receivers_rely_on_and_its_request_id(
    settings: Settings, database_url: str
) -> None:
    """The payloads are built in SQL, by the statement that writes the fact: they must
    be what receivers rely on, for the same account and transfer."""
    async with serving(settings) as (_, client):
        source = await open_account(client, 500, headers={"X-Request-ID": "req-open-1"})
        destination = await open_account(client, headers={"X-Request-ID": "req-open-2"})
        # Before the transfer changes their balances: account.opened tells the opening one.
        account_rows = await fetch(database_url, "SELECT * FROM accounts")
        response = await transfer(
            client, source["id"], destination["id"], 120, request_id="req-transfer"
        )
    assert response.status_code == 201, response.text
    (transfer_row,) = await fetch(database_url, "SELECT * FROM transfers")
    expected = [
        (ACCOUNT_OPENED, account_opened(row), f"req-open-{number}")
        for number, row in enumerate(sorted(account_rows, key=lambda row: row["id"]), 1)
    ] + [(TRANSFER_COMPLETED, transfer_completed(transfer_row), "req-transfer")]
    rows = await fetch(
        database_url, "SELECT type, payload, request_id FROM outbox_events ORDER BY created_at"
    )
    stored = [(row["type"], json.loads(row["payload"]), row["request_id"]) for row in rows]
    assert sorted(stored, key=str) == sorted(expected, key=str)


async def test_a_transfer_rolled_back_after_its_write_leaves_no_event(
    settings: Settings, database_url: str
) -> None:
    async with serving(settings) as (_, client):
        source = await open_account(client, 500)
        destination = await open_account(client)
    request = TransferRequest(
        AccountId(source["id"]),
        AccountId(destination["id"]),
        Amount(100),
{%- if cookiecutter.auth != "none" %}
        "alice",
{%- endif %}
    )

    async def write_then_fail(database: Database) -> None:
        async with database.connection() as connection, connection.transaction():
            await transfers.create_transfer(connection, request)
            raise RuntimeError("after the write")

    async with opened(settings) as database:
        with pytest.raises(RuntimeError, match="after the write"):
            await write_then_fail(database)
    assert await count(database_url, "transfers") == 0
    rows = await fetch(database_url, "SELECT type FROM outbox_events")
    assert sorted(row["type"] for row in rows) == ["account.opened"] * 2


async def test_a_refused_transfer_leaves_no_event(settings: Settings, database_url: str) -> None:
    async with serving(settings) as (_, client):
        source = await open_account(client, 50)
        destination = await open_account(client)
        refused = await transfer(client, source["id"], destination["id"], 100)
    assert refused.status_code == 409  # insufficient funds
    rows = await fetch(database_url, "SELECT type FROM outbox_events")
    assert sorted(row["type"] for row in rows) == ["account.opened"] * 2


async def test_the_worker_logs_a_delivery_with_its_event_and_the_request_that_caused_it(
    settings: Settings, database_url: str
) -> None:
    async with serving(settings) as (_, client), receiving() as receiver:
        await subscribe(client, receiver, ["transfer.completed"])
        source = await open_account(client, 500)
        destination = await open_account(client)
        response = await transfer(
            client, source["id"], destination["id"], 5, request_id="req-outbox-1"
        )
        assert response.status_code == 201, response.text
        with running_worker(database_url) as worker:
            await wait_until(lambda: len(receiver.deliveries) == 1, DELIVERY_SECONDS, "sent")
            await wait_until(lambda: "webhook delivered" in worker.output(), 5, "logged")
            lines = [json.loads(line) for line in worker.output().splitlines() if line[:1] == "{"]
    (delivered,) = [line for line in lines if line["msg"] == "webhook delivered"]
    assert delivered["event_id"] == receiver.deliveries[0].webhook_id
    # The body carries the domain's payload for the transfer made.
    (transfer_row,) = await fetch(database_url, "SELECT * FROM transfers")
    body = json.loads(receiver.deliveries[0].body)
    assert body["type"] == TRANSFER_COMPLETED
    assert body["data"] == transfer_completed(transfer_row)
    assert delivered["request_id"] == "req-outbox-1"
    assert delivered["name"] == settings.application.name  # Bunyan's fields
    assert delivered["level"] == 30


async def test_every_transfer_from_many_clients_is_delivered_exactly_once_after_dedup(
    database_url: str, settings: Settings
) -> None:
    rng = random.Random(20261202)  # noqa: S311 (a reproducible mix, not secrets)
    environment = {"APP_ENVIRONMENT": "test", "APP_DATABASE__URL": database_url,
                   "APP_DATABASE__POOL__MAX_SIZE": "8"}  # fmt: skip
    async with receiving() as receiver:
        with running_service(environment) as base_url:
            async with httpx.AsyncClient(
                base_url=base_url, timeout=30, headers=default_headers(settings)
            ) as client:
                await subscribe(client, receiver, ["account.opened", "transfer.completed"])
                accounts = [await open_account(client, 10**9) for _ in range(ACCOUNTS)]
                ids = [account["id"] for account in accounts]
                pairs = asyncio.Queue[tuple[int, int]]()
                for _ in range(TRANSFERS):
                    source, destination = rng.sample(ids, 2)
                    pairs.put_nowait((source, destination))
                statuses = Counter[int]()

                async def client_loop() -> None:
                    while not pairs.empty():
                        source, destination = pairs.get_nowait()
                        key = str(uuid.uuid4())
                        # A 503 is retried with the same key, as a client should: the
                        # transfer, and so its event, happens once whatever the tries.
                        for _ in range(RETRIES):
                            response = await transfer(client, source, destination, 1, key)
                            if response.status_code != 503:
                                break
                            await asyncio.sleep(0.2)
                        statuses[response.status_code] += 1

                with running_worker(database_url), running_worker(database_url):
                    await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
                    events = await event_ids(database_url)
                    await wait_until(
                        lambda: receiver.ids() >= events, DELIVERY_SECONDS, "all delivered"
                    )
                    await settled(database_url, {"delivered": len(events)})
    assert statuses == {201: TRANSFERS}
    assert len(events) == TRANSFERS + ACCOUNTS
    assert receiver.ids() == events  # each event's webhook-id, none lost, none invented
