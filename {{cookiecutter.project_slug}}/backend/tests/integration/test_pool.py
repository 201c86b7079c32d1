"""The pool's guarantees: lifetime, bounded waits (503 + Retry-After), session
timeouts, and surviving a database outage without a restart."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db.pool import REOPEN_MAX_INTERVAL_SECONDS, Database
from {{ cookiecutter.package_name }}.startup import create_app

from ..support import databases
from ..support.apps import serving, with_database_url
from ..support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.anyio


def with_pool(settings: Settings, **changes: object) -> Settings:
    pool = settings.database.pool.model_copy(update=changes)
    return settings.model_copy(
        update={"database": settings.database.model_copy(update={"pool": pool})}
    )


def open_failures(reason: str) -> float:
    labels = {"reason": reason}
    return REGISTRY.get_sample_value("db_pool_open_failures_total", labels) or 0.0


# The reopening task may be asleep for its longest back-off when the slot frees.
REOPEN_WAIT_SECONDS = REOPEN_MAX_INTERVAL_SECONDS + 5


async def until_pool_reopened(app: FastAPI, seconds: float) -> None:
    """The background task has reopened the pool with its minimum size."""
    deadline = time.perf_counter() + seconds
    while app.state.database.stats()["min_size"] == 0:
        assert time.perf_counter() < deadline, f"pool not reopened within {seconds} s"
        await asyncio.sleep(0.05)


async def backend_pid(database: Database) -> int:
    async with database.connection() as connection:
        pid: int = await connection.fetchval("SELECT pg_backend_pid()")
        return pid


async def test_connections_are_replaced_after_their_lifetime(settings: Settings) -> None:
    database = await Database.open(
        with_pool(settings, min_size=0, max_size=1, max_lifetime_seconds=0.3).database, "test"
    )
    try:
        first = await backend_pid(database)
        assert await backend_pid(database) == first  # reused while young
        await asyncio.sleep(0.35)
        await backend_pid(database)  # used past its lifetime: retired on release
        assert await backend_pid(database) != first
    finally:
        await database.close()


async def test_session_timeouts_are_set_on_every_connection(settings: Settings) -> None:
    database = await Database.open(settings.database, "test")
    try:
        async with database.connection() as connection:
            statement = await connection.fetchval("SHOW statement_timeout")
            idle = await connection.fetchval("SHOW idle_in_transaction_session_timeout")
    finally:
        await database.close()
    assert (statement, idle) == ("5s", "10s")


async def test_exhausted_pool_answers_503_with_retry_after(settings: Settings) -> None:
    app = create_app(with_pool(settings, min_size=0, max_size=1, acquire_timeout_seconds=0.3))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
            app.state.database.connection(),  # hold the only connection
        ):
            started = time.perf_counter()
            response = await client.get("/version")
            waited = time.perf_counter() - started
            live = await client.get("/health/live")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert 0.25 <= waited < 0.8
    assert live.status_code == 200


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.to_database(database_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def app_behind_proxy(settings: Settings, proxy: TcpProxy) -> AsyncIterator[FastAPI]:
    url = proxy.url_through(settings.database.url.get_secret_value())
    app = create_app(with_database_url(settings, url))
    async with app.router.lifespan_context(app):
        yield app


async def test_outage_gives_503_then_recovers_without_restart(
    app_behind_proxy: FastAPI, proxy: TcpProxy, settings: Settings
) -> None:
    acquire_timeout = settings.database.pool.acquire_timeout_seconds
    transport = httpx.ASGITransport(app=app_behind_proxy)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/health/ready")).status_code == 200
        await proxy.stop()

        started = time.perf_counter()
        ready = await client.get("/health/ready")
        version = await client.get("/version")
        elapsed = time.perf_counter() - started
        live = await client.get("/health/live")
        assert (ready.status_code, version.status_code, live.status_code) == (503, 503, 200)
        assert version.headers["retry-after"] == str(math.ceil(acquire_timeout))
        assert elapsed < acquire_timeout + 0.5

        await proxy.start()
        deadline = time.perf_counter() + 2.0
        while (await client.get("/health/ready")).status_code != 200:
            assert time.perf_counter() < deadline, "not ready again within 2 s"
            await asyncio.sleep(0.05)
        assert (await client.get("/version")).status_code == 200


async def test_service_starts_while_the_database_is_down(
    settings: Settings, proxy: TcpProxy
) -> None:
    url = proxy.url_through(settings.database.url.get_secret_value())
    await proxy.stop()
    app = create_app(with_database_url(settings, url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/health/live")).status_code == 200
            assert (await client.get("/health/ready")).status_code == 503
            await proxy.start()
            deadline = time.perf_counter() + 2.0
            while (await client.get("/health/ready")).status_code != 200:
                assert time.perf_counter() < deadline, "not ready within 2 s of the database"
                await asyncio.sleep(0.05)


@pytest.fixture
def limited_role_url(database_url: str) -> Iterator[str]:
    """The test's database as a role allowed one connection (SQLSTATE 53300 beyond)."""
    with databases.temporary_role(database_url, connection_limit=1) as url:
        yield url


