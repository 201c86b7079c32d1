"""Queries about the schema itself."""

from __future__ import annotations

import asyncpg

from .errors import SchemaRevisionUnreadableError
from .pool import Database


async def current_revision(database: Database) -> str | None:
    """The alembic revision the database is migrated to, or None if never migrated;
    SchemaRevisionUnreadableError if the service's role may not read it."""
    async with database.connection() as connection:
        try:
            exists = await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
            if not exists:
                return None
            revision: str | None = await connection.fetchval(
                "SELECT version_num FROM alembic_version LIMIT 1"
            )
        except asyncpg.InsufficientPrivilegeError as error:
            # The server's message names the table and the privilege: the operator's clue.
            raise SchemaRevisionUnreadableError(str(error)) from error
        return revision
