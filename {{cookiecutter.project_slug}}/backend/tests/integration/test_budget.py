"""The live connection-budget guard (db/budget.py) against the real server: its figures,
one warning however often it finds the fleet too big, and readiness left alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }} import metrics
from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db.budget import BudgetGuard
from {{ cookiecutter.package_name }}.db.pool import Database
from {{ cookiecutter.package_name }}.startup import create_app

pytestmark = pytest.mark.anyio


def with_replicas(settings: Settings, replicas: int, interval: float = 60.0) -> Settings:
    budget = settings.database.budget.model_copy(
        update={"replicas": replicas, "check_interval_seconds": interval}
    )
    database = settings.database.model_copy(update={"budget": budget})
    return settings.model_copy(update={"database": database})


async def server_figures(database_url: str, application_name: str) -> tuple[int, int, int]:
    """max_connections, reserved slots and this application's connections, read apart."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        return (
            int(await connection.fetchval("SHOW max_connections")),
            int(await connection.fetchval("SHOW superuser_reserved_connections")),
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                application_name,
            ),
        )
    finally:
        await connection.close()


async def test_the_reading_matches_the_server(settings: Settings, database_url: str) -> None:
    database = await Database.open(settings.database, "budget-reading")
    try:
        guard = BudgetGuard(database, "budget-reading", configured=7)
        reading = await guard.check()
        max_connections, reserved, observed = await server_figures(database_url, "budget-reading")
    finally:
        await database.close()
    assert reading is not None
    assert (reading.max_connections, reading.configured) == (max_connections, 7)
    assert reading.reserved >= reserved
    # The test pool's min_size connections are open, the guard's own among them.
    assert reading.observed == observed >= 1
    assert reading.allowed == max_connections - reading.reserved - reading.others
    assert reading.headroom == reading.allowed - 7 > 0
    assert guard.warnings == 0


async def test_a_fleet_too_big_warns_once(settings: Settings) -> None:
    database = await Database.open(settings.database, "budget-warning")
    try:
        guard = BudgetGuard(database, "budget-warning", configured=1_000_000)
        readings = [await guard.check() for _ in range(3)]
    finally:
        await database.close()
    assert all(reading is not None and reading.headroom < 0 for reading in readings)
    assert guard.warnings == 1


async def test_the_app_exports_the_budget_and_stays_ready(settings: Settings) -> None:
    oversized = with_replicas(settings, 100_000, interval=0.05)
    app = create_app(oversized)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await asyncio.sleep(0.2)  # a few checks
            ready = await client.get("/health/ready")
            # The values the metrics listener would serve (not the API's port).
            exposition = generate_latest(metrics.registry()).decode()
    gauges = {
        sample.name: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name.startswith("db_connection_budget_")
    }
    pool = settings.database.pool.max_size * settings.server.workers
    assert ready.status_code == 200
    assert gauges["db_connection_budget_configured"] == 100_000 * pool
    assert gauges["db_connection_budget_observed"] >= 1
    assert gauges["db_connection_budget_headroom"] == (
        gauges["db_connection_budget_allowed"] - gauges["db_connection_budget_configured"]
    )
    assert gauges["db_connection_budget_headroom"] < 0


async def test_an_unreachable_database_gives_no_reading(settings: Settings) -> None:
    unreachable = settings.database.model_copy(
        update={"url": type(settings.database.url)("postgresql://postgres@127.0.0.1:1/none")}
    )
    database = await Database.open(unreachable, "budget-unreachable")
    try:
        assert await BudgetGuard(database, "budget-unreachable", configured=1).check() is None
    finally:
        await database.close()


async def test_a_refused_connection_does_not_stop_the_checks(
    settings: Settings, database_url: str
) -> None:
    """The database refusing connections (too many: the shortfall itself) gives no
    reading, and the checks go on: readings come back once it lets the guard in."""
    role = f"budget_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    parts = urlsplit(database_url)
    url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    limited = settings.database.model_copy(
        update={
            "url": type(settings.database.url)(url),
            "pool": settings.database.pool.model_copy(update={"min_size": 0}),
        }
    )
    readings: list[Mapping[str, int]] = []
    database = await Database.open(limited, role)
    guard = BudgetGuard(database, role, configured=1)
    watch = asyncio.create_task(guard.watch(readings.append, 0.05))
    try:
        await asyncio.sleep(0.3)
        assert not watch.done()
        assert readings == []
        await admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
        for _ in range(100):
            if readings:
                break
            await asyncio.sleep(0.05)
        assert not watch.done()
        assert readings
        assert readings[-1]["observed"] >= 1
    finally:
        watch.cancel()
        await database.close()
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
