"""Queries about the schema itself."""

from __future__ import annotations

from .pool import Database


async def current_revision(database: Database) -> str | None:
    """The alembic revision the database is migrated to, or None if never migrated."""
    async with database.connection() as connection:
        exists = await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not exists:
            return None
        revision: str | None = await connection.fetchval(
            "SELECT version_num FROM alembic_version LIMIT 1"
        )
        return revision
