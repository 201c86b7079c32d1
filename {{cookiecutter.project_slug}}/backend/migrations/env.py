"""Alembic runs the migrations with the application's own database settings.

Migrations are explicit SQL (op.execute), so no ORM models are needed here.
Never edit a released revision: add a new one.

A migration waits at most database.migration_lock_timeout_ms for a lock, then fails
(run it again later): waiting longer would queue every request behind it. After the
revisions, the service's own timeouts are stored on the database (session_settings.py).
Connect directly to PostgreSQL, not through PgBouncer in transaction mode: these
session settings, and CREATE INDEX CONCURRENTLY, need a session of their own.
"""

from __future__ import annotations

import asyncio
from functools import cache
from logging.config import fileConfig

import asyncpg
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.configuration import DatabaseSettings, load_settings
from {{ cookiecutter.package_name }}.db.session_settings import alter_database

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


@cache
def database_settings() -> DatabaseSettings:
    return load_settings().database


def database_url() -> str:
    """The URL tests pass in `config.attributes`, else the application's setting."""
    url = config.attributes.get("database_url") or database_settings().url.get_secret_value()
    return str(url)


async def connect() -> asyncpg.Connection:
    # asyncpg reads the URL itself, as the app's pool does: SQLAlchemy would turn its
    # query parameters (sslmode=require, say) into keywords asyncpg does not take.
    connection = await asyncpg.connect(database_url())
    settings = database_settings()
    await connection.execute(
        f"SET lock_timeout = '{settings.migration_lock_timeout_ms}ms'; "
        f"SET statement_timeout = '{settings.migration_statement_timeout_ms}ms'"
    )
    return connection


async def store_session_timeouts() -> None:
    connection = await connect()
    try:
        database = await connection.fetchval("SELECT current_database()")
        for statement in alter_database(database, database_settings()):
            await connection.execute(statement)
    finally:
        await connection.close()


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        # A failed migration (a lock timeout, say) closes its connection too.
        await engine.dispose()
    await store_session_timeouts()


if context.is_offline_mode():
    context.configure(url="postgresql://", literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
