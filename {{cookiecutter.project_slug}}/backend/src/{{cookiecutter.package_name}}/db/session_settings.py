"""The server-side timeouts, stored on the database itself (ALTER DATABASE … SET).

Not asyncpg startup parameters: PgBouncer in transaction mode refuses those
("unsupported startup parameter"), and would not keep them per client anyway.
Not `SET LOCAL` in each transaction: that is one more statement per request, and a
read outside a transaction has none. A per-database default reaches every new
session, whichever role logs in (the owner, the application role) and whether
or not PgBouncer sits in between. `make init-db` (migrations/env.py) writes them.
The service itself no longer applies its configured values, so each worker compares
them at startup with what its sessions have, and warns when they differ.
"""

from __future__ import annotations

import asyncpg
import structlog

from ..configuration import DatabaseSettings
from .errors import DatabaseUnavailableError
from .pool import Database, PooledConnection

logger = structlog.get_logger("db")

# pg_settings.setting is in milliseconds for both parameters, whatever way they were set.
SESSION_VALUES = "SELECT name, setting::int AS ms FROM pg_settings WHERE name = ANY($1::text[])"


def milliseconds(settings: DatabaseSettings) -> dict[str, int]:
    """The parameters every session of the service must have, in milliseconds."""
    return {
        "statement_timeout": settings.statement_timeout_ms,
        "idle_in_transaction_session_timeout": settings.idle_in_transaction_session_timeout_ms,
    }


def timeouts(settings: DatabaseSettings) -> dict[str, str]:
    """The same parameters, as ALTER DATABASE takes them."""
    return {parameter: f"{value}ms" for parameter, value in milliseconds(settings).items()}


async def differing(connection: PooledConnection, settings: DatabaseSettings) -> dict[str, int]:
    """The parameters whose value in this session is not the configured one: name ->
    the session's value in milliseconds (0: no timeout)."""
    wanted = milliseconds(settings)
    rows = await connection.fetch(SESSION_VALUES, list(wanted))
    return {row["name"]: row["ms"] for row in rows if row["ms"] != wanted[row["name"]]}


async def warn_if_differing(database: Database, settings: DatabaseSettings) -> None:
    """One warning if the database's stored timeouts are not the configured ones (the
    configuration changed, `make init-db` not run since). Unreachable: nothing to say."""
    try:
        async with database.connection() as connection:
            found = await differing(connection, settings)
    except (DatabaseUnavailableError, asyncpg.PostgresError):
        return
    if found:
        logger.warning(
            "the sessions' timeouts are not the configured ones: run `make init-db` to store them",
            configured={name: milliseconds(settings)[name] for name in found},
            sessions=found,
        )


def alter_database(database: str, settings: DatabaseSettings) -> list[str]:
    """The statements that store the timeouts as `database`'s defaults."""
    name = '"' + database.replace('"', '""') + '"'
    return [
        f"ALTER DATABASE {name} SET {parameter} = '{value}'"
        for parameter, value in timeouts(settings).items()
    ]
