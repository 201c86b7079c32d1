"""Migrations take the database URL as the app does, libpq parameters included."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from structlog.testing import capture_logs

from {{ cookiecutter.package_name }}.configuration import DatabaseSettings, Settings
from {{ cookiecutter.package_name }}.db.pool import Database
from {{ cookiecutter.package_name }}.db.session_settings import differing, warn_if_differing

from ..support import databases


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    with databases.temporary_database(server_url, "empty") as name:
        yield databases.with_database(server_url, name)


async def revision(url: str) -> str | None:
    connection = await asyncpg.connect(url)
    try:
        value = await connection.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()
    return None if value is None else str(value)


def test_a_url_with_libpq_parameters_migrates(empty_database_url: str) -> None:
    """Managed databases hand out URLs such as `...?sslmode=require`; the local
    server has no TLS, so `sslmode=prefer` stands in (SQLAlchemy's asyncpg dialect
    rejected the parameter whatever its value)."""
    url = f"{empty_database_url}?sslmode=prefer&application_name=migrations"
    databases.migrate(url)
    assert asyncio.run(revision(url)) == databases.head_revision()


async def database_defaults(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT unnest(setconfig) AS setting FROM pg_db_role_setting WHERE setrole = 0 "
            "AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await connection.close()
    return {row["setting"] for row in rows}


def test_migrating_stores_the_service_timeouts_on_the_database(empty_database_url: str) -> None:
    """Every session gets them, through PgBouncer too (db/session_settings.py)."""
    databases.migrate(empty_database_url)
    assert asyncio.run(database_defaults(empty_database_url)) == {
        "statement_timeout=5000ms",
        "idle_in_transaction_session_timeout=10000ms",
    }


def test_a_migration_waiting_for_a_lock_gives_up(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rather than queue every request behind its own wait for the lock."""
    databases.migrate(empty_database_url)
    monkeypatch.setenv("APP_DATABASE__MIGRATION_LOCK_TIMEOUT_MS", "200")

    async def migrate_while_locked() -> None:
        holder = await asyncpg.connect(empty_database_url)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
                await asyncio.to_thread(databases.migrate, empty_database_url)
        finally:
            await holder.close()

    with pytest.raises(Exception, match="lock timeout"):
        asyncio.run(migrate_while_locked())
    # The failed migration closed its connection, rather than leave it to the collector.
    assert asyncio.run(sessions_on(empty_database_url)) == 0


async def sessions_on(database_url: str) -> int:
    """Other sessions connected to this database now."""
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return count


async def timeouts_check(settings: DatabaseSettings) -> tuple[dict[str, int], list[str]]:
    """What differs in a pooled session, and the startup check's warnings."""
    database = await Database.open(settings, "timeouts-check")
    try:
        async with database.connection() as connection:
            found = await differing(connection, settings)
        with capture_logs() as logs:
            await warn_if_differing(database, settings)
    finally:
        await database.close()
    return found, [log["event"] for log in logs if log["log_level"] == "warning"]


def test_timeouts_configured_but_not_stored_are_reported(settings: Settings) -> None:
    """The configuration changed, `make init-db` not run since: the sessions still have
    the stored values, and each worker's startup check says so."""
    stored = settings.database
    assert asyncio.run(timeouts_check(stored)) == ({}, [])
    changed = stored.model_copy(update={"statement_timeout_ms": 1234})
    found, warnings = asyncio.run(timeouts_check(changed))
    assert found == {"statement_timeout": 5000}
    assert len(warnings) == 1
    assert "make init-db" in warnings[0]
