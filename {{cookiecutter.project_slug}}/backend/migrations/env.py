"""Alembic runs the migrations with the application's own database settings.

Migrations are explicit SQL (op.execute), so no ORM models are needed here.
Never edit a released revision: add a new one.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

import asyncpg
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.configuration import load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """The URL tests pass in `config.attributes`, else the application's setting."""
    url = config.attributes.get("database_url") or load_settings().database.url.get_secret_value()
    return str(url)


async def connect() -> asyncpg.Connection:
    # asyncpg reads the URL itself, as the app's pool does: SQLAlchemy would turn its
    # query parameters (sslmode=require, say) into keywords asyncpg does not take.
    return await asyncpg.connect(database_url())


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url="postgresql://", literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