async def test_too_many_connections_is_a_503_and_startup_waits_for_a_slot(
    settings: Settings, limited_role_url: str
) -> None:
    before = open_failures("TooManyConnectionsError")
    holder = await asyncpg.connect(limited_role_url)  # the role's only connection
    try:
        limited = with_pool(with_database_url(settings, limited_role_url), min_size=1)
        async with serving(limited) as (app, client):
            version = await client.get("/version")
            assert version.status_code == 503, version.text
            assert version.headers["content-type"] == "application/problem+json"
            assert version.headers["retry-after"] == "2"
            assert (await client.get("/health/ready")).status_code == 503
            await holder.close()
            await until_pool_reopened(app, seconds=REOPEN_WAIT_SECONDS)
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        await holder.close()
    assert open_failures("TooManyConnectionsError") > before


async def test_a_connection_made_while_degraded_does_not_keep_the_pool_from_reopening(
    settings: Settings, limited_role_url: str
) -> None:
    holder = await asyncpg.connect(limited_role_url)  # the role's only connection
    try:
        limited = with_pool(with_database_url(settings, limited_role_url), min_size=1)
        async with serving(limited) as (app, client):
            await holder.close()
            # Served by the pool that connects on demand, once the server has let the
            # holder's slot go (before the full pool's first retry, 0.5-1 s after the
            # start): its connection, idle once released, takes the role's only slot,
            # which the full pool needs.
            served = [(await client.get("/health/ready")).status_code]
            while served[-1] != 200 and len(served) < 100:
                await asyncio.sleep(0.01)
                served.append((await client.get("/health/ready")).status_code)
            assert served[-1] == 200, served
            await until_pool_reopened(app, seconds=REOPEN_WAIT_SECONDS)
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        await holder.close()


async def test_ready_while_busy_at_the_connection_limit(
    settings: Settings, limited_role_url: str
) -> None:
    """Every connection of the pool in use and the role at its limit: readiness asks
    the server on a connection of its own, refused as one too many; the server
    answered, so the database is reachable and the service is busy, not down."""
    limited = with_pool(with_database_url(settings, limited_role_url), min_size=1, max_size=1)
    # The pool's connection, and the role's only one, held by the test:
    async with serving(limited) as (app, client), app.state.database.connection():
        ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text


async def test_reopening_keeps_trying_until_the_database_exists(
    settings: Settings, server_url: str, migrated_template: str
) -> None:
    """A missing database (as a bad password) is not a connection error, yet the
    service must wait for it as for a database that is down."""
    name = databases.unique_name("late")
    before = open_failures("InvalidCatalogNameError")
    admin = await asyncpg.connect(databases.with_database(server_url, "postgres"))
    try:
        missing = with_database_url(settings, databases.with_database(server_url, name))
        async with serving(missing) as (app, client):
            assert (await client.get("/health/ready")).status_code == 503
            await asyncio.sleep(1.5)  # the task has tried, and failed, at least once
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
            await until_pool_reopened(app, seconds=REOPEN_WAIT_SECONDS)
            assert (await client.get("/version")).status_code == 200
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    assert open_failures("InvalidCatalogNameError") > before
