"""The rendered service behind a real PgBouncer in transaction mode (Debian's 1.18, started
here on a free 127.0.0.1 port, tests/support/pgbouncer.py) with the settings the README gives:
`statement_cache_size: 0`, timeouts stored on the database by `make init-db`.

The service runs as deployed (`python -m <package>`, two uvicorn workers) against a
database of its own on the shared PostgreSQL server, which PgBouncer fronts as `app`.
PAUSE, KILL and RECONNECT are PgBouncer's own admin commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from .support.databases import migrated_database
from .support.http_answers import (
    Outcome,
    assert_shed,
    fresh_connections,
    keep_requesting,
    timed_get,
)
from .support.pgbouncer import PgBouncer
from .support.polling import until
from .support.service import app_variables, running, running_worker

pytestmark = [
    pytest.mark.xdist_group("pgbouncer"),
    pytest.mark.skipif(shutil.which("pgbouncer") is None, reason="pgbouncer is not installed"),
]

ALIAS = "app"
# Stored on the database by `make init-db`; short, so that a test can outwait it.
STATEMENT_TIMEOUT_MS = 1500
ACQUIRE_TIMEOUT = 1.0
PAUSE_SECONDS = 3.0
# Seen from the client, a request also waits for the machine (2 shared cores): a
# generous bound that catches hangs, not slowness.
CLIENT_SLACK = 3.0


@pytest.fixture(scope="module")
def bouncer(installed_default: Path) -> Iterator[PgBouncer]:
    """A migrated database of this module's own, behind PgBouncer (5 server connections).
    Migrations connect directly: they need a session of their own (README)."""
    timeout = {"APP_DATABASE__STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS)}
    with migrated_database(installed_default, "pgbouncer", **timeout) as url:
        with PgBouncer(5432, urlsplit(url).path.lstrip("/"), ALIAS, pool_size=5) as bouncer:
            yield bouncer
            log = bouncer.log()
        assert "unsupported startup parameter" not in log, log


def settings(bouncer: PgBouncer, **overrides: object) -> dict[str, str]:
    """APP_* variables: two workers through PgBouncer, as the README says to configure them."""
    base = {
        "APP_DATABASE__URL": bouncer.url(),
        "APP_DATABASE__POOL__STATEMENT_CACHE_SIZE": "0",
        "APP_DATABASE__POOL__ACQUIRE_TIMEOUT_SECONDS": str(ACQUIRE_TIMEOUT),
        "APP_SERVER__WORKERS": "2",
        "APP_LOGGING__LEVEL": "info",
    }
    return base | app_variables(**overrides)


async def open_account(client: httpx.AsyncClient, balance: int) -> int:
    response = await client.post(
        "/v1/accounts", json={"owner": "Ada", "currency": "EUR", "opening_balance_minor": balance}
    )
    assert response.status_code == 201, response.text
    account_id: int = response.json()["id"]
    return account_id


async def balance(client: httpx.AsyncClient, account: int) -> int:
    response = await client.get(f"/v1/accounts/{account}")
    assert response.status_code == 200, response.text
    minor: int = response.json()["balance_minor"]
    return minor


def test_statement_timeout_applies_through_pgbouncer(bouncer: PgBouncer) -> None:
    """The timeout stored by `make init-db` reaches sessions PgBouncer opens, although
    no client sends it: a statement running longer is cancelled by the server."""

    async def scenario() -> tuple[str, float]:
        connection = await asyncpg.connect(bouncer.url(), statement_cache_size=0)
        try:
            shown: str = await connection.fetchval("SHOW statement_timeout")
            started = time.monotonic()
            with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
                await connection.fetchval("SELECT pg_sleep(10)")
            return shown, time.monotonic() - started
        finally:
            await connection.close()

    shown, seconds = asyncio.run(scenario())
    assert shown == f"{STATEMENT_TIMEOUT_MS}ms"
    assert STATEMENT_TIMEOUT_MS / 1000 <= seconds < 10


def test_the_ledger_keeps_the_books_straight_through_pgbouncer(
    installed_default: Path, bouncer: PgBouncer
) -> None:
    """Concurrent transfers between a few accounts (2 workers x pool 4 = 8 client
    connections on PgBouncer's 5 server connections), some replayed with their
    Idempotency-Key: money is conserved, a replay gets the first answer, no 5xx."""
    rng = random.Random(20261202)
    environment = settings(
        bouncer, database__pool__max_size=4, database__pool__acquire_timeout_seconds=10
    )
    with running(installed_default, environment) as service:

        async def scenario() -> tuple[Counter[int], int, int, list[str]]:
            async with fresh_connections(service.base_url, service.auth_headers) as client:
                accounts = [await open_account(client, 5000) for _ in range(8)]
                queue = asyncio.Queue[tuple[int, int, int, str]]()
                for _ in range(400):
                    source, destination = rng.sample(accounts, 2)
                    queue.put_nowait(
                        (source, destination, rng.randrange(1, 3000), str(uuid.uuid4()))
                    )
                answers: dict[str, httpx.Response] = {}
                mismatched: list[str] = []

                async def send(move: tuple[int, int, int, str]) -> httpx.Response:
                    source, destination, amount, key = move
                    return await client.post(
                        "/v1/transfers",
                        json={
                            "from_account_id": source,
                            "to_account_id": destination,
                            "amount_minor": amount,
                        },
                        headers={"Idempotency-Key": key},
                    )

                async def worker() -> None:
                    while not queue.empty():
                        move = queue.get_nowait()
                        answers[move[3]] = await send(move)
                        if rng.random() < 0.1:  # a client retrying: the same answer back
                            replay = await send(move)
                            first = answers[move[3]]
                            if (replay.status_code, replay.json()) != (
                                first.status_code,
                                first.json(),
                            ):
                                mismatched.append(f"{first.text} then {replay.text}")

                await asyncio.gather(*(worker() for _ in range(16)))
                statuses = Counter(response.status_code for response in answers.values())
                total = sum([await balance(client, account) for account in accounts])
                return statuses, total, len(accounts) * 5000, mismatched

        statuses, total, opening, mismatched = asyncio.run(scenario())
    print(f"through PgBouncer: {dict(statuses)}; money {opening} -> {total}")
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] > 100, statuses
    assert total == opening
    assert mismatched == []


def test_pause_sheds_or_holds_requests_then_resume_serves_them(
    installed_default: Path, bouncer: PgBouncer
) -> None:
    """PAUSE for 3 s under load (12 clients, 2 workers x pool 2): requests holding a
    connection wait in PgBouncer and succeed after RESUME; those waiting for a connection
    get 503 + Retry-After after the acquire timeout. None 500, none hangs."""
    environment = settings(bouncer, database__pool__max_size=2, database__pool__min_size=2)
    with running(installed_default, environment) as service:

        async def scenario() -> tuple[list[Outcome], float, float]:
            async with fresh_connections(service.base_url, service.auth_headers) as client:
                account = await open_account(client, 0)
                outcomes: list[Outcome] = []
                stop = asyncio.Event()
                path = f"/v1/accounts/{account}"
                load = [
                    asyncio.create_task(keep_requesting(client, path, stop, outcomes))
                    for _ in range(12)
                ]
                await asyncio.sleep(1.0)
                paused = time.monotonic()
                await asyncio.to_thread(bouncer.admin, f"PAUSE {ALIAS}")
                await asyncio.sleep(PAUSE_SECONDS)
                await asyncio.to_thread(bouncer.admin, f"RESUME {ALIAS}")
                resumed = time.monotonic()
                await asyncio.sleep(1.5)
                stop.set()
                await asyncio.gather(*load)
                after = [await timed_get(client, path) for _ in range(10)]
            assert [o.response.status_code if o.response else o.error for o in after] == [200] * 10
            return outcomes, paused, resumed

        outcomes, paused, resumed = asyncio.run(scenario())
    assert [o.error for o in outcomes if o.error] == [], "requests without a response"
    statuses = Counter(o.response.status_code for o in outcomes if o.response)
    shed = [o for o in outcomes if o.response and o.response.status_code == 503]
    held = [o for o in outcomes if o.started < resumed and o.ended > paused + 1.0]
    held_ok = [o for o in held if o.response and o.response.status_code == 200]
    assert held_ok, "no request held a connection through PAUSE and got 200"
    assert shed, "no request waited for a connection: the pause was not felt"
    longest = max(o.seconds for o in held_ok)
    print(
        f"PAUSE {PAUSE_SECONDS:.0f} s: {dict(statuses)}; longest held request {longest:.2f} s, "
        f"slowest 503 {max(o.seconds for o in shed):.2f} s"
    )
    assert set(statuses) <= {200, 503}, statuses
    for outcome in shed:
        assert outcome.response is not None
        assert_shed(outcome.response)
        assert outcome.seconds < ACQUIRE_TIMEOUT + CLIENT_SLACK, outcome
    # The requests that held a connection through the pause were answered after RESUME.
    assert longest >= PAUSE_SECONDS - 1.0
    for outcome in outcomes:
        assert outcome.ended < max(outcome.started + ACQUIRE_TIMEOUT, resumed) + CLIENT_SLACK


def test_kill_then_resume_recovers_without_a_restart(
    installed_default: Path, bouncer: PgBouncer
) -> None:
    """KILL drops every connection between the service and PgBouncer; once PgBouncer
    serves again after RESUME, the same service process is ready within 2 s, with no
    500 meanwhile. (PgBouncer 1.18 itself takes a few seconds to reconnect after KILL.)"""
    with running(installed_default, settings(bouncer)) as service:

        async def scenario() -> tuple[Counter[Any], float, float]:
            async with fresh_connections(service.base_url, service.auth_headers) as client:
                assert [(await client.get("/version")).status_code for _ in range(10)] == [200] * 10
                await asyncio.to_thread(bouncer.admin, f"KILL {ALIAS}")
                during = [await timed_get(client, "/version") for _ in range(4)]
                await asyncio.to_thread(bouncer.admin, f"RESUME {ALIAS}")
                resumed = time.monotonic()
                await serving_again(bouncer)
                serves = time.monotonic()
                while (await client.get("/health/ready")).status_code != 200:
                    assert time.monotonic() - serves < 2.0, "not ready within 2 s of PgBouncer"
                    await asyncio.sleep(0.05)
                ready = time.monotonic()
                after = [(await client.get("/version")).status_code for _ in range(20)]
            assert after == [200] * 20
            statuses = Counter(o.response.status_code if o.response else o.error for o in during)
            return statuses, serves - resumed, ready - serves

        during, bouncer_back, service_back = asyncio.run(scenario())
        assert service.process is not None
        assert service.process.poll() is None, "the service restarted or exited"
    print(
        f"KILL: {dict(during)} while killed; PgBouncer served {bouncer_back:.2f} s after "
        f"RESUME, the service was ready {service_back:.2f} s after that"
    )
    assert set(during) <= {200, 503}, during


async def serving_again(bouncer: PgBouncer, seconds: float = 30.0) -> None:
    """Until a fresh client gets an answer through PgBouncer."""

    async def answers() -> bool:
        try:
            connection = await asyncpg.connect(bouncer.url(), statement_cache_size=0, timeout=1)
            try:
                await connection.fetchval("SELECT 1", timeout=1)
                return True
            finally:
                await connection.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    await until(answers, seconds, "PgBouncer serving")


def test_reconnect_under_load_loses_no_request(installed_default: Path, bouncer: PgBouncer) -> None:
    """RECONNECT replaces PgBouncer's server connections as each is released."""
    with running(installed_default, settings(bouncer)) as service:

        async def scenario() -> list[Outcome]:
            async with fresh_connections(service.base_url, service.auth_headers) as client:
                outcomes: list[Outcome] = []
                stop = asyncio.Event()
                load = [
                    asyncio.create_task(keep_requesting(client, "/version", stop, outcomes))
                    for _ in range(8)
                ]
                await asyncio.sleep(0.5)
                await asyncio.to_thread(bouncer.admin, f"RECONNECT {ALIAS}")
                await asyncio.sleep(1.0)
                stop.set()
                await asyncio.gather(*load)
            return outcomes

        outcomes = asyncio.run(scenario())
    statuses = Counter(o.response.status_code if o.response else o.error for o in outcomes)
    print(f"RECONNECT: {dict(statuses)}")
    assert statuses == {200: len(outcomes)}


@contextlib.contextmanager
def receiver() -> Iterator[tuple[str, set[str]]]:
    """A local webhook receiver answering 204; yields its URL and the webhook-ids seen."""
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.add(self.headers["webhook-id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


async def opened_events(bouncer: PgBouncer) -> set[str]:
    events = await asyncpg.connect(bouncer.url(), statement_cache_size=0)
    try:
        rows = await events.fetch("SELECT id FROM outbox_events WHERE type = 'account.opened'")
    finally:
        await events.close()
    return {str(row["id"]) for row in rows}


def test_the_worker_relays_and_delivers_through_pgbouncer(
    installed_default: Path, bouncer: PgBouncer
) -> None:
    """The worker with the README's PgBouncer settings (cache 0 for its pool too): its
    relay, its queue and its deliveries all pass PgBouncer in transaction mode, and
    every event arrives. Its queue connection used to cache statements whatever the
    setting: a statement prepared on one server connection was missing on the next,
    and the queue died with the first jobs."""
    environment = settings(
        bouncer,
        webhooks__allow_private_destinations="true",
        worker__pool__statement_cache_size=0,
        worker__dequeue_timeout_seconds=0.5,
    )
    with receiver() as (url, seen), running(installed_default, environment) as service:

        async def scenario() -> set[str]:
            async with fresh_connections(service.base_url, service.auth_headers) as client:
                response = await client.post(
                    "/v1/webhook-subscriptions",
                    json={"url": url, "event_types": ["account.opened"]},
                )
                assert response.status_code == 201, response.text
                # The project's database is shared with this group's other tests:
                # only the events of the accounts opened here are this test's.
                earlier = await opened_events(bouncer)
                with running_worker(installed_default, environment) as worker:
                    for _ in range(40):
                        await open_account(client, 100)
                    ids = await opened_events(bouncer) - earlier

                    async def all_delivered() -> bool:
                        assert worker.poll() is None, "the worker exited"
                        return seen >= ids

                    await until(all_delivered, 60, "every event delivered through PgBouncer")
            return ids

        ids = asyncio.run(scenario())
    assert len(ids) == 40
